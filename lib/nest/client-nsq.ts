import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import type { Observable } from 'rxjs';
import { assertOutputBuffering, connectionSettingsOf, hideSecret } from '../connection/settings.js';
import { rejectUnknownOptions, resolveOptions } from '../options.js';
import {
  checkProducerOptions,
  rejectRenamedOptions,
  type ProducerOptions,
} from '../producer/options.js';
import { clientSchema, type NsqClientOptions } from './client-options.js';
import { serverSchema } from './server-options.js';
import { Producer } from '../producer/producer.js';
import { NsqClosedError } from '../errors.js';
import type { ProducerMetrics } from '../metrics.js';
import type { NsqStatus } from './constants.js';
import { describe } from './describe-error.js';
import { ReportLimiter } from '../rate-limit.js';
import { encodeBody, encodeFrame, type FrameHeader } from './payload.js';
import { NsqRecord } from './nsq-record.js';
import { ReplyInbox } from './reply-inbox.js';
import { topicOfPattern } from './patterns.js';
import { settled } from './settled.js';
import { asBody, frame, framing, publishBody } from './outgoing.js';
import { LazyTracer, traced, type ProducerSpan } from './tracing.js';

export type NsqClientEvents = {
  connected: (address: string) => void;
  disconnected: (address: string, error: Error | undefined) => void;
  /** A connect attempt failed; publishes go to another nsqd, or wait `retryInMs` for this one. */
  connectFailed: (address: string, error: Error, retryInMs: number) => void;
  error: (error: Error) => void;
};

/** At most one log line per topic in this long about emits nobody awaited that failed. */
const UNOBSERVED_LOG_INTERVAL = 5000;

/**
 * Publishes to NSQ from Nest: `emit(topic, data)` is PUB (coalesced into MPUB), an NsqRecord
 * with a delay is DPUB; `send(topic, data)` is a request answered by a `@MessagePattern` handler.
 * After close(), connect() (or the next emit/send) starts afresh.
 *
 * The base's status type stays `string` so that ClientNsq fits ClientsModule's `customClass`.
 */
export class ClientNsq extends ClientProxy<NsqClientEvents> implements OnApplicationShutdown {
  private readonly events = new EventEmitter();
  protected readonly logger = new Logger(ClientNsq.name);
  /** nsqd addresses lost, to tell a reconnect from a first connect. */
  private readonly lost = new Set<string>();
  /** Failed emits nobody subscribed to, logged per topic at most every few seconds. */
  private readonly unobserved = new ReportLimiter(UNOBSERVED_LOG_INTERVAL);
  private readonly requestTimeout: number;
  private readonly lookupd: string[];
  private current?: Producer;
  private connection?: Promise<Producer>;
  private inbox?: ReplyInbox;
  /** With `tracing: true`: a PRODUCER span per emit()/send(). */
  private readonly tracing?: LazyTracer;
  /** Counts close() calls: work started before one must not revive the client after it. */
  private generation = 0;

  /** The options, with the AUTH secret hidden from inspection and logs. */
  private readonly options: NsqClientOptions;

  constructor(options: NsqClientOptions) {
    super();
    this.options = hideSecret(options);
    if (options && typeof options === 'object') {
      // Unknown keys first: a typo ('nsqds') is named as such, not as a missing option.
      rejectRenamedOptions('ClientNsq', options);
      rejectUnknownOptions('ClientNsq', clientSchema, options, { ServerNsq: serverSchema });
      const o = resolveOptions('ClientNsq', clientSchema, options);
      checkProducerOptions('ClientNsq', options, o);
      assertOutputBuffering('ClientNsq', options);
      this.requestTimeout = o.requestTimeout!;
      this.lookupd = o.lookupd ?? [];
      if (o.tracing) this.tracing = new LazyTracer('ClientNsq');
    } else {
      this.requestTimeout = 0;
      this.lookupd = [];
    }
    this.current = this.createProducer(); // checks the options the way Producer does
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
    this.events.on('error', () => {}); // listeners are optional
  }

