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
  let outcome: { error?: unknown } | undefined;
  let observed = false;
  const waiting: Subscriber<T>[] = [];
  const done = (s: Subscriber<T>) => {
    s.next(undefined as T);
    s.complete();
  };
  work.then(
    () => {
      outcome = {};
      for (const s of waiting.splice(0)) done(s);
    },
    (error: unknown) => {
      outcome = { error };
      if (!observed) unobserved(error);
      for (const s of waiting.splice(0)) s.error(error);
    },
  );
  return new Observable<T>((subscriber) => {
    observed = true;
    if (!outcome) waiting.push(subscriber);
    else if ('error' in outcome) subscriber.error(outcome.error);
    else done(subscriber);
    return () => {
      const i = waiting.indexOf(subscriber);
      if (i >= 0) waiting.splice(i, 1);
    };
  });
}
