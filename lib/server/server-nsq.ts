import { EventEmitter } from 'node:events';
import type { ConsumerDeserializer, ConsumerSerializer } from '@nestjs/microservices';
import {
  CustomTransportStrategy,
  Server,
  type MessageHandler as NestHandler,
} from '@nestjs/microservices';
import { Logger } from '@nestjs/common';
import { isObservable, lastValueFrom, throwError } from 'rxjs';
import { Consumer, type ConsumerOptions } from '../consumer/consumer.js';
import type { BackoffSettings } from '../consumer/backoff.js';
import type { NsqMessage } from '../consumer/message.js';
import { Producer } from '../producer/producer.js';
import { NsqValidationError } from '../protocol/errors.js';
import { assertTopicName } from '../protocol/names.js';
import { NSQ_TRANSPORT, type NsqStatus } from '../nsq.constants.js';
import {
  decodeBody,
  decodeRequest,
  encodeDeadLetter,
  NsqDecodeError,
  type NsqDeadLetter,
  type ReplyEnvelope,
} from '../payload.js';
import { NsqContext } from './nsq.context.js';

/** Per-handler options, given as @EventPattern / @MessagePattern extras. */
export interface NsqHandlerOptions {
  maxInFlight?: number;
  maxAttempts?: number;
  /** ms, or a function of the attempt number. */
  requeueDelay?: ConsumerOptions['requeueDelay'];
  backoff?: false | Partial<BackoffSettings>;
  /** Topic that receives messages given up (see NsqDeadLetter for the format). */
  deadLetterTopic?: string;
  /** The handler answers with ctx.finish() / ctx.requeue(); nothing is FINished for it. */
  manualAck?: boolean;
  /** The handler gets the body as a Buffer, untouched. */
  raw?: boolean;
}

export interface NsqServerOptions
  extends
    Omit<ConsumerOptions, 'onGiveUp' | 'maxInFlight' | 'maxAttempts' | 'requeueDelay' | 'backoff'>,
    Omit<NsqHandlerOptions, 'manualAck' | 'raw'> {
  /** Called with every message given up, after it went to the dead-letter topic (if any). */
  onDiscard?: (letter: NsqDeadLetter) => unknown;
  /** Turns a raw body into `{ pattern, data }`; default: JSON, else UTF-8 text. */
  deserializer?: ConsumerDeserializer;
  /** Turns a reply packet into a body; default: JSON. */
  serializer?: ConsumerSerializer;
}

export type NsqServerEvents = {
  connected: (address: string, pattern: string) => void;
  disconnected: (address: string, pattern: string, error: Error | undefined) => void;
  reconnecting: (address: string, pattern: string, delayMs: number) => void;
  error: (error: Error) => void;
};

/** The consumer of one 'topic/channel' pattern and what it needs. */
interface Route {
  pattern: string;
  topic: string;
  channel: string;
  consumer: Consumer;
}

const HANDLER_OPTION_KEYS = [
  'maxInFlight',
  'maxAttempts',
  'requeueDelay',
  'backoff',
  'deadLetterTopic',
] as const;

/**
 * NSQ as a Nest microservice transport: one consumer per `@EventPattern('topic/channel')` or
 * `@MessagePattern('topic/channel')`. A handler that resolves FINs its message; one that throws
 * (or rejects, or errors its Observable) REQs it with a growing delay; after maxAttempts the
 * message goes to the dead-letter topic and the onDiscard hook, then FIN.
 */