  /** 'connected' | 'disconnected' | 'reconnecting', without repeats. */
  override get status(): Observable<NsqStatus> {
    return super.status as Observable<NsqStatus>;
  }

  private createProducer(): Producer {
    const {
      serializer: _s,
      deserializer: _d,
      lookupd: _l,
      requestTimeout: _r,
      tracing: _t,
      ...rest
    } = this.options ?? ({} as NsqClientOptions);
    const producer = new Producer(rest as ProducerOptions, 'ClientNsq');
    producer.on('connected', (address) => {
      if (this.lost.delete(address)) this.logger.log(`Reconnected to nsqd ${address}`);
      else this.logger.debug?.(`Connected to nsqd ${address}`);
      this._status$.next('connected');
      this.events.emit('connected', address);
    });
    producer.on('connectFailed', (address, error, retryInMs) => {
      this.logger.warn(
        `Could not connect to nsqd ${address} (next try in ${retryInMs} ms): ${error.message}`,
      );
      this._status$.next('disconnected');
      this.events.emit('connectFailed', address, error, retryInMs);
    });
    producer.on('warning', (error) => {
      this.logger.warn(error.message);
      this.events.emit('error', error);
    });
    producer.on('disconnected', (address, error) => {
      if (error && producer.state === 'open') {
        this.lost.add(address);
        this.logger.warn(`Lost nsqd ${address}: ${error.message}; the next publish reconnects`);
      }
      this._status$.next('disconnected');
      this.events.emit('disconnected', address, error);
    });
    return producer;
  }

  /** The producer, a new one after close(). */
  private get producer(): Producer {
    if (!this.current || this.current.state !== 'open') this.current = this.createProducer();
    return this.current;
  }

  /** Connects to the first reachable nsqd. Cached: every caller shares one attempt. */
  connect(): Promise<Producer> {
    const generation = this.generation;
    const producer = this.producer;
    this.connection ??= producer.connect().then(
      () => {
        if (generation !== this.generation) throw closedWhile('connecting');
        return producer;
      },
      (err: unknown) => {
        if (this.generation === generation) this.connection = undefined;
        throw err;
      },
    );
    return this.connection;
  }

  /**
   * Publishes at once (hot, like Nest's emit) without Nest's per-call connect; the returned
   * Observable emits once nsqd acknowledged, then completes, or errors.
   */
  override emit<TResult = any, TInput = any>(pattern: any, data: TInput): Observable<TResult> {
    // Nest's own checks and error (InvalidMessageException) for a missing pattern or data.
    if (pattern === undefined || pattern === null || data === undefined || data === null) {
      return super.emit(pattern, data);
    }
    let work: Promise<unknown>;
    try {
      // Nest 12's createPacket() runs the dispatch hook; Nest 11's ClientProxy has neither.
      const packet =
        typeof this.createPacket === 'function'
          ? this.createPacket(pattern, data)
          : { pattern, data };
      work = this.dispatchEvent(packet);
    } catch (err) {
      work = Promise.reject(err);
    }
    return settled(work, (error) => this.logUnobserved(pattern, error));
  }

  /** A failed emit nobody subscribed to would leave no trace: logged, at most every 5 s a topic. */
  private logUnobserved(pattern: unknown, error: unknown): void {
    let topic: string;
    try {
      topic = topicOfPattern(pattern);
    } catch {
      topic = String(pattern);
    }
    const held = this.unobserved.pass(topic);
    if (held === undefined) return;
    this.logger.error(
      `emit to ${topic} failed and nothing subscribed to its result${held}: ${describe(error)}`,
    );
  }

  /** What the current producer has done since the client was made or last closed, and its state now. */
  metrics(): ProducerMetrics {
    return this.unwrap<Producer>().metrics();
  }

  protected dispatchEvent<T = any>(packet: ReadPacket): Promise<T> {
    if (this.tracing) {
      const topic = topicOfPattern(packet.pattern);
      return traced(this.tracing, topic, 'publish', (span) => this.dispatch<T>(packet, span));
    }
    return this.dispatch<T>(packet);
  }

