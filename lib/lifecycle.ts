/**
 * The one lifecycle rule of the client core: a `state`, and a `closed` promise that resolves
 * once close() has run its work to the end. close() runs that work once, however often it is
 * called, and resolves even if the work fails.
 */
export class Lifecycle<Open extends string> {
  state: Open | 'closing' | 'closed';
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  constructor(initial: Open) {
    this.state = initial;
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
  }

  close(work: () => Promise<void>): Promise<void> {
    if (this.state !== 'closing' && this.state !== 'closed') {
      this.state = 'closing';
      const done = () => {
        this.state = 'closed';
        this.markClosed();
      };
      void work().then(done, done);
    }
    return this.closed;
  }
}
