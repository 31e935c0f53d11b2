/**
 * Lets through one report per key per interval, and counts what it held back, so that a
 * failure repeating many times a second makes one log line, not thousands.
 */
export class ReportLimiter {
  private readonly last = new Map<string, { at: number; held: number }>();

  constructor(private readonly intervalMs: number) {}

  /**
   * Undefined when a report for `key` went out less than an interval ago (this one is counted
   * as held); else a suffix for the report that says how many were held since the last one.
   */
  pass(key: string): string | undefined {
    const now = Date.now();
    const last = this.last.get(key);
    if (last && now - last.at < this.intervalMs) {
      last.held++;
      return undefined;
    }
    this.last.set(key, { at: now, held: 0 });
    return last?.held ? ` (${last.held} more like it in the last ${now - last.at} ms)` : '';
  }
}
