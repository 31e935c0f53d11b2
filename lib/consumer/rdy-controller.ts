import { NsqProtocolError } from '../errors.js';
import type { BackoffMode, BackoffState } from './backoff.js';
import type { NsqMessage } from './nsq-message.js';
import { safeRdy, targetRdy, type RdySlot } from './rdy.js';
import { RdyWindow } from './rdy-window.js';
import type { AnswerSignal, Subscription } from './subscription.js';

const ROTATE_TICK = 500;
const ROTATE_MAX_TICKS = 4;
/** Unanswered messages beyond twice RDY that a connection may hold before it counts as a flood. */
const RDY_SLACK = 16;
/**
 * How often adaptive windows shrink to the work in flight, ms: nsqd's shortest flush interval,
 * so that a window grown by a hiccup rather than a backlog holds messages no longer than nsqd's
 * buffer would (lowering RDY below what nsqd holds makes it flush).
 */
const WINDOW_REVIEW = 25;

/** Backoff's state after a change: the mode, its level, and the pause of that level (ms). */
export interface BackoffChange {
  mode: BackoffMode;
  level: number;
  pauseMs: number;
}

/** One connection's RDY state, written by nothing but the controller. */
interface Slot extends RdySlot {
  readonly sub: Subscription;
  /**
   * The most messages nsqd may have in flight here: the highest RDY ever sent on it. Messages
   * sent under a larger RDY can still arrive after a lower one, for as long as nsqd has not read
   * it, which the client cannot know.
   */
  ceiling: number;
  /** Rotation ticks since it got RDY, and whether a message came in the current tick. */
  heldTicks: number;
  gotMessage: boolean;
  /** Being replaced: RDY 0, and closed once its messages are answered. */
  retiring: boolean;
  /** With adaptive RDY: how much of its share it may use now. */
  window?: RdyWindow;
}

/**
 * Messages in flight as nsqd counts them: answers not yet written still count there (a
 * synchronous handler answers each message before the next is read, yet nsqd sees them all).
 */
const atNsqd = (slot: Slot) => slot.inFlight + slot.sub.answersUnwritten;

/**
 * The only writer of RDY and of per-connection in-flight counts. Shares maxInFlight over the
 * subscribed connections, rotates RDY when there are more connections than maxInFlight, and
 * runs backoff's pause (RDY 0) and test (RDY 1) windows.
 */
export class RdyController {
  private readonly slots = new Map<Subscription, Slot>();
  private rotation = 0;
  /** Some connection got less RDY than its target while messages were still in flight. */
  private short = false;
  private updateScheduled = false;
  private rotateTimer?: NodeJS.Timeout;
  private backoffTimer?: NodeJS.Timeout;
  private reviewTimer?: NodeJS.Timeout;
  private stopped = false;

  private readonly backoff?: BackoffState;
  private readonly onBackoff: (change: BackoffChange) => void;
  private readonly adaptive: boolean;

  constructor(
    private readonly maxInFlight: number,
    options: {
      backoff?: BackoffState;
      /** Told each time backoff changes mode or level. */
      onBackoff?: (change: BackoffChange) => void;
      /** RDY follows the work in flight (see RdyWindow) instead of staying at maxInFlight. */
      adaptive?: boolean;
    } = {},
  ) {
    this.backoff = options.backoff;
    this.onBackoff = options.onBackoff ?? (() => undefined);
    this.adaptive = options.adaptive ?? false;
  }

  /** Backoff's level now; 0 is full speed (and always, with backoff off). */
  get backoffLevel(): number {
    return this.backoff?.level ?? 0;
  }

  /** RDY over all connections now. */
  get totalRdy(): number {
    let total = 0;
    for (const slot of this.slots.values()) total += slot.rdy;
    return total;
  }

  rdyOf(sub: Subscription): number {
    return this.slots.get(sub)?.rdy ?? 0;
  }

