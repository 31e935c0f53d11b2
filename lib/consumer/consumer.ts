import { EventEmitter } from 'node:events';
import { NsqConnection, type ConnectionOptions, type Identity } from '../connection/connection.js';
import {
  addressList,
  intInRange,
  option,
  reconnectDelay,
  resolveConnectionOptions,
  type NsqConnectionSettings,
} from '../connection/options.js';
import { lookupTopic } from '../lookup/lookupd.js';
import { commands } from '../protocol/index.js';
import { NsqError, NsqValidationError } from '../protocol/errors.js';
import { assertChannelName, assertTopicName } from '../protocol/names.js';
import { BackoffState, DEFAULT_BACKOFF, type BackoffSettings } from './backoff.js';
import { NsqMessage, type MessageOwner } from './message.js';
import { safeRdy, targetRdy } from './rdy.js';

/** ms to wait before delivering again after failed attempt number `attempts`. */
export type RequeueDelay = number | ((attempts: number, error: unknown) => number);

export interface ConsumerOptions extends NsqConnectionSettings {
  /** nsqd TCP addresses ('host:port') to consume from directly. */
  nsqd?: string[];
  /** nsqlookupd HTTP addresses ('host:port' or 'http(s)://host:port') to discover nsqd. */
  lookupd?: string[];
  /** Most messages in flight at once over all connections. Default 100. */
  maxInFlight?: number;
  /** Deliveries before a message is given up (0: never). Default 5. */
  maxAttempts?: number;
  /** Delay before a failed message is delivered again. Default attempts x 90 s, at most 15 min. */
  requeueDelay?: RequeueDelay;
  /** Slow intake after failures (false: off). Default { multiplier: 1000, maxDelay: 120000 }. */
  backoff?: false | Partial<BackoffSettings>;
  /** ms between nsqlookupd polls. Default 60 000. */
  lookupdPollInterval?: number;
  /** Fraction of the poll interval used as random jitter, 0..1. Default 0.3. */
  lookupdPollJitter?: number;
  /** Longest wait between reconnect attempts, ms. Default 30 000. */
  maxReconnectDelay?: number;
  /** How long close() waits for handlers in flight before requeueing them, ms. Default 30 000. */
  drainTimeout?: number;
  /**
   * Called with a message that will not be tried again (maxAttempts reached, or the handler
   * said so); the message is FINished once it resolves, requeued if it throws.
   */
  onGiveUp?: (message: NsqMessage, reason: unknown) => unknown;
}

export type MessageHandler = (message: NsqMessage) => unknown;

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
}

/** Throw (or reject with) an error carrying this to skip retries: the message is given up now. */
export interface NsqGiveUpSignal {
  nsqGiveUp: true;
}

const MAX_REQUEUE_DELAY = 15 * 60_000;
const DEFAULT_REQUEUE_STEP = 90_000;
const ROTATE_TICK = 500;
const ROTATE_MAX_TICKS = 4;

export function defaultRequeueDelay(attempts: number): number {
  return Math.min(attempts * DEFAULT_REQUEUE_STEP, MAX_REQUEUE_DELAY);
}

/** The connection of one consumer to one nsqd. */
class Subscription implements MessageOwner {
  readonly connection: NsqConnection;
  subscribed = false;
  rdy = 0;
  inFlight = 0;
  maxRdy = 0;
  /** Rotation ticks since it got RDY, and whether a message came in the current tick. */
  heldTicks = 0;
  gotMessage = false;
  private onSubscribed?: (error?: Error) => void;
  private onCloseWait?: () => void;

  constructor(
    readonly address: string,
    private readonly consumer: Consumer,
  ) {
    this.connection = new NsqConnection(address, consumer.connectionOptions, {
      onMessage: (data) => consumer.deliver(this, data),
      onResponse: (text) => this.onResponse(text),
      // E_FIN_FAILED & co.: the message already timed out at nsqd (a handler ran too long).
      onErrorFrame: (error, fatal) => fatal || consumer.emit('warning', error),
      onClose: (error) => consumer.dropped(this, error),
    });
  }

