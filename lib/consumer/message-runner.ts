import { performance } from 'node:perf_hooks';
import { NsqError } from '../errors.js';
import { DURATION_BUCKETS, Histogram } from '../metrics.js';
import { InFlightList } from './in-flight.js';
import type { NsqMessage } from './nsq-message.js';
import { defaultRequeueDelay } from './options.js';

export type MessageHandler = (message: NsqMessage) => unknown;

/** How long a drain runs before it says what it is waiting for. */
const DRAIN_REPORT_AFTER = 1000;

/** Throw (or reject with) an error carrying this to skip retries: the message is given up now. */
export interface NsqGiveUpSignal {
  nsqGiveUp: true;
}

export interface RunnerSettings {
  maxInFlight: number;
  maxAttempts: number;
  requeueDelay: (attempts: number, error: unknown) => number;
  onGiveUp?: (message: NsqMessage, reason: unknown) => unknown;
}

/** What the runner tells its consumer. */
export interface RunnerListener {
  failed(message: NsqMessage, error: unknown): void;
  gaveUp(message: NsqMessage, reason: unknown): void;
  warning(error: Error): void;
}

/**
 * Runs the handler over delivered messages, at most maxInFlight at once, and answers each:
 * FIN on success, REQ with a growing delay on failure, give up (onGiveUp, then FIN) after
 * maxAttempts.
 */
export class MessageRunner {
  /** Messages delivered and not yet answered. */
  private readonly inFlight = new InFlightList<NsqMessage>();
  /**
   * Delivered while maxInFlight handlers run. RDY bounds what nsqd sends, but messages already
   * on the way under an older, larger RDY can still arrive after it was lowered.
   */
  private readonly waiting: NsqMessage[] = [];
  /** Handlers running, those of lost connections included. */
  private running = 0;
  private onDrained?: () => void;
  private stopped = false;
  /** How long handlers ran, seconds. */
  readonly handlerSeconds = new Histogram(DURATION_BUCKETS);

  constructor(
    private readonly handler: MessageHandler,
    private readonly settings: RunnerSettings,
    private readonly listener: RunnerListener,
  ) {}

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  accept(message: NsqMessage): void {
    this.inFlight.add(message);
    const { maxAttempts, maxInFlight } = this.settings;
    if (this.stopped) {
      message.requeue(0, false);
    } else if (maxAttempts > 0 && message.attempts > maxAttempts) {
      this.giveUp(
        message,
        new NsqError(`delivered ${message.attempts} times; maxAttempts is ${maxAttempts}`),
      );
    } else if (this.running >= maxInFlight) {
      this.waiting.push(message);
    } else {
      this.run(message);
    }
  }

  /** The message got FIN or REQ; false if it was not in flight here. */
  answered(message: NsqMessage): boolean {
    if (!this.inFlight.delete(message)) return false;
    if (this.inFlight.size === 0) this.onDrained?.();
    return true;
  }

  /** A connection is gone: its messages are nsqd's again (redelivered after msg-timeout). */
  forgetConnection(address: string): void {
    for (const m of this.inFlight) if (m.address === address) this.inFlight.delete(m);
    for (let i = this.waiting.length - 1; i >= 0; i--)
      if (this.waiting[i].address === address) this.waiting.splice(i, 1);
    if (this.inFlight.size === 0) this.onDrained?.();
  }

  /** Closing: what waits and what arrives from now on goes back to nsqd at once. */
  stop(): void {
    this.stopped = true;
    for (const m of this.waiting.splice(0)) m.requeue(0, false);
  }

