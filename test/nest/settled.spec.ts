import { jest } from '@jest/globals';
import { config, lastValueFrom, type Observable } from 'rxjs';
import { settled } from '../../lib/nest/settled.js';

/** What a subscriber saw, in order. */
function record(observable: Observable<unknown>): { seen: string[]; unsubscribe: () => void } {
  const seen: string[] = [];
  const subscription = observable.subscribe({
    next: (v) => seen.push(`next ${String(v)}`),
    error: (e: Error) => seen.push(`error ${e.message}`),
    complete: () => seen.push('complete'),
  });
  return { seen, unsubscribe: () => subscription.unsubscribe() };
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('settled (the Observable emit() returns)', () => {
  it('gives every subscriber, early or late, one undefined and completion once the work is done', async () => {
    const work = deferred();
    const unobserved = jest.fn();
    const result = settled(work.promise, unobserved);
    const a = record(result);
    const b = record(result);
    await turn();
    expect(a.seen).toEqual([]);
    work.resolve();
    await turn();
    const late = record(result);
    expect(a.seen).toEqual(['next undefined', 'complete']);
    expect(b.seen).toEqual(['next undefined', 'complete']);
    expect(late.seen).toEqual(['next undefined', 'complete']);
    await expect(lastValueFrom(result)).resolves.toBeUndefined();
    expect(unobserved).not.toHaveBeenCalled();
  });

  it('hands a failure to its subscribers, and to unobserved only when nobody subscribed', async () => {
    const watched = deferred();
    const unobserved = jest.fn();
    const a = record(settled(watched.promise, unobserved));
    watched.reject(new Error('nsqd said no'));
    await turn();
    expect(a.seen).toEqual(['error nsqd said no']);
    expect(unobserved).not.toHaveBeenCalled();

    const ignored = deferred();
    const result = settled(ignored.promise, unobserved);
    ignored.reject(new Error('lost'));
    await turn();
    expect(unobserved).toHaveBeenCalledTimes(1);
    expect((unobserved.mock.calls[0][0] as Error).message).toBe('lost');
    // A subscriber that comes after still learns the outcome.
    expect(record(result).seen).toEqual(['error lost']);
  });

  it('lets go of a subscriber that unsubscribes: rxjs sees no notification to a closed one', async () => {
    const stopped: string[] = [];
    config.onStoppedNotification = (n) => stopped.push(n.kind);
    try {
      const work = deferred();
      const result = settled(work.promise, jest.fn());
      for (let i = 0; i < 3; i++) record(result).unsubscribe();
      const stays = record(result);
      work.resolve();
      await turn();
      expect(stays.seen).toEqual(['next undefined', 'complete']);
      expect(stopped).toEqual([]);
    } finally {
      config.onStoppedNotification = null;
    }
  });

  it('tells a subscriber that unsubscribed nothing, while the others still hear', async () => {
    const work = deferred();
    const result = settled(work.promise, jest.fn());
    const gone = record(result);
    const stays = record(result);
    const third = record(result);
    gone.unsubscribe();
    work.reject(new Error('refused'));
    await turn();
    expect(gone.seen).toEqual([]);
    expect(stays.seen).toEqual(['error refused']);
    expect(third.seen).toEqual(['error refused']);
  });
});
