// The consumer's backoff state machine, pure. Failures pause intake (RDY 0) for a window that
// doubles with each level; after a window one connection gets RDY 1 to test; each success there
// steps a level down, and level 0 resumes full RDY.

export interface BackoffSettings {
  /** Window of the first level, ms. Default 1 000. */
  multiplier: number;
  /** Longest window, ms. Default 120 000. */
  maxDelay: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { multiplier: 1000, maxDelay: 120_000 };

export type BackoffMode = 'normal' | 'paused' | 'testing';

export class BackoffState {
  level = 0;
  mode: BackoffMode = 'normal';
  private readonly maxLevel: number;

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
    if (this.mode === 'paused' || this.level === 0) return this.mode;
    this.level--;
    this.mode = this.level === 0 ? 'normal' : 'paused';
    return this.mode;
  }

  /** A handler failed and asked for backoff. Returns the new mode. */
  failure(): BackoffMode {
    if (this.mode === 'paused') return this.mode;
    if (this.level < this.maxLevel) this.level++;
    this.mode = 'paused';
    return this.mode;
  }

  /** The pause is over: test with one message. */
  windowElapsed(): BackoffMode {
    if (this.mode === 'paused') this.mode = 'testing';
    return this.mode;
  }
}
