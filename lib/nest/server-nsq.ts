import { EventEmitter } from 'node:events';
import { Logger } from '@nestjs/common';
import { finalize } from 'rxjs';
import {
  CustomTransportStrategy,
  Server,
  type MessageHandler as NestHandler,
  type WritePacket,
} from '@nestjs/microservices';
import { assertOutputBuffering, connectionSettingsOf, hideSecret } from '../connection/settings.js';
import { Consumer } from '../consumer/consumer.js';
import type { ConsumerOptions } from '../consumer/options.js';
import { NsqValidationError } from '../errors.js';
import { rejectUnknownOptions, resolveOptions } from '../options.js';
import { assertTopicName } from '../protocol/names.js';
import { Producer } from '../producer/producer.js';
import { NSQ_TRANSPORT, type NsqStatus } from './constants.js';
import { DeadLetters } from './dead-letter.js';
import { reportConsumer } from './consumer-reports.js';
import { eventRunner, runToEnd, type Replier } from './event-runner.js';
import type { NsqContext } from './nsq-context.js';
import { NsqDecodeError, type FrameHeader } from './payload.js';
import { routeOfPattern } from './patterns.js';
import { withProcessingHooks, type ProcessingHooks } from './processing-hooks.js';
import { requestRunner, withoutListenerLimit } from './request-runner.js';
import { loadTracer, tracedInvoker, type NsqTracer } from './tracing.js';
import {
  HANDLER_EXTRAS,
  HANDLER_OVERRIDES,
  serverSchema,
  type NsqHandlerOptions,
  type NsqServerEvents,
  type NsqServerMetrics,
  type NsqServerOptions,
} from './server-options.js';
import { clientSchema } from './client-options.js';

export type {
  NsqHandlerOptions,
  NsqServerEvents,
  NsqServerMetrics,
  NsqServerOptions,
} from './server-options.js';

/** How long close() lets running requests finish before it answers them with an error. */
const REQUEST_SHUTDOWN_GRACE = 1000;

/** idle: made. listening: listen() called. closing, closed. */
type ServerState = 'idle' | 'listening' | 'closing' | 'closed';

