import { Observable, type Subscriber } from 'rxjs';

/**
 * A hot result: the work already runs; subscribers get one value (undefined) once it is done,
 * then completion, as Nest's own emit() gives; or its error. Late subscribers too. A failure
 * before anybody subscribed goes to `unobserved`, so that it is not lost without a trace.
 */
export function settled<T>(
  work: Promise<unknown>,
  unobserved: (error: unknown) => void,
): Observable<T> {
  const outcome = new Outcome<T>(unobserved);
  work.then(
    () => outcome.succeed(),
    (error: unknown) => outcome.fail(error),
  );
  return new Observable<T>((subscriber) => outcome.subscribe(subscriber));
}

/**
 * The state behind one settled(): one object per emit (it runs for every emit() of an app,
 * so its allocations show at high rates). The usual single subscriber needs no list.
 */
class Outcome<T> {
  private state: 'running' | 'done' | 'failed' = 'running';
  private error: unknown;
  private observed = false;
  private first?: Subscriber<T>;
  private others?: Subscriber<T>[];

  constructor(private readonly unobserved: (error: unknown) => void) {}

  /** Returns the teardown for a subscriber still waiting: one that leaves is forgotten. */
  subscribe(subscriber: Subscriber<T>): (() => void) | undefined {
    this.observed = true;
    if (this.state !== 'running') {
      this.tell(subscriber);
      return undefined;
    }
    if (!this.first) this.first = subscriber;
    else (this.others ??= []).push(subscriber);
    return () => this.forget(subscriber);
  }

  private forget(subscriber: Subscriber<T>): void {
    if (this.first === subscriber) this.first = undefined;
    else if (this.others) {
      const i = this.others.indexOf(subscriber);
      if (i >= 0) this.others.splice(i, 1);
    }
  }

  succeed(): void {
    this.state = 'done';
    this.tellAll();
  }

  fail(error: unknown): void {
    this.state = 'failed';
    this.error = error;
    if (!this.observed) this.unobserved(error);
    this.tellAll();
  }

  private tellAll(): void {
    const { first, others } = this;
    this.first = this.others = undefined;
    if (first) this.tell(first);
    if (others) for (const s of others) this.tell(s);
  }

  private tell(subscriber: Subscriber<T>): void {
    if (this.state === 'failed') {
      subscriber.error(this.error);
      return;
    }
    subscriber.next(undefined as T);
    subscriber.complete();
  }
}
