import { EventEmitter } from 'node:events';
import type { Identity } from '../connection/identify.js';
import { resolveConnectionOptions } from '../connection/settings.js';
import { NsqConnectionError, NsqError, NsqValidationError } from '../errors.js';
import { Lifecycle } from '../lifecycle.js';
import type { ConsumerMetrics } from '../metrics.js';
import { rejectUnknownOptions, resolveOptions } from '../options.js';
import { producerSchema } from '../producer/options.js';
import { assertChannelName, assertTopicName } from '../protocol/names.js';
import { BackoffState, DEFAULT_BACKOFF } from './backoff.js';
import { MessageRunner, type MessageHandler } from './message-runner.js';
import { NsqMessage } from './nsq-message.js';
import { consumerSchema, type ConsumerOptions } from './options.js';
import { RdyController, type BackoffChange } from './rdy-controller.js';
import { SubscriptionPool } from './subscription-pool.js';

export interface ConsumerEvents {
  connected: [address: string, identity: Identity];
  disconnected: [address: string, error: Error | undefined];
  reconnecting: [address: string, delayMs: number];
  /** Something went wrong that the consumer recovers from (lookupd down, a failed connect...). */
  warning: [error: Error];
  /** A handler failed; the message was requeued or given up. */
  failed: [message: NsqMessage, error: unknown];
  /** A message was given up after maxAttempts (or at once, when the error says so). */
  gaveUp: [message: NsqMessage, reason: unknown];
  /** Backoff changed: 'paused' (RDY 0 for pauseMs), 'testing' (RDY 1), 'normal' (full RDY). */
  backoff: [change: BackoffChange];
  /** nsqlookupd lists an nsqd for the topic that its last poll did not; a connection follows. */
  discovered: [address: string];
}

/** idle: made, not started. running: started (connections come and go). closing, closed. */
export type ConsumerState = 'idle' | 'running' | 'closing' | 'closed';

/** One nsqd connection of a consumer, for health checks and tests. */
export interface ConsumerConnectionInfo {
  address: string;
  subscribed: boolean;
  rdy: number;
  inFlight: number;
}

/**
 * Consumes one topic/channel from many nsqd (given directly and/or discovered through
 * nsqlookupd), keeping at most `maxInFlight` messages in flight over all of them. A front over
 * three parts: the subscription pool (connections), the RDY controller (flow) and the message
 * runner (handler and answers).
 */
export class Consumer extends EventEmitter<ConsumerEvents> {
  readonly maxInFlight: number;
  readonly maxAttempts: number;
  private readonly life = new Lifecycle<'idle' | 'running'>('idle');
  private readonly drainTimeout: number;
  private readonly pool: SubscriptionPool;
  private readonly rdy: RdyController;
  private readonly runner: MessageRunner;
  private readonly counts = {
    received: 0,
    finished: 0,
    requeued: 0,
    failed: 0,
    gaveUp: 0,
    disconnects: 0,
  };