  get topic(): string {
    return this.consumer.topic;
  }
  get channel(): string {
    return this.consumer.channel;
  }

  async subscribe(): Promise<Identity> {
    const identity = await this.connection.connect();
    this.maxRdy = identity.max_rdy_count;
    const subscribed = new Promise<Error | undefined>((resolve) => (this.onSubscribed = resolve));
    this.connection.write(commands.sub(this.topic, this.channel));
    const error = await subscribed;
    if (error) {
      throw new NsqError(
        `SUB ${this.topic} ${this.channel} failed on ${this.address}: ${error.message}`,
        {
          cause: error,
        },
      );
    }
    this.subscribed = true;
    return identity;
  }

  /** Sends CLS and waits (bounded) for CLOSE_WAIT: after it nsqd sends no more messages. */
  async startClose(): Promise<void> {
    if (!this.subscribed || !this.connection.isOpen) return;
    const closeWait = new Promise<void>((resolve) => {
      this.onCloseWait = resolve;
      setTimeout(resolve, 2000).unref();
    });
    this.connection.write(commands.CLS);
    await closeWait;
  }

  abort(error: Error | undefined): void {
    this.onSubscribed?.(error ?? new NsqError('connection closed'));
    this.onCloseWait?.();
  }

  private onResponse(text: string): void {
    if (text === 'OK' && this.onSubscribed) {
      this.onSubscribed();
      this.onSubscribed = undefined;
    } else if (text === 'CLOSE_WAIT') {
      this.onCloseWait?.();
    }
  }

  setRdy(count: number): void {
    if (count === this.rdy) return;
    if (count > 0 && this.rdy === 0) {
      this.heldTicks = 0;
      this.gotMessage = false;
    }
    this.rdy = count;
    this.connection.write(commands.rdy(count));
  }

  finish(message: NsqMessage): void {
    this.connection.write(commands.fin(message.id));
    this.consumer.answered(this, message, 'finish');
  }

  requeue(message: NsqMessage, delayMs: number, backoff: boolean): void {
    this.connection.write(commands.req(message.id, delayMs));
    this.consumer.answered(this, message, backoff ? 'failure' : 'neutral');
  }

  touch(message: NsqMessage): void {
    this.connection.write(commands.touch(message.id));
  }
}

/**
 * Consumes one topic/channel from many nsqd (given directly and/or discovered through
 * nsqlookupd), keeping at most `maxInFlight` messages in flight over all of them.
 */
export class Consumer extends EventEmitter<ConsumerEvents> {
  readonly connectionOptions: ConnectionOptions;
  readonly maxInFlight: number;
  readonly maxAttempts: number;
  private readonly requeueDelay: (attempts: number, error: unknown) => number;
  private readonly backoff?: BackoffState;
  private readonly nsqd: string[];
  private readonly lookupd: string[];
  private readonly pollInterval: number;
  private readonly pollJitter: number;
  private readonly maxReconnectDelay: number;
  private readonly drainTimeout: number;
  private readonly onGiveUp?: (message: NsqMessage, reason: unknown) => unknown;

  private readonly subscriptions = new Map<string, Subscription>();
  /** Messages delivered and not yet answered. */
  private readonly inFlightMessages = new Set<NsqMessage>();
  /**
   * Delivered while maxInFlight handlers run. RDY bounds what nsqd sends, but messages already
   * on the way under an older, larger RDY can still arrive after it was lowered.
   */
  private readonly waiting: NsqMessage[] = [];
  /** Handlers running, those of lost connections included. */
  private running = 0;
  private readonly reconnectTimers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  /** Addresses the last successful lookupd poll returned. */
  private discovered = new Set<string>();
  private pollTimer?: NodeJS.Timeout;
  private rotateTimer?: NodeJS.Timeout;
  private backoffTimer?: NodeJS.Timeout;
  private rotation = 0;
  private rdyShort = false;
  private rdyUpdateScheduled = false;
  private drained?: () => void;
  private started = false;
  private closing = false;
  private closed?: Promise<void>;

