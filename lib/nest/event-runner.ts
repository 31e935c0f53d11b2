import type { MessageHandler as NestHandler } from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import type { NsqMessage } from '../consumer/nsq-message.js';
import { NsqContext } from './nsq-context.js';
import { decodeBody } from './payload.js';

/** Runs a Nest handler to its end: resolves on success, rejects on any failure. */
export type HandlerInvoker = (
  handler: NestHandler,
  data: unknown,
  context: NsqContext,
) => Promise<void>;

export interface EventRunnerSettings {
  /** The handler gets the body as a Buffer. */
  raw: boolean;
  /** The handler answers with ctx.finish() / ctx.requeue(). */
  manualAck: boolean;
  /** A custom deserializer, if the server has one: body -> data. */
  deserialize?: (message: NsqMessage) => Promise<unknown>;
  invoke: HandlerInvoker;
}

/**
 * The consumer's handler for an @EventPattern: decodes the body, runs the Nest handler and
 * settles when it is done (the consumer then FINs), or rejects (the consumer REQs).
 */
export function eventRunner(
  handler: NestHandler,
  { raw, manualAck, deserialize, invoke }: EventRunnerSettings,
): (message: NsqMessage) => Promise<void> {
  const run = (data: unknown, message: NsqMessage): Promise<void> => {
    if (!manualAck) return invoke(handler, data, new NsqContext([message, undefined]));
    let onAnswer!: () => void;
    const answered = new Promise<void>((resolve) => (onAnswer = resolve));
    const done = invoke(handler, data, new NsqContext([message, onAnswer]));
    // With manual acknowledgement the message stays in flight until the handler answers.
    return done.then(() => (message.answered ? undefined : answered));
  };
  // Kept free of awaits on the common path: every microtask here costs at 100k+ msg/s.
  return (message) => {
    if (deserialize && !raw) return deserialize(message).then((data) => run(data, message));
    // A body that cannot be decoded throws NsqDecodeError here: dead-lettered, never retried.
    return run(raw ? message.body : decodeBody(message.body), message);
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
