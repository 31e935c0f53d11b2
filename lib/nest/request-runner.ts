import { setMaxListeners } from 'node:events';
import type { MessageHandler as NestHandler, WritePacket } from '@nestjs/microservices';
import { Observable, throwError } from 'rxjs';
import type { NsqMessage } from '../consumer/nsq-message.js';
import type { Replier } from './event-runner.js';
import { NsqContext } from './nsq-context.js';
import { decodeBody, decodeFrame, NsqDecodeError } from './payload.js';
import type { NsqTracer } from './tracing.js';

/** What a request runner needs from its server. */
export interface RequestHost {
  pattern: string;
  reply: Replier;
  deserialize?: (payload: Buffer) => Promise<unknown>;
  toObservable(result: unknown): Observable<unknown>;
  /** Nest's Server#handleRequest: runs `produce` and hands each reply packet to `respond`. */
  handle(
    context: NsqContext,
    produce: () => Promise<Observable<unknown>>,
    respond: (packet: WritePacket) => Promise<unknown>,
  ): void;
  /** Aborted when the server shuts down: a request still running is answered with its reason. */
  shutdown: AbortSignal;
  /** With tracing on: each request runs inside a CONSUMER span. */
  tracer?: NsqTracer;
}

/**
 * The consumer's handler for a @MessagePattern: decodes the request, runs the Nest handler and
 * publishes every reply to the caller's reply topic. The request is FINished once its last
 * reply is published; a failed publish requeues it. A request whose caller has given up (past
 * its deadline) is not run.
 */
export function requestRunner(
  handler: NestHandler,
  host: RequestHost,
): (message: NsqMessage) => Promise<void> {
  return async (message) => {
    const { header, payload } = decodeFrame(message.body);
    if (header?.id === undefined) {
      throw new NsqDecodeError(
        'not a request from ClientNsq.send(): @MessagePattern handlers answer requests; use @EventPattern for plain messages',
      );
    }
    if (header.deadline !== undefined && Date.now() > header.deadline) return; // nobody waits
    let data: unknown;
    try {
      data = host.deserialize ? await host.deserialize(payload) : decodeBody(payload);
    } catch (err) {
      // Dead-lettered, and the caller told at once instead of at its timeout.
      await host.reply(message.address, header, {
        err: { status: 'error', code: 'ERR_NSQ_DECODE', message: (err as Error).message },
        isDisposed: true,
      });
      throw err;
    }
    const context = new NsqContext([message, undefined, host.pattern, header]);
    // This request's view of the shutdown; its listener goes when the request ends, so that a
    // long-lived server holds nothing per request.
    const signal = host.shutdown;
    let onShutdown!: () => void;
    const shutDown = new Promise<never>((_, reject) => (onShutdown = () => reject(signal.reason)));
    shutDown.catch(() => undefined);
    signal.addEventListener('abort', onShutdown, { once: true });
    if (signal.aborted) onShutdown();
    // A handler that throws becomes an erroring stream, so its error is replied, not lost; a
    // shutdown ends a request still running with an error reply.
    const produce = async () => {
      try {
        const result = await Promise.race([handler(data, context), shutDown]);
        return untilShutdown(host.toObservable(result), shutDown);
      } catch (err) {
        return throwError(() => err);
      }
    };
    // Settles once the last reply is published; an error reply is marked on the span (if any).
    const run = (fail?: (err: unknown) => void) =>
      new Promise<void>((resolve, reject) => {
        host.handle(context, produce, (packet) => {
          if (packet.err !== undefined) fail?.(packet.err);
          return host
            .reply(message.address, header, packet)
            .then(() => packet.isDisposed && resolve(), reject);
        });
      });
    try {
      await (host.tracer ? host.tracer.process(context, run) : run());
    } finally {
      signal.removeEventListener('abort', onShutdown);
    }
  };
}

/** The stream, errored with the shutdown's reason if the server closes first. */
function untilShutdown<T>(source: Observable<T>, shutDown: Promise<never>): Observable<T> {
  return new Observable<T>((subscriber) => {
    const subscription = source.subscribe(subscriber);
    shutDown.catch((err: unknown) => subscriber.error(err));
    return subscription;
  });
}

/** Every request running listens on the shutdown signal: there is no sensible limit to warn at. */
export function withoutListenerLimit(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}