export class ServerNsq
  extends Server<NsqServerEvents, NsqStatus>
  implements CustomTransportStrategy
{
  override transportId = NSQ_TRANSPORT;
  protected override readonly logger = new Logger(ServerNsq.name);
  override readonly propagatesEventHandlerErrors = true;
  private readonly routes: Route[] = [];
  /** Reply and dead-letter publishers, one per nsqd a message came from. */
  private readonly producers = new Map<string, Producer>();
  private readonly events = new EventEmitter();
  private readonly unhealthy = new Set<string>();
  private closed = false;
  private readonly defaultStartHook = this.onProcessingStartHook;

  constructor(private readonly options: NsqServerOptions = {}) {
    super();
    if (!options.nsqd?.length && !options.lookupd?.length) {
      throw new NsqValidationError(
        "ServerNsq: give nsqd (TCP 'host:port') and/or lookupd (HTTP 'host:port') addresses",
      );
    }
    // Check every consumer option now rather than at listen(): a Consumer connects only on start().
    try {
      new Consumer('options', 'check', () => undefined, options);
    } catch (err) {
      (err as Error).message = (err as Error).message.replace(
        'Consumer(options/check)',
        'ServerNsq',
      );
      throw err;
    }
    if (options.deadLetterTopic !== undefined) assertTopicName(options.deadLetterTopic);
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
    this.events.on('error', () => {}); // reported through the logger; listeners are optional
  }

  /** Subscribes every handler's channel; calls back once all are subscribed (or discovering). */
  async listen(callback: (error?: unknown) => void): Promise<void> {
    try {
      for (const [pattern, handler] of this.messageHandlers)
        this.routes.push(this.createRoute(pattern, handler));
      await Promise.all(this.routes.map((r) => r.consumer.start()));
      this._status$.next('connected');
      callback();
    } catch (err) {
      await this.close();
      callback(err);
    }
  }

  private createRoute(pattern: string, handler: NestHandler): Route {
    const slash = pattern.indexOf('/');
    if (slash < 1 || slash === pattern.length - 1) {
      throw new NsqValidationError(
        `ServerNsq: pattern ${JSON.stringify(pattern)} must be 'topic/channel', e.g. @EventPattern('orders/billing')`,
      );
    }
    const topic = pattern.slice(0, slash);
    const channel = pattern.slice(slash + 1);
    const extras = (handler.extras ?? {}) as NsqHandlerOptions;
    const settings: ConsumerOptions = { ...this.options };
    for (const key of HANDLER_OPTION_KEYS) {
      if (extras[key] !== undefined) (settings as Record<string, unknown>)[key] = extras[key];
    }
    const deadLetterTopic = extras.deadLetterTopic ?? this.options.deadLetterTopic;
    if (deadLetterTopic !== undefined) assertTopicName(deadLetterTopic);
    const run = handler.isEventHandler
      ? this.eventRunner(pattern, handler, extras)
      : this.requestRunner(handler);
    const consumer: Consumer = new Consumer(topic, channel, run, {
      ...settings,
      onGiveUp: (message, reason) =>
        this.discard(message, reason, deadLetterTopic, consumer.maxAttempts),
    });
    this.watch(consumer, pattern);
    return { pattern, topic, channel, consumer };
  }

  private eventRunner(pattern: string, handler: NestHandler, extras: NsqHandlerOptions) {
    const raw = extras.raw === true;
    const manualAck = extras.manualAck === true;
    const custom = this.options.deserializer !== undefined;
    // Kept free of awaits on the common path: every microtask here costs at 100k+ msg/s.
    return (message: NsqMessage): Promise<void> => {
      if (custom && !raw) {
        return this.deserialize(message, pattern).then((data) =>
          this.runMessage(handler, data, message, manualAck),
        );
      }
      // A body that cannot be decoded throws NsqDecodeError here: dead-lettered, never retried.
      const data = raw ? message.body : decodeBody(message.body);
      return this.runMessage(handler, data, message, manualAck);
    };
  }

  private runMessage(
    handler: NestHandler,
    data: unknown,
    message: NsqMessage,
    manualAck: boolean,
  ): Promise<void> {
    if (!manualAck)
      return this.runEventHandler(handler, data, new NsqContext([message, undefined]));
    let onAnswer!: () => void;
    const answered = new Promise<void>((resolve) => (onAnswer = resolve));
    const done = this.runEventHandler(handler, data, new NsqContext([message, onAnswer]));
    // With manual acknowledgement the message stays in flight until the handler answers.
    return done.then(() => (message.answered ? undefined : answered));
  }

  private async deserialize(message: NsqMessage, pattern: string): Promise<unknown> {
    try {
      const packet = await this.deserializer.deserialize(message.body, {
        channel: pattern,
        pattern,
      });
      return (packet as { data?: unknown }).data;
    } catch (err) {
      throw new NsqDecodeError(`deserializer failed: ${(err as Error).message ?? err}`, {
        cause: err,
      });
    }
  }

  /**
   * Runs an event handler to the end. Nest's base handleEvent does not surface failures; here
   * a throw, a rejection or an erroring Observable all reject, so the message is requeued.
   * The processing hooks (tracing) are skipped while nobody has set them.
   */
  private runEventHandler(handler: NestHandler, data: unknown, context: NsqContext): Promise<void> {
    if (this.onProcessingStartHook === this.defaultStartHook && !this.onProcessingEndHook) {
      return runToEnd(handler, data, context);
    }
    // A hook may return nothing, so the outcome travels through our own promise, not its.
    return new Promise<void>((resolve, reject) => {
      this.runWithProcessingHooks(context, async (runEndHook) => {
        try {
          await runToEnd(handler, data, context);
          resolve();
        } catch (err) {
          reject(err);
        } finally {
          runEndHook();
        }
      });
    });
  }

  override async handleEvent(
    pattern: string,
    packet: { data: unknown },
    context: NsqContext,
  ): Promise<void> {
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
      this.logger.error(`There is no NSQ event handler for ${pattern}`);
      return;
    }
    return this.runEventHandler(handler, packet.data, context);
  }

  private requestRunner(handler: NestHandler) {
    return async (message: NsqMessage): Promise<void> => {
      const request = decodeRequest(message.body);
      const context = new NsqContext([message, undefined]);
      const replies = this.producerFor(message.address);
      const reply = async (packet: Omit<ReplyEnvelope, 'id'>) => {
        const body = await this.serializer.serialize({ ...packet, id: request.id } as never);
        await replies.publish(
          request.replyTo,
          typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
        );
      };
      // The request is FINished once its last reply is published; a failed publish requeues it.
      // A handler that throws becomes an erroring stream, so its error is replied, not lost.
      const produce = async () => {
        try {
          return this.transformToObservable(await handler(request.data, context));
        } catch (err) {
          return throwError(() => err);
        }
      };
      await new Promise<void>((resolve, reject) => {
        this.handleRequest(context, produce, (packet) =>
          reply(packet).then(() => packet.isDisposed && resolve(), reject),
        );
      });
    };
  }

  private producerFor(address: string): Producer {
    let producer = this.producers.get(address);
    if (!producer) {
      const { nsqd: _n, lookupd: _l, ...settings } = this.options;
      producer = new Producer({ ...settings, nsqd: [address] });
      this.producers.set(address, producer);
    }
    return producer;
  }

  /** Dead-letters a message and tells the discard hook; a failure here keeps the message. */
  private async discard(
    message: NsqMessage,
    reason: unknown,
    deadLetterTopic: string | undefined,
    maxAttempts: number,
  ): Promise<void> {
    const letter: NsqDeadLetter = {
      topic: message.topic,
      channel: message.channel,
      id: message.id,
      attempts: message.attempts,
      error: describe(reason),
      reason:
        reason instanceof NsqDecodeError
          ? 'undecodable'
          : maxAttempts > 0 && message.attempts >= maxAttempts
            ? 'maxAttempts'
            : 'gaveUp',
      failedAt: new Date().toISOString(),
      body: message.body,
    };
    this.logger.warn(
      `Gave up on message ${letter.id} of ${letter.topic}/${letter.channel} after ${letter.attempts} attempt(s) ` +
        `(${letter.reason}: ${letter.error})${deadLetterTopic ? `; dead-lettered to ${deadLetterTopic}` : ''}`,
    );
    if (deadLetterTopic)
      await this.producerFor(message.address).publish(deadLetterTopic, encodeDeadLetter(letter));
    await this.options.onDiscard?.(letter);
  }

  private watch(consumer: Consumer, pattern: string): void {
    consumer.on('connected', (address) => {
      this.unhealthy.delete(`${pattern}@${address}`);
      if (this.unhealthy.size === 0 && !this.closed) this._status$.next('connected');
      this.events.emit('connected', address, pattern);
    });
    consumer.on('disconnected', (address, error) => {
      if (this.closed) return; // our own close()
      this.unhealthy.add(`${pattern}@${address}`);
      this._status$.next('disconnected');
      this.logger.warn(`Lost nsqd ${address} for ${pattern}: ${error?.message ?? 'closed'}`);
      this.events.emit('disconnected', address, pattern, error);
    });
    consumer.on('reconnecting', (address, delayMs) => {
      if (this.closed) return;
      this._status$.next('reconnecting');
      this.events.emit('reconnecting', address, pattern, delayMs);
    });
    consumer.on('warning', (error) => {
      this.logger.warn(error.message);
      this.events.emit('error', error);
    });
    // Nest's exception filter already logged an unknown error with its stack; this line adds
    // what NSQ does about it.
    consumer.on('failed', (message, error) => {
      this.logger.warn(
        `Handler for ${pattern} failed on message ${message.id} (attempt ${message.attempts}): ${describe(error)}`,
      );
    });
  }

  /** Stops intake, lets handlers in flight finish (drainTimeout), flushes FIN/REQ, disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.routes.map((r) => r.consumer.close()));
    await Promise.all([...this.producers.values()].map((p) => p.close()));
    this._status$.next('disconnected');
  }

  on<K extends keyof NsqServerEvents, C extends NsqServerEvents[K] = NsqServerEvents[K]>(
    event: K,
    callback: C,
  ): void {
    this.events.on(event, callback as (...args: any[]) => void);
  }

  /** The consumers, one per 'topic/channel' pattern. */
  unwrap<T = Consumer[]>(): T {
    return this.routes.map((r) => r.consumer) as T;
  }
}

/** Calls a Nest handler and waits for its result, Observable included; rejects on failure. */
function runToEnd(handler: NestHandler, data: unknown, context: NsqContext): Promise<void> {
  return Promise.resolve(handler(data, context)).then(runStream) as Promise<void>;
}

/** Nest's handler proxy has already awaited a promise; only a stream is left to run. */
function runStream(result: unknown): Promise<unknown> | undefined {
  return isObservable(result) ? lastValueFrom(result, { defaultValue: undefined }) : undefined;
}

/** A one-line reason: an Error's message, an RpcException payload's message, else JSON. */
function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null) {
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string') return message;
    try {
      return JSON.stringify(error);
    } catch {
      // fall through
    }
  }
  return String(error);
}