  constructor(
    readonly topic: string,
    readonly channel: string,
    private readonly handler: MessageHandler,
    options: ConsumerOptions = {},
  ) {
    super();
    assertTopicName(topic);
    assertChannelName(channel);
    if (typeof handler !== 'function')
      throw new NsqValidationError('Consumer: handler must be a function');
    const owner = `Consumer(${topic}/${channel})`;
    this.connectionOptions = resolveConnectionOptions(owner, options);
    this.nsqd = addressList(owner, 'nsqd', options.nsqd);
    this.lookupd = addressList(owner, 'lookupd', options.lookupd);
    if (this.nsqd.length === 0 && this.lookupd.length === 0) {
      throw new NsqValidationError(
        `${owner}: give nsqd (TCP 'host:port') and/or lookupd addresses`,
      );
    }
    this.maxInFlight = option(
      owner,
      'maxInFlight',
      options.maxInFlight,
      100,
      intInRange(1),
      'an integer >= 1',
    );
    this.maxAttempts = option(
      owner,
      'maxAttempts',
      options.maxAttempts,
      5,
      intInRange(0, 65535),
      'an integer 0..65535',
    );
    const delay = option(
      owner,
      'requeueDelay',
      options.requeueDelay,
      defaultRequeueDelay as RequeueDelay,
      (v) => typeof v === 'function' || intInRange(0)(v),
      'an integer >= 0 (ms) or a function of attempts',
    );
    this.requeueDelay = typeof delay === 'function' ? delay : () => delay;
    const backoff = option(
      owner,
      'backoff',
      options.backoff,
      {},
      (v) => v === false || typeof v === 'object',
      'false or { multiplier, maxDelay }',
    );
    if (backoff !== false) {
      const settings = { ...DEFAULT_BACKOFF, ...backoff };
      option(
        owner,
        'backoff.multiplier',
        settings.multiplier,
        0,
        intInRange(1),
        'an integer >= 1 (ms)',
      );
      option(
        owner,
        'backoff.maxDelay',
        settings.maxDelay,
        0,
        intInRange(settings.multiplier),
        'an integer >= multiplier (ms)',
      );
      this.backoff = new BackoffState(settings);
    }
    this.pollInterval = option(
      owner,
      'lookupdPollInterval',
      options.lookupdPollInterval,
      60_000,
      intInRange(10),
      'an integer >= 10 (ms)',
    );
    this.pollJitter = option(
      owner,
      'lookupdPollJitter',
      options.lookupdPollJitter,
      0.3,
      (v) => typeof v === 'number' && v >= 0 && v <= 1,
      'a number 0..1',
    );
    this.maxReconnectDelay = option(
      owner,
      'maxReconnectDelay',
      options.maxReconnectDelay,
      30_000,
      intInRange(1),
      'a positive integer (ms)',
    );
    this.drainTimeout = option(
      owner,
      'drainTimeout',
      options.drainTimeout,
      30_000,
      intInRange(0),
      'an integer >= 0 (ms)',
    );
    this.onGiveUp = option(
      owner,
      'onGiveUp',
      options.onGiveUp,
      undefined,
      (v) => typeof v === 'function',
      'a function',
    );
  }

  /** Messages delivered and not yet answered. */
  get inFlight(): number {
    return this.inFlightMessages.size;
  }

  /** Connection states, for health checks and tests. */
  /** Every nsqd this consumer uses or waits to reconnect to, for health checks and tests. */
  connections(): { address: string; subscribed: boolean; rdy: number; inFlight: number }[] {
    const live = [...this.subscriptions.values()].map((s) => ({
      address: s.address,
      subscribed: s.subscribed,
      rdy: s.rdy,
      inFlight: s.inFlight,
    }));
    const waiting = [...this.reconnectTimers.keys()]
      .filter((address) => !this.subscriptions.has(address))
      .map((address) => ({ address, subscribed: false, rdy: 0, inFlight: 0 }));
    return [...live, ...waiting];
  }

