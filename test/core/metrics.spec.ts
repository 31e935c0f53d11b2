// The bounds on what the metrics and the log limiter keep: names come from data and from
// every client's reply topic, so neither may grow without limit.
import { jest } from '@jest/globals';
import {
  EPHEMERAL_TOPICS,
  Histogram,
  MAX_COUNTED_TOPICS,
  OTHER_TOPICS,
  PublishCounters,
} from '../../lib/metrics.js';
import { ReportLimiter } from '../../lib/rate-limit.js';

describe('metrics bounds', () => {
  it('counts at most MAX_COUNTED_TOPICS topics, the rest under (other), replies as one', () => {
    const c = new PublishCounters();
    for (let i = 0; i < MAX_COUNTED_TOPICS + 500; i++) c.settled(`t${i}`, 1, false);
    c.settled('reply.0123456789abcdef#ephemeral', 2, false);
    c.settled('reply.fedcba9876543210#ephemeral', 1, true);
    const topics = c.topicsSnapshot();
    expect(Object.keys(topics)).toHaveLength(MAX_COUNTED_TOPICS + 1);
    // No room left for replies either: under (other) with the rest.
    expect(topics[OTHER_TOPICS]).toEqual({ published: 502, failed: 1 });
    expect(topics[EPHEMERAL_TOPICS]).toBeUndefined();
    const fresh = new PublishCounters();
    fresh.settled('reply.0123456789abcdef#ephemeral', 2, false);
    fresh.settled('reply.fedcba9876543210#ephemeral', 1, true);
    expect(fresh.topicsSnapshot()).toEqual({ [EPHEMERAL_TOPICS]: { published: 2, failed: 1 } });
  });

  it('a histogram is cumulative, with +Inf last', () => {
    const h = new Histogram([1, 5]);
    for (const v of [0.5, 1, 3, 9]) h.observe(v);
    expect(h.snapshot()).toEqual({
      buckets: [
        [1, 2],
        [5, 3],
        [Infinity, 4],
      ],
      sum: 13.5,
      count: 4,
    });
  });

  it('the report limiter lets one line per key per interval through and forgets quiet keys', () => {
    jest.useFakeTimers({ now: 0 });
    try {
      const limiter = new ReportLimiter(1000);
      expect(limiter.pass('a')).toBe('');
      expect(limiter.pass('a')).toBeUndefined();
      expect(limiter.pass('a')).toBeUndefined();
      jest.setSystemTime(1500);
      expect(limiter.pass('a')).toBe(' (2 more like it in the last 1500 ms)');
      for (let i = 0; i < 5000; i++) limiter.pass(`key${i}`);
      jest.setSystemTime(5000);
      limiter.pass('b'); // drops the quiet ones
      expect(limiter.size).toBeLessThan(10);
    } finally {
      jest.useRealTimers();
    }
  });
});