/** The consumer of one 'topic/channel' pattern. */
interface Route {
  pattern: string;
  consumer: Consumer;
}

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
  private state: ServerState = 'idle';
  /** Aborted shortly into close(): requests still running then answer their callers with it. */
  private readonly shutdown = withoutListenerLimit(new AbortController());
  private readonly defaultStartHook = this.onProcessingStartHook;
  private readonly deadLetters: DeadLetters;

  /** The options, with the AUTH secret hidden from inspection and logs. */
  private readonly options: NsqServerOptions;

  constructor(options: NsqServerOptions = {}) {
    super();
    this.options = hideSecret(options);
    // Unknown keys first: a typo ('lookupds') is named as such, not as a missing option.
    rejectUnknownOptions('ServerNsq', serverSchema, options, { ClientNsq: clientSchema });
    if (!options.nsqd?.length && !options.lookupd?.length) {
      throw new NsqValidationError(
        "ServerNsq: give nsqd (TCP 'host:port') and/or lookupd (HTTP 'host:port') addresses",
      );
    }
    resolveOptions('ServerNsq', serverSchema, options);
    assertOutputBuffering('ServerNsq', options);
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
    this.events.on('error', () => {}); // reported through the logger; listeners are optional
    this.deadLetters = new DeadLetters(
      this.logger,
      (address) => this.producerFor(address),
      this.options.onDiscard,
    );
  }

  /** Subscribes every handler's channel; calls back once all are subscribed (or discovering). */
  async listen(callback: (error?: unknown) => void): Promise<void> {
    this.state = 'listening';
    try {
      const tracer = this.options.tracing ? await loadTracer('ServerNsq') : undefined;
      if (this.state !== 'listening') return callback(); // closed while the tracer loaded
      for (const [pattern, handler] of this.messageHandlers)
        this.routes.push(this.createRoute(pattern, handler, tracer));
      await Promise.all(this.routes.map((r) => r.consumer.start()));
      this._status$.next('connected');
      callback();
    } catch (err) {
      await this.close();
      callback(err);
    }
  }

  private createRoute(pattern: string, handler: NestHandler, tracer?: NsqTracer): Route {
    const { topic, channel } = routeOfPattern(pattern, this.options.channel);
    const extras = (handler.extras ?? {}) as NsqHandlerOptions;
    // Nest types handler extras loosely: a typo here would silently read nothing.
    rejectUnknownOptions(`ServerNsq: handler ${pattern}`, HANDLER_EXTRAS, extras);
    const settings: ConsumerOptions & NsqServerOptions = { ...this.options };
    for (const key of HANDLER_OVERRIDES) {
      if (extras[key] !== undefined) (settings as Record<string, unknown>)[key] = extras[key];
    }
    const {
      deadLetterTopic,
      onDiscard: _d,
      serializer: _s,
      deserializer: _z,
      channel: _c,
      tracing: _t,
      ...consumerOptions
    } = settings;
    if (deadLetterTopic !== undefined) assertTopicName(deadLetterTopic);
    const deserialize = this.options.deserializer
      ? (payload: Buffer) => this.deserialize(payload, pattern)
      : undefined;
    const reply: Replier = (address, request, packet) => this.reply(address, request, packet);
    const run = handler.isEventHandler
      ? eventRunner(handler, {
          pattern,
          raw: extras.raw === true,
          manualAck: extras.manualAck === true,
          deserialize,
          reply,
          invoke: tracedInvoker(tracer, (h, data, context) => this.invoke(h, data, context)),
        })
      : requestRunner(handler, {
          pattern,
          reply,
          deserialize,
          toObservable: (result) => this.transformToObservable(result),
          handle: (context, produce, respond) =>
            withProcessingHooks(this.hooks(), context, async (runEndHook) => {
              const response$ = await produce();
              this.send(response$.pipe(finalize(runEndHook)), respond);
            }),
          shutdown: this.shutdown.signal,
          tracer,
        });
    // A reader of this server's own dead letters gets no warning: they are the record already.
    const readsDeadLetters = [...this.messageHandlers.values()].some(
      (h) => ((h.extras ?? {}) as NsqHandlerOptions).deadLetterTopic === topic,
    );
    const noRecord = !deadLetterTopic && !this.options.onDiscard;
    if (
      handler.isEventHandler &&
      noRecord &&
      !readsDeadLetters &&
      this.options.deadLetterTopic !== topic
    ) {
      this.logger.warn(
        `${pattern}: a message given up (after maxAttempts, or undecodable) is logged and dropped; ` +
          'set deadLetterTopic or onDiscard to keep it',
      );
    }
    const consumer: Consumer = new Consumer(
      topic,
      channel,
      run,
      {
        // Adaptive RDY has nsqd write a request at once; without it, a request would wait in
        // nsqd's output buffer for up to outputBufferTimeout (25 ms a hop): no buffer then.
        ...(handler.isEventHandler || consumerOptions.adaptiveRdy !== false
          ? {}
          : { outputBufferSize: -1 }),
        ...consumerOptions,
        onGiveUp: (message, reason) =>
          this.deadLetters.discard(message, reason, deadLetterTopic, consumer.maxAttempts),
      },
      `ServerNsq(${pattern})`,
    );
    this.watch(consumer, pattern);
    return { pattern, consumer };
  }

  private async deserialize(payload: Buffer, pattern: string): Promise<unknown> {
    try {
      const packet = await this.deserializer.deserialize(payload, { channel: pattern, pattern });
      return (packet as { data?: unknown }).data;
    } catch (err) {
      throw new NsqDecodeError(`deserializer failed: ${(err as Error).message ?? err}`, {
        cause: err,
      });
    }
  }

  /** Publishes a reply to the request's caller, unless the caller has already given up. */
  private async reply(address: string, request: FrameHeader, packet: WritePacket): Promise<void> {
    if (request.deadline !== undefined && Date.now() > request.deadline) return;
    const body = await this.serializer.serialize({ ...packet, id: request.id } as never);
    await this.producerFor(address).publish(
      request.replyTo!,
      typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    );
  }

  /**
   * Runs an event handler to the end, inside the processing hooks (tracing) when some are set;
   * they are skipped while nobody has set them.
   */
  private invoke(handler: NestHandler, data: unknown, context: NsqContext): Promise<void> {
    if (this.onProcessingStartHook === this.defaultStartHook && !this.onProcessingEndHook) {
      return runToEnd(handler, data, context);
    }
    // A hook may return nothing, so the outcome travels through our own promise, not its.
    return new Promise<void>((resolve, reject) => {
      withProcessingHooks(this.hooks(), context, async (runEndHook) => {
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

  /** The processing hooks as set now, bound to this transport. */
  private hooks(): ProcessingHooks {
    const end = this.onProcessingEndHook;
    return {
      start: (context, done) => this.onProcessingStartHook(this.transportId, context, done),
      end: end && ((context) => end(this.transportId, context)),
    };
  }

  private producerFor(address: string): Producer {
    let producer = this.producers.get(address);
    if (!producer) {
      producer = new Producer(
        { ...connectionSettingsOf(this.options), nsqd: [address] },
        `ServerNsq(replies and dead letters via ${address})`,
      );
      this.producers.set(address, producer);
    }
    return producer;
  }

  private watch(consumer: Consumer, pattern: string): void {
    const closing = () => this.state === 'closing' || this.state === 'closed';
    consumer.on('connected', (address) => {
      if (this.unhealthy.delete(`${pattern}@${address}`))
        this.logger.log(`Reconnected to nsqd ${address} for ${pattern}`);
      if (this.unhealthy.size === 0 && !closing()) this._status$.next('connected');
      this.events.emit('connected', address, pattern);
    });
    consumer.on('disconnected', (address, error) => {
      if (closing()) return; // our own close()
      this.unhealthy.add(`${pattern}@${address}`);
      this._status$.next('disconnected');
      this.logger.warn(`Lost nsqd ${address} for ${pattern}: ${error?.message ?? 'closed'}`);
      this.events.emit('disconnected', address, pattern, error);
    });
    consumer.on('reconnecting', (address, delayMs) => {
      if (closing()) return;
      this._status$.next('reconnecting');
      this.events.emit('reconnecting', address, pattern, delayMs);
    });
    reportConsumer(consumer, pattern, this.logger, this.events);
  }

  /** Per pattern: what its consumer has done since listen(), and its state now. */
  metrics(): NsqServerMetrics {
    return {
      patterns: this.routes.map(({ pattern, consumer }) => ({
        pattern,
        ...consumer.metrics(),
        deadLettered:
          this.deadLetters.deadLettered.get(`${consumer.topic}/${consumer.channel}`) ?? 0,
      })),
    };
  }

  /** Stops intake, lets handlers in flight finish (drainTimeout), flushes FIN/REQ, disconnects. */
  async close(): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    // Requests get a moment to finish; those still running then answer with this (a plain
    // object, as Nest's exception filter makes of an RpcException) and are FINished.
    const grace = setTimeout(
      () =>
        this.shutdown.abort({
          status: 'error',
          code: 'ERR_NSQ_SERVER_CLOSING',
          message: 'The server shut down before it finished this request; try again',
        }),
      Math.min(REQUEST_SHUTDOWN_GRACE, this.options.drainTimeout ?? REQUEST_SHUTDOWN_GRACE),
    );
    await Promise.all(this.routes.map((r) => r.consumer.close()));
    clearTimeout(grace);
    await Promise.all([...this.producers.values()].map((p) => p.close()));
    this.state = 'closed';
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