  /**
   * Connects to every nsqd given and runs the first lookupd poll. Resolves once that is done
   * (failed addresses keep retrying); rejects only when nothing at all could be reached.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const attempts: Promise<unknown>[] = this.nsqd.map((a) => this.connect(a));
    if (this.lookupd.length) attempts.push(this.poll());
    const results = await Promise.allSettled(attempts);
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (errors.length === results.length) {
      await this.close();
      throw new NsqError(
        `Consumer(${this.topic}/${this.channel}) could not reach any nsqd or nsqlookupd: ` +
          errors.map((e) => e.message).join('; '),
      );
    }
  }

  /** One lookupd round: connect to new producers; forget ones no lookupd lists any more. */
  private async poll(): Promise<void> {
    const results = await Promise.allSettled(this.lookupd.map((l) => lookupTopic(l, this.topic)));
    if (this.closing) return;
    const found = new Set<string>();
    const errors: Error[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') r.value.forEach((a) => found.add(a));
      else errors.push(r.reason as Error);
    }
    errors.forEach((e) => this.emit('warning', e));
    this.schedulePoll();
    if (errors.length === results.length) throw errors[0];
    this.discovered = found;
    await Promise.allSettled([...found].map((a) => this.connect(a)));
  }

  private schedulePoll(): void {
    if (this.closing) return;
    const jitter = this.pollInterval * this.pollJitter * Math.random();
    // Not unref'd: a consumer waiting for its first producer must keep the process alive.
    this.pollTimer = setTimeout(() => this.poll().catch(() => {}), this.pollInterval - jitter);
  }

  private wanted(address: string): boolean {
    return !this.closing && (this.nsqd.includes(address) || this.discovered.has(address));
  }

  private async connect(address: string): Promise<void> {
    if (this.subscriptions.has(address) || this.closing) return;
    clearTimeout(this.reconnectTimers.get(address));
    this.reconnectTimers.delete(address);
    const sub = new Subscription(address, this);
    this.subscriptions.set(address, sub);
    let identity: Identity;
    try {
      identity = await sub.subscribe();
    } catch (err) {
      sub.connection.destroy(err as Error);
      throw err;
    }
    this.failures.delete(address);
    this.emit('connected', address, identity);
    this.updateRdy();
  }

  /** Called by a Subscription when its connection is gone. */
  dropped(sub: Subscription, error: Error | undefined): void {
    sub.abort(error);
    if (this.subscriptions.get(sub.address) !== sub) return;
    this.subscriptions.delete(sub.address);
    if (sub.subscribed) this.emit('disconnected', sub.address, error);
    else if (error) this.emit('warning', error);
    // Messages of a lost connection are nsqd's again (redelivered after msg-timeout).
    for (const m of this.inFlightMessages) if (m.address === sub.address) this.forget(m);
    for (let i = this.waiting.length - 1; i >= 0; i--)
      if (this.waiting[i].address === sub.address) this.waiting.splice(i, 1);
    this.updateRdy();
    if (this.wanted(sub.address)) {
      const failures = this.failures.get(sub.address) ?? 0;
      this.failures.set(sub.address, failures + 1);
      const delay = reconnectDelay(failures, this.maxReconnectDelay);
      this.emit('reconnecting', sub.address, delay);
      const timer = setTimeout(() => {
        this.reconnectTimers.delete(sub.address);
        if (this.wanted(sub.address)) this.connect(sub.address).catch(() => {});
      }, delay); // not unref'd: a service whose only nsqd restarts must wait for it
      this.reconnectTimers.set(sub.address, timer);
    }
  }