  /**
   * Waits up to `timeoutMs` for the handlers running, then requeues what they left. A drain
   * that takes longer than a second says what it waits for, and a timeout what it gave back.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.inFlight.size > 0) {
      let timedOut = false;
      const started = Date.now();
      let slow: NodeJS.Timeout | undefined;
      let deadline: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.onDrained = resolve;
        slow = setTimeout(() => {
          if (this.inFlight.size === 0) return;
          this.listener.warning(
            new NsqError(
              `closing: waiting up to ${timeoutMs - (Date.now() - started)} ms more (drainTimeout ` +
                `${timeoutMs}) for ${this.inFlight.size} message(s) in flight: ${this.idsInFlight()}`,
            ),
          );
        }, DRAIN_REPORT_AFTER);
        deadline = setTimeout(() => {
          timedOut = true;
          resolve();
        }, timeoutMs);
      });
      clearTimeout(slow);
      clearTimeout(deadline);
      if (timedOut && this.inFlight.size > 0) {
        this.listener.warning(
          new NsqError(
            `closing: drainTimeout (${timeoutMs} ms) passed with ${this.inFlight.size} message(s) ` +
              `still unanswered, handed back to nsqd (REQ) for redelivery: ${this.idsInFlight()}`,
          ),
        );
      }
    }
    for (const m of this.inFlight) if (!m.answered) m.requeue(0, false);
  }

  /** At most 5 ids of the messages in flight, for a log line. */
  private idsInFlight(): string {
    const ids = [...this.inFlight].slice(0, 5).map((m) => m.id);
    const more = this.inFlight.size - ids.length;
    return ids.join(', ') + (more > 0 ? ` and ${more} more` : '');
  }

  private run(message: NsqMessage): void {
    this.running++;
    const start = performance.now();
    let result: unknown;
    try {
      result = this.handler(message);
    } catch (err) {
      this.settled(message, start, true, err);
      return;
    }
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as PromiseLike<unknown>).then === 'function'
    ) {
      (result as PromiseLike<unknown>).then(
        () => this.settled(message, start, false),
        (err: unknown) => this.settled(message, start, true, err),
      );
    } else {
      this.settled(message, start, false);
    }
  }

  private settled(message: NsqMessage, start: number, failed: boolean, error?: unknown): void {
    this.running--;
    this.handlerSeconds.observe((performance.now() - start) / 1000);
    try {
      if (failed) this.handlerFailed(message, error);
      else if (!message.answered) message.finish();
    } catch (err) {
      // A throwing event listener must not strand the message in flight.
      if (!message.answered) message.requeue(defaultRequeueDelay(message.attempts), true);
      this.listener.warning(new NsqError(`a listener threw: ${String(err)}`, { cause: err }));
    } finally {
      const next = this.waiting.shift();
      if (next) this.run(next);
    }
  }

  private handlerFailed(message: NsqMessage, error: unknown): void {
    this.listener.failed(message, error);
    if (message.answered) return;
    const { maxAttempts } = this.settings;
    const giveUpNow = (error as Partial<NsqGiveUpSignal> | undefined)?.nsqGiveUp === true;
    if (giveUpNow || (maxAttempts > 0 && message.attempts >= maxAttempts)) {
      this.giveUp(message, error);
    } else {
      message.requeue(this.delayFor(message.attempts, error), true);
    }
  }

  private delayFor(attempts: number, error: unknown): number {
    const fromError = (error as { requeueDelay?: unknown } | undefined)?.requeueDelay;
    let delay: number;
    try {
      delay =
        typeof fromError === 'number' ? fromError : this.settings.requeueDelay(attempts, error);
    } catch (err) {
      this.listener.warning(new NsqError(`requeueDelay threw: ${String(err)}; using the default`));
      delay = NaN;
    }
    return Number.isFinite(delay) && delay >= 0 ? delay : defaultRequeueDelay(attempts);
  }

  private giveUp(message: NsqMessage, reason: unknown): void {
    this.listener.gaveUp(message, reason);
    const hook = this.settings.onGiveUp;
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
          this.listener.warning(
            new NsqError(`onGiveUp failed for message ${message.id}: ${String(err)}`, {
              cause: err,
            }),
          );
          if (!message.answered) message.requeue(this.delayFor(message.attempts, err), false);
        },
      );
  }
}
