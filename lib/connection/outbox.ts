/**
 * Commands queued during one tick, written together: a burst of FINs or publishes becomes one
 * socket write instead of hundreds.
 */
export class Outbox {
  private parts: (string | Buffer)[] = [];
  private scheduled = false;

  constructor(private readonly writeNow: (data: Buffer) => void) {}

  push(command: string | Buffer | readonly Buffer[]): void {
    if (typeof command === 'string' || Buffer.isBuffer(command)) this.parts.push(command);
    else this.parts.push(...command);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes what is queued now. */
  flush(): void {
    this.scheduled = false;
    const parts = this.parts;
    if (!parts.length) return;
    this.parts = [];
    if (parts.length === 1) {
      this.writeNow(typeof parts[0] === 'string' ? Buffer.from(parts[0], 'latin1') : parts[0]);
    } else if (parts.every((p) => typeof p === 'string')) {
      this.writeNow(Buffer.from(parts.join(''), 'latin1'));
    } else {
      this.writeNow(
        Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))),
      );
    }
  }

  /** Drops what is queued (the connection is gone). */
  clear(): void {
    this.parts = [];
  }
}