  /** Called by a Subscription for every message frame. */
  deliver(sub: Subscription, data: Buffer): void {
    const message = new NsqMessage(data, sub);
    sub.inFlight++;
    sub.gotMessage = true;
    this.inFlightMessages.add(message);
    if (this.closing) {
      message.requeue(0, false);
    } else if (this.maxAttempts > 0 && message.attempts > this.maxAttempts) {
      this.giveUp(
        message,
        new NsqError(`delivered ${message.attempts} times; maxAttempts is ${this.maxAttempts}`),
      );
    } else if (this.running >= this.maxInFlight) {
      this.waiting.push(message);
    } else {
      this.run(message);
    }
  }

  private run(message: NsqMessage): void {
    this.running++;
    let result: unknown;
    try {
      result = this.handler(message);
    } catch (err) {
      this.settled(message, true, err);
      return;
    }
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as PromiseLike<unknown>).then === 'function'
    ) {
      (result as PromiseLike<unknown>).then(
        () => this.settled(message, false),
        (err: unknown) => this.settled(message, true, err),
      );
    } else {
      this.settled(message, false);
    }
  }

  private settled(message: NsqMessage, failed: boolean, error?: unknown): void {
    this.running--;
    try {
      if (failed) this.handlerFailed(message, error);
      else if (!message.answered) message.finish();
    } catch (err) {
      // A throwing event listener must not strand the message in flight.
      if (!message.answered) message.requeue(defaultRequeueDelay(message.attempts), true);
      this.emit('warning', new NsqError(`a listener threw: ${String(err)}`, { cause: err }));
    } finally {
      const next = this.waiting.shift();
      if (next) this.run(next);
    }
  }

  private handlerFailed(message: NsqMessage, error: unknown): void {
    this.emit('failed', message, error);
    if (message.answered) return;
    const giveUpNow = (error as Partial<NsqGiveUpSignal> | undefined)?.nsqGiveUp === true;
    if (giveUpNow || (this.maxAttempts > 0 && message.attempts >= this.maxAttempts)) {
      this.giveUp(message, error);
    } else {
      message.requeue(this.delayFor(message.attempts, error), true);
    }
  }

  private delayFor(attempts: number, error: unknown): number {
    const fromError = (error as { requeueDelay?: unknown } | undefined)?.requeueDelay;
    let delay: number;
    try {
      delay = typeof fromError === 'number' ? fromError : this.requeueDelay(attempts, error);
    } catch (err) {
      this.emit('warning', new NsqError(`requeueDelay threw: ${String(err)}; using the default`));
      delay = NaN;
    }
    return Number.isFinite(delay) && delay >= 0 ? delay : defaultRequeueDelay(attempts);
  }

  private giveUp(message: NsqMessage, reason: unknown): void {
    this.emit('gaveUp', message, reason);
    const hook = this.onGiveUp;
    if (!hook) {
      message.finish();
      return;
    }
    Promise.resolve()
      .then(() => hook(message, reason))
      .then(
        () => {
          if (!message.answered) message.finish();
        },
        (err: unknown) => {
          // Keep the message rather than lose it: it comes back and is given up again.
          this.emit(
            'warning',
            new NsqError(`onGiveUp failed for message ${message.id}: ${String(err)}`, {
              cause: err,
            }),
          );
          if (!message.answered) message.requeue(this.delayFor(message.attempts, err), false);
        },
      );
  }

  /** Called by a Subscription when a message got FIN or REQ. */
  answered(sub: Subscription, message: NsqMessage, signal: 'finish' | 'failure' | 'neutral'): void {
    if (!this.inFlightMessages.delete(message)) return;
    sub.inFlight--;
    if (this.inFlightMessages.size === 0) this.drained?.();
    if (this.backoff && !this.closing && signal !== 'neutral') {
      const before = this.backoff.mode;
      const after = signal === 'finish' ? this.backoff.success() : this.backoff.failure();
      if (after === 'paused' && before !== 'paused') this.pause();
      else if (after !== before) this.updateRdy();
    }
    if (this.rdyShort) this.scheduleRdyUpdate();
  }

  private forget(message: NsqMessage): void {
    this.inFlightMessages.delete(message);
    if (this.inFlightMessages.size === 0) this.drained?.();
  }

  private pause(): void {
    const backoff = this.backoff!;
    clearTimeout(this.backoffTimer);
    this.updateRdy();
    this.backoffTimer = setTimeout(() => {
      backoff.windowElapsed();
      this.rotation++;
      this.updateRdy();
    }, backoff.window);
    this.backoffTimer.unref();
  }

  private scheduleRdyUpdate(): void {
    if (this.rdyUpdateScheduled) return;
    this.rdyUpdateScheduled = true;
    setImmediate(() => {
      this.rdyUpdateScheduled = false;
      this.updateRdy();
    });
  }

  /** Sends RDY so that the connections share maxInFlight (or backoff's 0 / 1). */
  private updateRdy(): void {
    const subs = [...this.subscriptions.values()].filter(
      (s) => s.subscribed && s.connection.isOpen,
    );
    const mode = this.backoff?.mode ?? 'normal';
    let targets: number[];
    if (this.closing || mode === 'paused') targets = subs.map(() => 0);
    else if (mode === 'testing') targets = targetRdy(1, subs, this.rotation);
    else targets = targetRdy(this.maxInFlight, subs, this.rotation);
    const next = safeRdy(this.maxInFlight, subs, targets);
    subs.forEach((s, i) => s.setRdy(next[i]));
    this.rdyShort = next.some((v, i) => v < targets[i]);
    this.updateRotation(subs.length);
  }

  /** With fewer maxInFlight than connections, moves RDY on from idle or long-served ones. */
  private updateRotation(connections: number): void {
    // Rotate when RDY cannot cover every connection: maxInFlight below the connection count, or
    // backoff testing with RDY 1 (which must move on if it landed on an idle connection).
    const testing = this.backoff?.mode === 'testing';
    const needed =
      !this.closing && (this.maxInFlight < connections || (testing && connections > 1));
    if (!needed) {
      clearInterval(this.rotateTimer);
      this.rotateTimer = undefined;
      return;
    }
    if (this.rotateTimer) return;
    this.rotateTimer = setInterval(() => {
      const holders = [...this.subscriptions.values()].filter((s) => s.rdy > 0);
      let rotate = false;
      for (const h of holders) {
        h.heldTicks++;
        if (!h.gotMessage || h.heldTicks >= ROTATE_MAX_TICKS) rotate = true;
        h.gotMessage = false;
      }
      if (rotate) {
        this.rotation += this.backoff?.mode === 'testing' ? 1 : this.maxInFlight;
        this.updateRdy();
      }
    }, ROTATE_TICK);
    this.rotateTimer.unref();
  }

  /**
   * Stops intake (CLS), waits for handlers in flight up to drainTimeout (then requeues what is
   * left), flushes every FIN/REQ to nsqd and closes the connections.
   */
  close(timeoutMs = this.drainTimeout): Promise<void> {
    this.closed ??= this.drain(timeoutMs);
    return this.closed;
  }

  private async drain(timeoutMs: number): Promise<void> {
    this.closing = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.backoffTimer);
    clearInterval(this.rotateTimer);
    this.reconnectTimers.forEach((t) => clearTimeout(t));
    this.reconnectTimers.clear();
    // Not started yet: back to nsqd at once.
    for (const m of this.waiting.splice(0)) m.requeue(0, false);
    const subs = [...this.subscriptions.values()];
    await Promise.all(subs.map((s) => s.startClose()));
    if (this.inFlightMessages.size > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        setTimeout(resolve, timeoutMs).unref();
      });
    }
    for (const m of this.inFlightMessages) if (!m.answered) m.requeue(0, false);
    await Promise.all(subs.map((s) => s.connection.close()));
  }
}
