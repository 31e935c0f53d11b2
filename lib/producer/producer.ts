import { EventEmitter } from 'node:events';
import type { Identity } from '../connection/identify.js';
import { resolveConnectionOptions } from '../connection/settings.js';
import { NsqBackpressureError, NsqClosedError, NsqValidationError } from '../errors.js';
import { Lifecycle } from '../lifecycle.js';
import { PublishCounters, type ProducerMetrics } from '../metrics.js';
import { rejectUnknownOptions, resolveOptions } from '../options.js';
import * as commands from '../protocol/commands.js';
import { assertTopicName } from '../protocol/names.js';
import { consumerSchema } from '../consumer/options.js';
import { Batcher } from './batcher.js';
import { MessageLimits, type MessageBody } from './limits.js';
import { NsqdPool, type Publish } from './nsqd-pool.js';
import {
  checkProducerOptions,
  producerSchema,
  rejectRenamedOptions,
  type ProducerOptions,
} from './options.js';

export interface ProducerEvents {
  connected: [address: string, identity: Identity];
  disconnected: [address: string, error: Error | undefined];
  /** A connect attempt failed; the next publish tries the address again after `retryInMs`. */
  connectFailed: [address: string, error: Error, retryInMs: number];
  /** Something went wrong that the producer recovers from or works around. */
  warning: [error: Error];
}

/** open: publishes are taken. closing: waiting for acknowledgements. closed: gone. */
export type ProducerState = 'open' | 'closing' | 'closed';

const CLOSED =
  'close() was called on this Producer: create a new one to publish again ' +
  '(a ClientNsq opens a new one by itself on its next emit() or send())';

/**
 * Publishes to nsqd: PUB, MPUB and DPUB, with same-tick publishes to a topic coalesced into
 * one MPUB (the batcher), over a failover pool of nsqd connections (the pool).
 */
export class Producer extends EventEmitter<ProducerEvents> {
  readonly maxMessageSize: number;
  readonly maxBodySize: number;
  private readonly life = new Lifecycle<'open'>('open');
  private readonly maxDeferDelay: number;
  private readonly maxPendingMessages: number;
  private readonly maxPendingBytes: number;
  /** Publishes taken and not yet settled, and their bytes: the backpressure bound. */
  private pendingMessages = 0;
  private pendingBytes = 0;
  private readonly limits: MessageLimits;
  private readonly pool: NsqdPool;
  /** Undefined with batching off. */
  private readonly batcher?: Batcher;
  private readonly counters = new PublishCounters();
  /** The last topic name that passed the check (see checkTopic). */
  private lastGoodTopic?: string;

  constructor(
    options: ProducerOptions,
    /** How errors and warnings name this producer. */
    owner = 'Producer',
  ) {
    super();
    if (!options || typeof options !== 'object') {
      throw new NsqValidationError(`${owner}: options { nsqd: ['host:port'] } are required`);
    }
    rejectRenamedOptions(owner, options);
    rejectUnknownOptions(owner, producerSchema, options, { Consumer: consumerSchema });
    const o = resolveOptions(owner, producerSchema, options);
    checkProducerOptions(owner, options, o);
    this.maxMessageSize = o.maxMessageSize!;
    this.maxBodySize = o.maxBodySize!;
    this.maxDeferDelay = o.maxDeferDelay!;
    this.maxPendingMessages = o.maxPendingMessages!;
    this.maxPendingBytes = o.maxPendingBytes!;
    this.limits = new MessageLimits(this.maxMessageSize, this.maxBodySize);
    this.pool = new NsqdPool(
      o.nsqd,
      resolveConnectionOptions(owner, options, 'producer'),
      o.maxRetryDelay!,
      o.publishTimeout!,
      {
        connected: (address, identity) => this.emit('connected', address, identity),
        disconnected: (address, error) => {
          this.counters.disconnects++;
          this.emit('disconnected', address, error);
        },
        connectFailed: (address, error, retryInMs) =>
          this.emit('connectFailed', address, error, retryInMs),
        refused: (error) => this.limits.learnFrom(error),
        warning: (error) => this.emit('warning', error),
      },
      CLOSED,
    );
    if (o.batching) {
      this.batcher = new Batcher(
        (p, messages) => this.sendCommand(p, messages),
        this.limits,
        o.maxBatchCount!,
        o.maxBatchBytes!,
        (topic, bytes, error) => this.release(topic, 1, bytes, error),
        () => this.pool.flush(),
      );
    }
  }

  get state(): ProducerState {
    return this.life.state;
  }

  /** Resolves once close() has finished. */
  get closed(): Promise<void> {
    return this.life.closed;
  }

  /** What this producer has done since it was made, and its state now. */
  metrics(): ProducerMetrics {
    return {
      topics: this.counters.topicsSnapshot(),
      batchSize: this.counters.batchSize.snapshot(),
      pending: this.pendingMessages,
      connections: this.pool.connections().filter((c) => c.connected).length,
      disconnects: this.counters.disconnects,
    };
  }

