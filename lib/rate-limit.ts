/** Keys kept before the quiet ones are dropped. */
const MAX_KEYS = 1000;

/**
 * Lets through one report per key per interval, and counts what it held back, so that a
 * failure repeating many times a second makes one log line, not thousands.
 */
export class ReportLimiter {
  private readonly last = new Map<string, { at: number; held: number }>();

  constructor(private readonly intervalMs: number) {}

  /** Keys remembered now. */
  get size(): number {
    return this.last.size;
  }

  /**
   * Undefined when a report for `key` went out less than an interval ago (this one is counted
   * as held); else a suffix for the report that says how many were held since the last one.
   */
  pass(key: string): string | undefined {
    const now = Date.now();
    if (this.last.size > MAX_KEYS) this.forgetQuiet(now);
    const last = this.last.get(key);
    if (last && now - last.at < this.intervalMs) {
      last.held++;
      return undefined;
    }
    this.last.set(key, { at: now, held: 0 });
    return last?.held ? ` (${last.held} more like it in the last ${now - last.at} ms)` : '';
  }

  /** Keys are topics or addresses, which come and go: those quiet for an interval are dropped. */
  private forgetQuiet(now: number): void {
    for (const [key, { at, held }] of this.last)
      if (now - at >= this.intervalMs && held === 0) this.last.delete(key);
  }
}
