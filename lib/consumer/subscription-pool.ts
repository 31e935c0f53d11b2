import type { Identity } from '../connection/identify.js';
import { reconnectDelay, type ConnectionOptions } from '../connection/settings.js';
import { NsqError } from '../errors.js';
import { lookupTopic } from '../lookup/lookupd.js';
import { Subscription, type SubscriptionListener } from './subscription.js';

/** ms between lookupd polls while no nsqd has the topic. */
const WAITING_POLL_INTERVAL = 1000;

export interface PoolSettings {
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
    const attempts: Promise<unknown>[] = this.settings.nsqd.map((a) => this.connect(a));
    if (this.settings.lookupd.length) attempts.push(this.poll());
    const results = await Promise.allSettled(attempts);
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (errors.length === results.length) {
      throw new NsqError(
        `could not reach any nsqd or nsqlookupd: ${errors.map((e) => e.message).join('; ')}`,
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

  /** One lookupd round: connect to new producers; forget ones no lookupd lists any more. */
  private async poll(): Promise<void> {
    const { lookupd } = this.settings;
    const results = await Promise.allSettled(lookupd.map((l) => lookupTopic(l, this.topic)));
    if (this.stopped) return;
    const found = new Set<string>();
    const errors: Error[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') r.value.forEach((a) => found.add(a));
      else errors.push(r.reason as Error);
    }
    errors.forEach((e) => this.listener.warning(e));
    if (errors.length < results.length) this.discovered = found;
    this.schedulePoll();
    if (errors.length === results.length) throw errors[0];
    await Promise.allSettled([...found].map((a) => this.connect(a)));
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
      () => this.poll().catch(() => {}),
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
