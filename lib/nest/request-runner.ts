import type { MessageHandler as NestHandler, WritePacket } from '@nestjs/microservices';
import { throwError, type Observable } from 'rxjs';
import type { NsqMessage } from '../consumer/nsq-message.js';
import type { Producer } from '../producer/producer.js';
import { NsqContext } from './nsq-context.js';
import { decodeRequest, type ReplyEnvelope } from './payload.js';

/** What a request runner needs from its server. */
export interface RequestHost {
  /** The publisher of replies to the nsqd a request came from. */
  replies(address: string): Producer;
  serialize(packet: ReplyEnvelope): unknown;
  toObservable(result: unknown): Observable<unknown>;
  /** Nest's Server#handleRequest: runs `produce` and hands each reply packet to `respond`. */
  handle(
    context: NsqContext,
    produce: () => Promise<Observable<unknown>>,
    respond: (packet: WritePacket) => Promise<unknown>,
  ): void;
}

/**
 * The consumer's handler for a @MessagePattern: decodes the request envelope, runs the Nest
 * handler and publishes every reply to the caller's reply topic. The request is FINished once
 * its last reply is published; a failed publish requeues it.
 */
export function requestRunner(
  handler: NestHandler,
  host: RequestHost,
): (message: NsqMessage) => Promise<void> {
  return async (message) => {
    const request = decodeRequest(message.body);
    const context = new NsqContext([message, undefined]);
    const replies = host.replies(message.address);
    const reply = async (packet: WritePacket) => {
      const body = await host.serialize({ ...packet, id: request.id });
      await replies.publish(
        request.replyTo,
        typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
      );
    };
    // A handler that throws becomes an erroring stream, so its error is replied, not lost.
    const produce = async () => {
      try {
        return host.toObservable(await handler(request.data, context));
      } catch (err) {
        return throwError(() => err);
      }
    };
    await new Promise<void>((resolve, reject) => {
      host.handle(context, produce, (packet) =>
        reply(packet).then(() => packet.isDisposed && resolve(), reject),
      );
    });
  };
}
