import type { MessageHandler as NestHandler, WritePacket } from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import type { NsqMessage } from '../consumer/nsq-message.js';
import { NsqContext } from './nsq-context.js';
import { decodeBody, decodeFrame, type FrameHeader } from './payload.js';

/** Runs a Nest handler to its end: resolves on success, rejects on any failure. */
export type HandlerInvoker = (
  handler: NestHandler,
  data: unknown,
  context: NsqContext,
) => Promise<void>;

/** Publishes a reply to a request (nothing once its caller's deadline has passed). */
export type Replier = (address: string, request: FrameHeader, packet: WritePacket) => Promise<void>;

export interface EventRunnerSettings {
  pattern: string;
  /** The handler gets the body as a Buffer. */
  raw: boolean;
  /** The handler answers with ctx.finish() / ctx.requeue(). */
  manualAck: boolean;
  /** A custom deserializer, if the server has one: payload -> data. */
  deserialize?: (payload: Buffer) => Promise<unknown>;
  invoke: HandlerInvoker;
  reply: Replier;
}

/**
 * The consumer's handler for an @EventPattern: decodes the body, runs the Nest handler and
 * settles when it is done (the consumer then FINs), or rejects (the consumer REQs). A request
 * that reaches it is answered at once with an error: an event handler cannot answer it.
 */
export function eventRunner(
  handler: NestHandler,
  { pattern, raw, manualAck, deserialize, invoke, reply }: EventRunnerSettings,
): (message: NsqMessage) => Promise<void> {
  const run = (data: unknown, message: NsqMessage, header?: FrameHeader): Promise<void> => {
    if (!manualAck)
      return invoke(handler, data, new NsqContext([message, undefined, pattern, header]));
    let onAnswer!: () => void;
    const answered = new Promise<void>((resolve) => (onAnswer = resolve));
    const done = invoke(handler, data, new NsqContext([message, onAnswer, pattern, header]));
    // With manual acknowledgement the message stays in flight until the handler answers.
    return done.then(() => (message.answered ? undefined : answered));
  };
  // Kept free of awaits on the common path: every microtask here costs at 100k+ msg/s.
  return (message) => {
    if (raw) return run(message.body, message);
    // A body that cannot be decoded throws NsqDecodeError here: dead-lettered, never retried.
    const { header, payload } = decodeFrame(message.body);
    if (header?.id !== undefined) {
      return reply(message.address, header, {
        err: {
          status: 'error',
          code: 'ERR_NSQ_NO_HANDLER',
          message: `${message.topic}/${message.channel} has an @EventPattern handler, no @MessagePattern: it cannot answer a request`,
        },
        isDisposed: true,
      });
    }
    if (deserialize) return deserialize(payload).then((data) => run(data, message, header));
    return run(decodeBody(payload), message, header);
  };
}

/**
 * Calls a Nest handler and waits for its result, Observable included; rejects on failure.
 * Nest's base handleEvent does not surface failures, so the server calls handlers itself.
 */
export function runToEnd(handler: NestHandler, data: unknown, context: NsqContext): Promise<void> {
  return Promise.resolve(handler(data, context)).then(runStream) as Promise<void>;
}

/** Nest's handler proxy has already awaited a promise; only a stream is left to run. */
function runStream(result: unknown): Promise<unknown> | undefined {
  return isObservable(result) ? lastValueFrom(result, { defaultValue: undefined }) : undefined;
}
