/**
 * nsqd sends a heartbeat every interval, so 2 intervals without a byte mean it is gone. The
 * timer is re-armed for the moment the silence would reach that, so it is caught then, not up
 * to a polling period later.
 */
export class SilenceWatch {
  private lastRead = Date.now();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly limitMs: number,
    private readonly onSilent: (silentMs: number) => void,
  ) {}

  /** Something was read: the peer is alive. */
  heard(): void {
    this.lastRead = Date.now();
  }

  start(): void {
    this.arm(this.limitMs);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      const silent = Date.now() - this.lastRead;
      if (silent < this.limitMs) this.arm(this.limitMs - silent);
      else this.onSilent(silent);
    }, ms);
    this.timer.unref();
  }
}