  private dispatch<T>(packet: ReadPacket, span?: ProducerSpan): Promise<T> {
    const topic = topicOfPattern(packet.pattern);
    const record = packet.data instanceof NsqRecord ? packet.data : undefined;
    const data = record ? record.data : packet.data;
    const header = framing(packet, record, span);
    // The producer of now: a close() meanwhile fails this emit rather than opening a new one.
    const producer = this.producer;
    if (this.options.serializer) {
      return Promise.resolve(this.serializer.serialize({ pattern: packet.pattern, data })).then(
        (serialized) =>
          publishBody(producer, topic, frame(header, asBody(serialized)), record) as Promise<T>,
      );
    }
    // No async wrapper on the common path: one promise per emit, the producer's own.
    return publishBody(producer, topic, frame(header, encodeBody(data)), record) as Promise<T>;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    if (this.connection === undefined) {
      // close() came between Nest's connect() and this call: nothing is revived for it.
      callback({ err: closedWhile('connecting'), isDisposed: true });
      return () => undefined;
    }
    const producer = this.producer;
    const id = randomUUID();
    const topic = topicOfPattern(packet.pattern);
    const record = packet.data instanceof NsqRecord ? packet.data : undefined;
    const data = record ? record.data : packet.data;
    const inbox = this.replyInbox();
    const deadline = inbox.track(id, topic, callback);
    const fail = (err: unknown) => {
      inbox.forget(id);
      callback({ err, isDisposed: true });
    };
    const request = (span?: ProducerSpan) => {
      const header: FrameHeader = {
        ...framing(packet, record, span),
        id,
        replyTo: inbox.topic,
        deadline,
      };
      return inbox
        .ready()
        .then(() =>
          this.options.serializer
            ? this.serializer.serialize({ pattern: packet.pattern, data })
            : encodeBody(data),
        )
        .then((payload) =>
          publishBody(producer, topic, encodeFrame(header, asBody(payload)), record),
        );
    };
    (this.tracing ? traced(this.tracing, topic, 'send', request) : request()).catch(fail);
    return () => inbox.forget(id);
  }

  /** The inbox of replies, made on the first send(). */
  private replyInbox(): ReplyInbox {
    if (!this.inbox) {
      const inbox = new ReplyInbox({
        consumer: connectionSettingsOf(this.options),
        nsqd: this.options.nsqd,
        lookupd: this.lookupd,
        requestTimeout: this.requestTimeout,
        // A custom deserializer gets the reply body as it came; Nest's default gets its JSON.
        decodeReply: this.options.deserializer
          ? (body) => this.deserializer.deserialize(body)
          : (body) => this.deserializer.deserialize(JSON.parse(body.toString())),
        onError: (error) => {
          this.logger.warn(error.message);
          this.events.emit('error', error);
        },
      });
      // A reply topic that could not be set up fails its requests with why, and is tried again
      // by the next send().
      inbox.ready().catch((err: Error) => {
        if (this.inbox === inbox) this.inbox = undefined;
        void inbox.close(err);
      });
      this.inbox = inbox;
    }
    return this.inbox;
  }

  /**
   * Publishes what is batched, waits for acknowledgements, fails the requests still waiting,
   * then disconnects. A later connect(), emit() or send() starts afresh.
   */
  async close(): Promise<void> {
    const inbox = this.inbox;
    const producer = this.current;
    this.generation++;
    this.inbox = undefined;
    this.connection = undefined;
    await Promise.all([producer?.close(), inbox?.close()]);
    this._status$.next('disconnected');
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  override on<K extends keyof NsqClientEvents, C extends NsqClientEvents[K] = NsqClientEvents[K]>(
    event: K,
    callback: C,
  ): void {
    this.events.on(event, callback as (...args: any[]) => void);
  }

  /** The underlying Producer (after close(), the closed one until the client is used again). */
  unwrap<T = Producer>(): T {
    return (this.current ?? this.producer) as T;
  }
}

const closedWhile = (what: string) =>
  new NsqClosedError(`ClientNsq was closed while ${what}; connect() or send again to reopen it`);