  constructor(
    readonly topic: string,
    readonly channel: string,
    handler: MessageHandler,
    options: ConsumerOptions = {},
    /** How errors and warnings name this consumer. */
    private readonly label = `Consumer(${topic}/${channel})`,
  ) {
    super();
    assertTopicName(topic);
    assertChannelName(channel);
    if (typeof handler !== 'function')
      throw new NsqValidationError('Consumer: handler must be a function');
    const owner = label;
    rejectUnknownOptions(owner, consumerSchema, options, { Producer: producerSchema });
    const o = resolveOptions(owner, consumerSchema, options);
    if (!o.nsqd?.length && !o.lookupd?.length) {
      throw new NsqValidationError(
        `${owner}: give nsqd (TCP 'host:port') and/or lookupd addresses`,
      );
    }
    this.maxInFlight = o.maxInFlight!;
    this.maxAttempts = o.maxAttempts!;
    this.drainTimeout = o.drainTimeout!;
    const delay = o.requeueDelay!;
    const backoff = o.backoff!;
    this.rdy = new RdyController(this.maxInFlight, {
      backoff: backoff === false ? undefined : new BackoffState({ ...DEFAULT_BACKOFF, ...backoff }),
      onBackoff: (change) => this.emit('backoff', change),
      adaptive: o.adaptiveRdy,
    });
    this.runner = new MessageRunner(
      handler,
      {
        maxInFlight: this.maxInFlight,
        maxAttempts: this.maxAttempts,
        requeueDelay: typeof delay === 'function' ? delay : () => delay,
        onGiveUp: o.onGiveUp,
      },
      {
        failed: (message, error) => {
          this.counts.failed++;
          this.emit('failed', message, error);
        },
        gaveUp: (message, reason) => {
          this.counts.gaveUp++;
          this.emit('gaveUp', message, reason);
        },
        warning: (error) => this.emit('warning', error),
      },
    );
    this.pool = new SubscriptionPool(
      topic,
      channel,
      resolveConnectionOptions(owner, options, 'consumer'),
      {
        nsqd: o.nsqd ?? [],
        lookupd: o.lookupd ?? [],
        lookupdPollInterval: o.lookupdPollInterval!,
        lookupdPollJitter: o.lookupdPollJitter!,
        maxReconnectDelay: o.maxReconnectDelay!,
        maxNsqdConnections: o.maxNsqdConnections!,
      },
      {
        message: (sub, data) => {
          const message = new NsqMessage(data, sub);
          if (!this.rdy.delivered(sub, message)) return;
          this.counts.received++;
          this.runner.accept(message);
        },
        answered: (sub, message, signal) => {
          // A message of a connection already gone was not answered to nsqd: not counted.
          if (!this.runner.answered(message)) return;
          if (message.outcome === 'finished') this.counts.finished++;
          else this.counts.requeued++;
          this.rdy.answered(sub, signal);
        },
        warning: (error) => this.emit('warning', error),
        phantom: (sub, error) => {
          if (!this.rdy.retire(sub)) return;
          this.emit(
            'warning',
            new NsqError(
              `${error.message}: nsqd delivered that id twice (after a restart) and now counts a ` +
                `message in flight that this consumer does not hold; replacing the connection to ` +
                `${sub.address} once its messages are answered`,
              { cause: error },
            ),
          );
        },
        connected: (sub, identity) => {
          this.emit('connected', sub.address, identity);
          this.rdy.add(sub, identity.max_rdy_count);
        },
        lost: (sub, error, wasSubscribed) => {
          if (wasSubscribed) {
            if (error) this.counts.disconnects++; // not our own close()
            this.emit('disconnected', sub.address, error);
          }
          this.runner.forgetConnection(sub.address);
          this.rdy.remove(sub);
        },
        reconnecting: (address, delayMs) => this.emit('reconnecting', address, delayMs),
        discovered: (address) => this.emit('discovered', address),
      },
    );
  }

  get state(): ConsumerState {
    return this.life.state;
  }

  /** Resolves once close() has finished. */
  get closed(): Promise<void> {
    return this.life.closed;
  }

  /** Messages delivered and not yet answered. */
  get inFlight(): number {
    return this.runner.inFlightCount;
  }

  /** What this consumer has done since it was made, and its state now. */
  metrics(): ConsumerMetrics {
    return {
      topic: this.topic,
      channel: this.channel,
      ...this.counts,
      handlerSeconds: this.runner.handlerSeconds.snapshot(),
      inFlight: this.runner.inFlightCount,
      rdy: this.rdy.totalRdy,
      connections: this.pool.all().filter((s) => s.subscribed).length,
      backoffLevel: this.rdy.backoffLevel,
    };
  }

  /** Every nsqd this consumer uses or waits to reconnect to, for health checks and tests. */
  connections(): ConsumerConnectionInfo[] {
    const live = this.pool.all().map((sub) => ({
      address: sub.address,
      subscribed: sub.subscribed,
      rdy: this.rdy.rdyOf(sub),
      inFlight: this.rdy.inFlightOf(sub),
    }));
    const waiting = this.pool
      .awaitingReconnect()
      .map((address) => ({ address, subscribed: false, rdy: 0, inFlight: 0 }));
    return [...live, ...waiting];
  }

  /**
   * Connects to every nsqd given and runs the first lookupd poll. Resolves once that is done
   * (failed addresses keep retrying); rejects only when nothing at all could be reached.
   */
  async start(): Promise<void> {
    if (this.life.state !== 'idle') return;
    this.life.state = 'running';
    try {
      await this.pool.start();
    } catch (err) {
      await this.close();
      const first = (err as Error).cause;
      throw new NsqConnectionError(`${this.label} ${(err as Error).message}`, undefined, {
        cause: first,
        code: (first as { code?: string } | undefined)?.code,
      });
    }
  }

  /**
   * Stops intake (CLS), waits for handlers in flight up to drainTimeout (then requeues what is
   * left), flushes every FIN/REQ to nsqd and closes the connections.
   */
  close(timeoutMs = this.drainTimeout): Promise<void> {
    return this.life.close(() => this.drain(timeoutMs));
  }

  private async drain(timeoutMs: number): Promise<void> {
    this.pool.stop();
    this.rdy.stop();
    this.runner.stop();
    const subs = this.pool.all();
    await Promise.all(subs.map((s) => s.startClose()));
    await this.runner.drain(timeoutMs);
    await Promise.all(subs.map((s) => s.connection.close()));
  }
}
