// The consumer's backoff state machine, pure. It protects a failing dependency, not against
// single failures: while the share of failures among the last `window` results stays below
// `failureRate`, intake goes on at full speed. Past it, intake pauses (RDY 0) for a window that
// doubles with each level; after a pause one connection gets RDY 1 to test; a success there
// steps a level down, a failure a level up, and level 0 resumes full RDY.

export interface BackoffSettings {
  /** Pause of the first level, ms. Default 1 000. */
  multiplier: number;
  /** Longest pause, ms. Default 120 000. */
  maxDelay: number;
  /** How many recent results decide whether to back off. Default 20 (1: every failure). */
  window: number;
  /** Share of failures among them that starts a backoff, 0..1. Default 0.5. */
  failureRate: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = {
  multiplier: 1000,
  maxDelay: 120_000,
  window: 20,
  failureRate: 0.5,
};

export type BackoffMode = 'normal' | 'paused' | 'testing';

export class BackoffState {
  level = 0;
  mode: BackoffMode = 'normal';
  private readonly maxLevel: number;
  /** The last results in normal mode (true: failed), a ring of `window`. */
  private readonly recent: boolean[] = [];
  private next = 0;
  private failures = 0;

  constructor(private readonly settings: BackoffSettings) {
    // The level past which the window would no longer grow.
    this.maxLevel = Math.max(1, Math.ceil(Math.log2(settings.maxDelay / settings.multiplier)) + 1);
  }

  /** The pause for the current level, ms. */
  get window(): number {
    return Math.min(this.settings.maxDelay, this.settings.multiplier * 2 ** (this.level - 1));
  }

  /** A handler succeeded. Returns the new mode (results during a pause do not count). */
  success(): BackoffMode {
    if (this.mode === 'normal') {
      this.record(false);
      return this.mode;
    }
    if (this.mode === 'paused') return this.mode;
    this.level--;
    this.mode = this.level === 0 ? 'normal' : 'paused';
    return this.mode;
  }

  /** A handler failed and asked for backoff. Returns the new mode. */
  failure(): BackoffMode {
    if (this.mode === 'paused') return this.mode;
    if (this.mode === 'normal') {
      this.record(true);
      if (!this.tripped()) return this.mode;
    }
    if (this.level < this.maxLevel) this.level++;
    this.mode = 'paused';
    this.forget();
    return this.mode;
  }

  /** The pause is over: test with one message. */
  windowElapsed(): BackoffMode {
    if (this.mode === 'paused') this.mode = 'testing';
    return this.mode;
  }

  private record(failed: boolean): void {
    const size = this.settings.window;
    if (this.recent.length < size) this.recent.push(failed);
    else {
      if (this.recent[this.next]) this.failures--;
      this.recent[this.next] = failed;
    }
    this.next = (this.next + 1) % size;
    if (failed) this.failures++;
  }

  /** Enough results seen (half a window) and too many of them failed. */
  private tripped(): boolean {
    const seen = this.recent.length;
    return (
      seen >= Math.ceil(this.settings.window / 2) &&
      this.failures / seen >= this.settings.failureRate
    );
  }

  /** A backoff starts afresh: results from before it say nothing about after it. */
  private forget(): void {
    this.recent.length = 0;
    this.next = 0;
    this.failures = 0;
  }
}