  inFlightOf(sub: Subscription): number {
    return this.slots.get(sub)?.inFlight ?? 0;
  }

  /** A subscribed connection joins. */
  add(sub: Subscription, maxRdy: number): void {
    this.slots.set(sub, {
      sub,
      maxRdy,
      rdy: 0,
      ceiling: 0,
      inFlight: 0,
      heldTicks: 0,
      gotMessage: false,
      retiring: false,
      window: this.adaptive ? new RdyWindow(this.maxInFlight) : undefined,
    });
    this.reviewWindows();
    this.update();
  }

  /** A connection is gone: its messages are nsqd's again. */
  remove(sub: Subscription): void {
    if (this.slots.delete(sub)) this.update();
  }

  /**
   * A message arrived on `sub`. False when nsqd sent far more than RDY allows: an nsqd that
   * ignores RDY could flood the consumer, so the connection is dropped. Some excess is normal:
   * a message that timed out at nsqd (its handler slower than msg-timeout) no longer counts
   * there, and nsqd sends another while the client still holds the first.
   */
  delivered(sub: Subscription, message: NsqMessage): boolean {
    const slot = this.slots.get(sub);
    if (!slot || slot.inFlight >= 2 * slot.ceiling + RDY_SLACK) {
      sub.connection.destroy(
        new NsqProtocolError(
          `nsqd at ${sub.address} sent ${slot?.inFlight ?? 0} messages not yet answered, far ` +
            `beyond RDY ${slot?.ceiling ?? 0}: dropping the connection`,
        ),
      );
      return false;
    }
    slot.inFlight++;
    slot.gotMessage = true;
    if (slot.window) {
      // A redelivery waited for its requeue delay, not for RDY.
      const sentAt = message.attempts === 1 ? message.timestampMs : undefined;
      if (slot.window.delivered(atNsqd(slot), slot.rdy, message.receivedAt, sentAt)) this.update();
      this.reviewWindows();
    }
    return true;
  }

  /** Runs the review timer while a window can change (an idle consumer has no timer). */
  private reviewWindows(): void {
    if (this.reviewTimer || this.stopped || !this.someWindowMayChange()) return;
    this.reviewTimer = setInterval(() => this.review(), WINDOW_REVIEW);
    this.reviewTimer.unref();
  }

  private someWindowMayChange(): boolean {
    for (const slot of this.slots.values()) if (slot.window?.needsReview(atNsqd(slot))) return true;
    return false;
  }

  /** Fits each adaptive window to what its connection used in the last period. */
  private review(): void {
    let changed = false;
    for (const slot of this.slots.values()) {
      if (slot.window?.review(atNsqd(slot))) changed = true;
    }
    if (!this.someWindowMayChange()) {
      clearInterval(this.reviewTimer);
      this.reviewTimer = undefined;
    }
    if (changed) this.update();
  }

  /** A message delivered on `sub` got FIN or REQ; `signal` feeds backoff. */
  answered(sub: Subscription, signal: AnswerSignal): void {
    const slot = this.slots.get(sub);
    if (slot) {
      slot.inFlight--;
      slot.window?.freed(Date.now());
      if (slot.retiring && slot.inFlight === 0) void sub.connection.close();
    }
    if (this.backoff && !this.stopped && signal !== 'neutral') {
      const before = this.backoff.mode;
      const levelBefore = this.backoff.level;
      const after = signal === 'finish' ? this.backoff.success() : this.backoff.failure();
      if (after === 'paused' && before !== 'paused') this.pause();
      else if (after !== before) this.update();
      if (after !== before || this.backoff.level !== levelBefore) this.reportBackoff();
    }
    if (this.short) this.scheduleUpdate();
  }

