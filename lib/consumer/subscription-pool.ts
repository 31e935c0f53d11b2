import type { Identity } from '../connection/identify.js';
import { reconnectDelay, type ConnectionOptions } from '../connection/settings.js';
import { NsqError, NsqProtocolError } from '../errors.js';
import { lookupTopic } from '../lookup/lookupd.js';
import { ReportLimiter } from '../rate-limit.js';
import { Subscription, type SubscriptionListener } from './subscription.js';

/** ms between lookupd polls while no nsqd has the topic. */
const WAITING_POLL_INTERVAL = 1000;

/** A warning about one address is repeated at most this often. */
const WARNING_INTERVAL = 30_000;

export interface PoolSettings {
  /** Most nsqd connections at once; what lookupd lists beyond it is left out. */
  maxNsqdConnections: number;
  nsqd: string[];
  lookupd: string[];
  lookupdPollInterval: number;
  lookupdPollJitter: number;
  maxReconnectDelay: number;
}

/** What the pool tells its consumer, besides what each subscription reports. */
export interface PoolListener extends Omit<SubscriptionListener, 'closed'> {
  connected(sub: Subscription, identity: Identity): void;
  /** A subscription is gone; `wasSubscribed` tells a drop from a failed connect. */
  lost(sub: Subscription, error: Error | undefined, wasSubscribed: boolean): void;
  reconnecting(address: string, delayMs: number): void;
  /** nsqlookupd lists an nsqd the last poll did not. */
  discovered(address: string): void;
}

/**
 * The consumer's connections to nsqd: the addresses given directly, and those nsqlookupd lists
 * (polled with jitter). Connects, subscribes, and reconnects after a drop with exponential
 * backoff while an address is still wanted.
 */
export class SubscriptionPool {
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly reconnectTimers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  /** Addresses the last successful lookupd poll returned. */
  private discovered = new Set<string>();
  private pollTimer?: NodeJS.Timeout;
  private stopped = false;
  /** When each address was last warned about, and how many warnings were held back since. */
  private readonly warned = new ReportLimiter(WARNING_INTERVAL);
  private readonly subscriptionListener: SubscriptionListener;

  constructor(
    private readonly topic: string,
    private readonly channel: string,
    private readonly connectionOptions: ConnectionOptions,
    private readonly settings: PoolSettings,
    private readonly listener: PoolListener,
  ) {
    this.subscriptionListener = {
      message: (sub, data) => listener.message(sub, data),
      answered: (sub, message, signal) => listener.answered(sub, message, signal),
      warning: (error) => listener.warning(error),
      phantom: (sub, error) => listener.phantom(sub, error),
      closed: (sub, error) => this.dropped(sub, error),
    };
  }

  /** The live subscriptions. */
  all(): Subscription[] {
    return [...this.subscriptions.values()];
  }

  /** Addresses waiting for a reconnect, with no live subscription. */
  awaitingReconnect(): string[] {
    return [...this.reconnectTimers.keys()].filter((a) => !this.subscriptions.has(a));
  }

  /**
   * Connects to every nsqd given and runs the first lookupd poll. Resolves once that is done
   * (failed addresses keep retrying); rejects only when nothing at all could be reached.
   */
  async start(): Promise<void> {
    const attempts = this.settings.nsqd.map((a) => this.connect(a).then(() => true));
    if (this.settings.lookupd.length) attempts.push(this.poll());
    const errors = await firstSuccess(attempts);
    if (errors) {
      throw new NsqError(
        `could not subscribe on any nsqd: ${errors.map((e) => e.message).join('; ')}`,
        { cause: errors[0] },
      );
    }
  }