  /** The nsqd addresses and whether each is connected, for health checks. */
  connections(): { address: string; connected: boolean; lastError?: string }[] {
    return this.pool.connections();
  }

  /** Connects now instead of on the first publish. */
  async connect(): Promise<void> {
    this.assertOpen();
    await this.pool.connect();
  }

  /** PUB (coalesced with other publishes to `topic` in the same tick into one MPUB). */
  publish(topic: string, body: MessageBody): Promise<void> {
    let buf: Buffer;
    try {
      this.assertOpen();
      this.checkTopic(topic);
      buf = this.limits.toBuffer(topic, body);
      if (!this.batcher) return this.send(topic, commands.pub(topic, buf), 1, buf.length);
      this.admit(1, buf.length);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.batcher.add(topic, buf);
  }

  /** MPUB: several messages in one command; all are published or none. */
  publishMany(topic: string, bodies: readonly MessageBody[]): Promise<void> {
    try {
      this.assertOpen();
      this.checkTopic(topic);
      if (!Array.isArray(bodies) || bodies.length === 0) {
        throw new NsqValidationError(
          `publishMany to "${topic}": give a non-empty array of messages`,
        );
      }
      const bufs = bodies.map((b) => this.limits.toBuffer(topic, b));
      this.limits.checkMpub(topic, bufs);
      const frame = commands.mpub(topic, bufs);
      return this.send(topic, frame, bufs.length, frame.length);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** DPUB: the message becomes visible to consumers after `delayMs`. */
  publishDeferred(topic: string, delayMs: number, body: MessageBody): Promise<void> {
    try {
      this.assertOpen();
      this.checkTopic(topic);
      if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > this.maxDeferDelay) {
        throw new NsqValidationError(
          `DPUB to "${topic}": delay must be an integer 0..${this.maxDeferDelay} ms (nsqd --max-req-timeout), got ${delayMs}`,
        );
      }
      const buf = this.limits.toBuffer(topic, body);
      return this.send(topic, commands.dpub(topic, delayMs, buf), 1, buf.length);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Throws if `topic` is not a valid name. The last good one is remembered: apps mostly publish
   * to one topic at a time, and the check would run for every message.
   */
  private checkTopic(topic: string): void {
    if (typeof topic === 'string' && topic === this.lastGoodTopic) return;
    assertTopicName(topic);
    this.lastGoodTopic = topic;
  }

  private assertOpen(): void {
    if (this.life.state !== 'open') throw new NsqClosedError(CLOSED);
  }

  /** Sends one command to `topic` that carries `messages` messages of `bytes` bytes. */
  private send(
    topic: string,
    frame: Buffer | Buffer[],
    messages: number,
    bytes: number,
  ): Promise<void> {
    this.admit(messages, bytes);
    return new Promise<void>((resolve, reject) =>
      this.sendCommand(
        {
          frame,
          settle: (error) => {
            this.release(topic, messages, bytes, error);
            if (error) reject(error);
            else resolve();
          },
        },
        messages,
      ),
    );
  }

  private sendCommand(publish: Publish, messages: number): void {
    this.counters.batchSize.observe(messages);
    this.pool.send(publish);
  }

  /** Takes publishes in, or refuses them at once when the producer holds too many already. */
  private admit(messages: number, bytes: number): void {
    const overCount = this.pendingMessages + messages > this.maxPendingMessages;
    if (overCount || this.pendingBytes + bytes > this.maxPendingBytes) {
      throw new NsqBackpressureError(
        `Producer holds ${this.pendingMessages} publishes (${this.pendingBytes} bytes) that nsqd ` +
          `has not acknowledged yet, at ${overCount ? `maxPendingMessages ${this.maxPendingMessages}` : `maxPendingBytes ${this.maxPendingBytes}`}: ` +
          'nothing was sent; nsqd is slow or unreachable, so wait for earlier publishes or raise the limit',
      );
    }
    this.pendingMessages += messages;
    this.pendingBytes += bytes;
  }

  /** Publishes settled, either way. */
  private release(topic: string, messages: number, bytes: number, error?: Error): void {
    this.pendingMessages -= messages;
    this.pendingBytes -= bytes;
    this.counters.settled(topic, messages, error !== undefined);
  }

  /** Publishes what is batched, waits for every acknowledgement (bounded), then disconnects. */
  close(timeoutMs = 10_000): Promise<void> {
    return this.life.close(() => this.drainAndDisconnect(timeoutMs));
  }

  private async drainAndDisconnect(timeoutMs: number): Promise<void> {
    this.batcher?.flushAll();
    const acknowledged = this.pool.outstanding().map(whenSettled);
    await Promise.race([
      Promise.all(acknowledged),
      new Promise((r) => setTimeout(r, timeoutMs).unref()),
    ]);
    await this.pool.close();
  }
}

/** Resolves once the publish is settled, either way. */
function whenSettled(p: Publish): Promise<void> {
  return new Promise<void>((resolve) => {
    const settle = p.settle;
    p.settle = (e) => {
      settle(e);
      resolve();
    };
  });
}