  /**
   * Replaces a connection whose window nsqd counts smaller than it is (a phantom message in
   * flight): it gets no more RDY, and is closed once its messages are answered; the pool then
   * connects again, and nsqd's count starts from zero.
   */
  retire(sub: Subscription): boolean {
    const slot = this.slots.get(sub);
    if (!slot || slot.retiring) return false;
    slot.retiring = true;
    this.setRdy(slot, 0);
    this.update();
    if (slot.inFlight === 0) void sub.connection.close();
    return true;
  }

  /** Closing: no more RDY changes (CLS stops intake). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.backoffTimer);
    clearInterval(this.reviewTimer);
    this.reviewTimer = undefined;
    clearInterval(this.rotateTimer);
    this.rotateTimer = undefined;
  }

  private pause(): void {
    const backoff = this.backoff!;
    clearTimeout(this.backoffTimer);
    this.update();
    this.backoffTimer = setTimeout(() => {
      backoff.windowElapsed();
      this.rotation++;
      this.update();
      this.reportBackoff();
    }, backoff.window);
    this.backoffTimer.unref();
  }

  private reportBackoff(): void {
    const { mode, level, window } = this.backoff!;
    this.onBackoff({ mode, level, pauseMs: level === 0 ? 0 : window });
  }

  private scheduleUpdate(): void {
    if (this.updateScheduled) return;
    this.updateScheduled = true;
    setImmediate(() => {
      this.updateScheduled = false;
      this.update();
    });
  }

  /** Sends RDY so that the connections share maxInFlight (or backoff's 0 / 1). */
  private update(): void {
    if (this.stopped) return;
    // A retiring connection gets RDY 0 but its messages in flight still count against the budget.
    const slots = [...this.slots.values()].filter((s) => s.sub.connection.state === 'ready');
    const active = slots.filter((s) => !s.retiring);
    const mode = this.backoff?.mode ?? 'normal';
    let shares: number[];
    if (mode === 'paused') shares = active.map(() => 0);
    else if (mode === 'testing') shares = targetRdy(1, active, this.rotation);
    else shares = targetRdy(this.maxInFlight, active, this.rotation);
    const targets = slots.map((s) => {
      if (s.retiring) return 0;
      const share = shares[active.indexOf(s)];
      return mode === 'normal' && s.window ? Math.min(share, s.window.size) : share;
    });
    const next = safeRdy(this.maxInFlight, slots, targets);
    slots.forEach((slot, i) => this.setRdy(slot, next[i]));
    this.short = next.some((v, i) => v < targets[i]);
    this.updateRotation(active.length);
  }

  private setRdy(slot: Slot, count: number): void {
    if (count === slot.rdy) return;
    if (count > 0 && slot.rdy === 0) {
      slot.heldTicks = 0;
      slot.gotMessage = false;
    }
    slot.rdy = count;
    slot.ceiling = Math.max(slot.ceiling, count);
    slot.sub.sendRdy(count);
  }

  /** With fewer maxInFlight than connections, moves RDY on from idle or long-served ones. */
  private updateRotation(connections: number): void {
    // Rotate when RDY cannot cover every connection: maxInFlight below the connection count, or
    // backoff testing with RDY 1 (which must move on if it landed on an idle connection).
    const testing = this.backoff?.mode === 'testing';
    const needed = this.maxInFlight < connections || (testing && connections > 1);
    if (!needed) {
      clearInterval(this.rotateTimer);
      this.rotateTimer = undefined;
      return;
    }
    if (this.rotateTimer) return;
    this.rotateTimer = setInterval(() => this.rotate(), ROTATE_TICK);
    this.rotateTimer.unref();
  }

  private rotate(): void {
    let rotate = false;
    for (const slot of this.slots.values()) {
      if (slot.rdy === 0) continue;
      slot.heldTicks++;
      if (!slot.gotMessage || slot.heldTicks >= ROTATE_MAX_TICKS) rotate = true;
      slot.gotMessage = false;
    }
    if (rotate) {
      this.rotation += this.backoff?.mode === 'testing' ? 1 : this.maxInFlight;
      this.update();
    }
  }
}