  /** No more polls or reconnects. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    this.reconnectTimers.forEach((t) => clearTimeout(t));
    this.reconnectTimers.clear();
  }

  /**
   * One lookupd round: connect to new producers; forget ones no lookupd lists any more. True
   * once a new subscription is made, false when there was none to make.
   */
  private async poll(): Promise<boolean> {
    const { lookupd, maxNsqdConnections } = this.settings;
    const results = await Promise.allSettled(lookupd.map((l) => lookupTopic(l, this.topic)));
    if (this.stopped) return false;
    const found = new Set<string>();
    const errors: Error[] = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        errors.push(r.reason as Error);
        return this.warn(lookupd[i], r.reason as Error);
      }
      r.value.addresses.forEach((a) => found.add(a));
      if (r.value.rejected.length) {
        this.warn(
          lookupd[i],
          new NsqProtocolError(
            `nsqlookupd at ${lookupd[i]} listed ${r.value.rejected.length} producer(s) without a ` +
              `valid broadcast_address and tcp_port, ignored: ${r.value.rejected.slice(0, 3).join(', ')}`,
          ),
        );
      }
    });
    if (errors.length < results.length) {
      const direct = this.settings.nsqd.length;
      const room = Math.max(0, maxNsqdConnections - direct);
      const listed = [...found].filter((a) => !this.settings.nsqd.includes(a));
      if (listed.length > room) {
        this.warn(
          'maxNsqdConnections',
          new NsqError(
            `nsqlookupd lists ${listed.length} nsqd for ${this.topic}; using ${room} ` +
              `(maxNsqdConnections ${maxNsqdConnections})`,
          ),
        );
      }
      // Keep the ones already in use first, so that a long list does not churn connections.
      listed.sort((a, b) => Number(this.subscriptions.has(b)) - Number(this.subscriptions.has(a)));
      const before = this.discovered;
      this.discovered = new Set(listed.slice(0, room));
      for (const a of this.discovered) {
        // Not news after an empty poll (a lookupd restart) for an nsqd still connected.
        const known = before.has(a) || this.subscriptions.has(a) || this.reconnectTimers.has(a);
        if (!known) this.listener.discovered(a);
      }
    }
    this.schedulePoll();
    if (errors.length === results.length) throw errors[0];
    // An address waiting for its reconnect keeps its backoff: the poll does not hurry it.
    const fresh = [...this.discovered].filter(
      (a) => !this.reconnectTimers.has(a) && !this.subscriptions.has(a),
    );
    const failed = await firstSuccess(fresh.map((a) => this.connect(a).then(() => true)));
    return fresh.length > 0 && !failed;
  }

  /** Emits a warning, at most once per WARNING_INTERVAL for one key; says how many were held. */
  private warn(key: string, error: Error): void {
    const held = this.warned.pass(key);
    if (held === undefined) return;
    error.message += held;
    this.listener.warning(error);
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    const { lookupdPollInterval, lookupdPollJitter: jitter } = this.settings;
    // While no nsqd has the topic yet, ask again soon: its first message then arrives within
    // about a second of its first publish, not after a whole interval.
    const waiting = this.discovered.size === 0 && this.subscriptions.size === 0;
    const interval = waiting
      ? Math.min(lookupdPollInterval, WAITING_POLL_INTERVAL)
      : lookupdPollInterval;
    // Not unref'd: a consumer waiting for its first producer must keep the process alive.
    this.pollTimer = setTimeout(
      () => void this.poll().catch(() => false),
      interval - interval * jitter * Math.random(),
    );
  }

  private wanted(address: string): boolean {
    return !this.stopped && (this.settings.nsqd.includes(address) || this.discovered.has(address));
  }

  private async connect(address: string): Promise<void> {
    if (this.subscriptions.has(address) || this.stopped) return;
    clearTimeout(this.reconnectTimers.get(address));
    this.reconnectTimers.delete(address);
    const sub = new Subscription(
      address,
      this.topic,
      this.channel,
      this.connectionOptions,
      this.subscriptionListener,
    );
    this.subscriptions.set(address, sub);
    let identity: Identity;
    try {
      identity = await sub.subscribe();
    } catch (err) {
      sub.connection.destroy(err as Error);
      throw err;
    }
    this.failures.delete(address);
    this.listener.connected(sub, identity);
  }

  private dropped(sub: Subscription, error: Error | undefined): void {
    if (this.subscriptions.get(sub.address) !== sub) return;
    this.subscriptions.delete(sub.address);
    this.listener.lost(sub, error, sub.subscribed);
    if (!sub.subscribed && error) this.warn(sub.address, error);
    if (!this.wanted(sub.address)) return;
    const failures = this.failures.get(sub.address) ?? 0;
    this.failures.set(sub.address, failures + 1);
    const delay = reconnectDelay(failures, this.settings.maxReconnectDelay);
    this.listener.reconnecting(sub.address, delay);
    const timer = setTimeout(() => {
      this.reconnectTimers.delete(sub.address);
      if (this.wanted(sub.address)) this.connect(sub.address).catch(() => {});
    }, delay); // not unref'd: a service whose only nsqd restarts must wait for it
    this.reconnectTimers.set(sub.address, timer);
  }
}

/**
 * Resolves once one attempt subscribed (true; the others go on), or when all have settled: with
 * their errors if every one failed, else undefined. A slow address does not hold up the rest.
 */
function firstSuccess(attempts: Promise<boolean>[]): Promise<Error[] | undefined> {
  if (!attempts.length) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const errors: Error[] = [];
    let settled = 0;
    const done = () => {
      if (++settled === attempts.length) resolve(errors.length === settled ? errors : undefined);
    };
    for (const attempt of attempts) {
      attempt.then(
        (subscribed) => (subscribed ? resolve(undefined) : done()),
        (err: Error) => {
          errors.push(err);
          done();
        },
      );
    }
  });
}
