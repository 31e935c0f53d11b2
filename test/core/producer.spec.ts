import { NsqConnection } from '../../lib/connection/connection.js';
import { jest } from '@jest/globals';
import {
  NsqConnectionError,
  NsqResponseError,
  NsqValidationError,
  Producer,
} from '../../lib/core.js';
import { NsqdApi, NsqdProcess, sharedNsq, stopAll, uniqueName } from '../harness/nsq.js';

const shared = sharedNsq();

afterAll(() => stopAll());

/** Messages nsqd took for `topic` (0 when nsqd has no topics at all: its stats say null). */
async function messageCount(httpUrl: string, topic: string): Promise<number> {
  const { topics } = await new NsqdApi(httpUrl).stats(topic);
  return topics?.find((t) => t.topic_name === topic)?.message_count ?? 0;
}

/** Runs `fn` and returns how long it took, ms, and how it settled. */
async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; error?: unknown }> {
  const start = Date.now();
  try {
    await fn();
    return { ms: Date.now() - start };
  } catch (error) {
    return { ms: Date.now() - start, error };
  }
}

describe('Producer failover', () => {
  it('publishes through the other nsqd when the first one is down', async () => {
    const [a, b, c] = await Promise.all([
      NsqdProcess.start(),
      NsqdProcess.start(),
      NsqdProcess.start(),
    ]);
    await a.stop();
    const producer = new Producer({ nsqd: [a.tcpAddress, b.tcpAddress, c.tcpAddress] });
    const topic = uniqueName();
    try {
      await Promise.all(Array.from({ length: 20 }, (_, i) => producer.publish(topic, `m${i}`)));
      await producer.publish(topic, 'one more');
      await producer.publishMany(topic, ['x', 'y']);
      await producer.publishDeferred(topic, 10, 'later');
      const counts = await Promise.all([b, c].map((n) => messageCount(n.httpUrl, topic)));
      // The first reachable one (b) got all of them.
      expect(counts).toEqual([24, 0]);
      expect(producer.connections()).toEqual([
        expect.objectContaining({ address: a.tcpAddress, connected: false }),
        expect.objectContaining({ address: b.tcpAddress, connected: true }),
        expect.objectContaining({ address: c.tcpAddress, connected: false }),
      ]);
    } finally {
      await producer.close();
    }
  });

  it('moves to the next nsqd when the one in use goes down', async () => {
    const [a, b] = await Promise.all([NsqdProcess.start(), NsqdProcess.start()]);
    const producer = new Producer({ nsqd: [a.tcpAddress, b.tcpAddress] });
    const events: string[] = [];
    producer.on('connected', (address) => events.push(`connected ${address}`));
    producer.on('disconnected', (address) => events.push(`disconnected ${address}`));
    const topic = uniqueName();
    try {
      await producer.publish(topic, 'to a');
      await a.stop();
      // The loss may cost the publishes made while it is noticed, never the later ones.
      const deadline = Date.now() + 5000;
      for (;;) {
        const r = await timed(() => producer.publish(topic, 'to b'));
        if (!r.error) break;
        expect(r.error).toBeInstanceOf(NsqConnectionError);
        if (Date.now() > deadline) throw r.error;
      }
      expect(await messageCount(b.httpUrl, topic)).toBe(1);
      // One disconnect, however many reconnect attempts failed on the way.
      expect(events).toEqual([
        `connected ${a.tcpAddress}`,
        `disconnected ${a.tcpAddress}`,
        `connected ${b.tcpAddress}`,
      ]);
    } finally {
      await producer.close();
    }
  });

  it('rejects quickly with an error naming every address when all nsqd are down', async () => {
    const [a, b] = await Promise.all([NsqdProcess.start(), NsqdProcess.start()]);
    await Promise.all([a.stop(), b.stop()]);
    const producer = new Producer({ nsqd: [a.tcpAddress, b.tcpAddress] });
    const topic = uniqueName();
    try {
      for (const attempt of [
        () => producer.publish(topic, 'x'),
        () => producer.publish(topic, 'y'),
        () => producer.publishMany(topic, ['x', 'y']),
        () => producer.publishDeferred(topic, 100, 'z'),
      ]) {
        const r = await timed(attempt);
        expect(r.ms).toBeLessThan(1000);
        expect(r.error).toBeInstanceOf(NsqConnectionError);
        const message = (r.error as Error).message;
        expect(message).toContain(a.tcpAddress);
        expect(message).toContain(b.tcpAddress);
      }
      // Back up: the same producer publishes again.
      await b.start();
      const deadline = Date.now() + 10_000;
      while ((await timed(() => producer.publish(topic, 'back'))).error) {
        if (Date.now() > deadline) throw new Error('no publish succeeded after nsqd came back');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await messageCount(b.httpUrl, topic)).toBe(1);
    } finally {
      await producer.close();
    }
  });
});

describe('Producer validation', () => {
  let producer: Producer;
  beforeEach(() => {
    producer = new Producer({ nsqd: [shared.nsqd] });
  });
  afterEach(() => producer.close());

  it('rejects a bad topic, an oversized and an empty body while the same tick publishes the rest', async () => {
    const topic = uniqueName();
    const good = Array.from({ length: 30 }, (_, i) => producer.publish(topic, `good ${i}`));
    const badTopic = producer.publish('bad topic!', 'x');
    const tooLong = producer.publish('x'.repeat(65), 'x');
    const oversized = producer.publish(topic, Buffer.alloc(1024 * 1024 + 1, 1));
    const empty = producer.publish(topic, '');
    const emptyBuffer = producer.publish(topic, Buffer.alloc(0));
    const notABody = producer.publish(topic, 42 as unknown as string);
    good.push(producer.publish(topic, Buffer.alloc(1024 * 1024, 2))); // exactly the limit

    await expect(badTopic).rejects.toThrow(NsqValidationError);
    await expect(badTopic).rejects.toThrow(/topic name "bad topic!"/);
    await expect(tooLong).rejects.toThrow(/1 to 64 characters/);
    await expect(oversized).rejects.toThrow(NsqValidationError);
    await expect(oversized).rejects.toThrow(/1048577 bytes, over maxMessageSize 1048576/);
    await expect(empty).rejects.toThrow(NsqValidationError);
    await expect(empty).rejects.toThrow(/is empty/);
    await expect(emptyBuffer).rejects.toThrow(/is empty/);
    await expect(notABody).rejects.toThrow(/must be a Buffer, Uint8Array or string, got number/);
    await expect(Promise.all(good)).resolves.toHaveLength(31);
    expect((await shared.api.topicStats(topic))?.message_count).toBe(31);
    expect((await shared.api.stats()).topics.some((t) => t.topic_name === 'bad topic!')).toBe(
      false,
    );
  });

  it('refuses a topic that is not a string, also as its first publish', async () => {
    await expect(producer.publish(undefined as never, 'x')).rejects.toThrow(
      /Invalid NSQ topic name undefined: must be a string/,
    );
    await expect(producer.publishDeferred(42 as never, 10, 'x')).rejects.toThrow(
      /must be a string, got number/,
    );
    expect((await shared.api.stats()).topics.some((t) => t.topic_name === 'undefined')).toBe(false);
  });

  it('rejects an MPUB over maxBodySize and a DPUB delay out of range, then publishes on', async () => {
    const topic = uniqueName();
    const mb = Buffer.alloc(1_000_000, 7);
    await expect(producer.publishMany(topic, [mb, mb, mb, mb, mb, mb])).rejects.toThrow(
      /MPUB to ".*" is 6000028 bytes, over maxBodySize 5242880/,
    );
    await expect(producer.publishMany(topic, [])).rejects.toThrow(NsqValidationError);
    await expect(producer.publishMany(topic, ['ok', ''])).rejects.toThrow(/is empty/);
    for (const delay of [-1, 3_600_001, 1.5, Number.NaN]) {
      await expect(producer.publishDeferred(topic, delay, 'x')).rejects.toThrow(
        /DPUB to ".*": delay must be an integer 0\.\.3600000 ms/,
      );
    }
    await expect(producer.publishDeferred('no good', 10, 'x')).rejects.toThrow(NsqValidationError);
    // Just under the limits goes through.
    await producer.publishMany(topic, [mb, mb, mb, mb, mb]);
    await producer.publishDeferred(topic, 3_600_000, 'in an hour');
    await producer.publish(topic, 'after');
    const t = await shared.api.topicStats(topic);
    expect(t?.message_count).toBe(7);
  });

  it('honours lower configured limits', async () => {
    const small = new Producer({ nsqd: [shared.nsqd], maxMessageSize: 100, maxDeferDelay: 1000 });
    const topic = uniqueName();
    try {
      await expect(small.publish(topic, 'x'.repeat(101))).rejects.toThrow(
        /over maxMessageSize 100/,
      );
      await expect(small.publishDeferred(topic, 1001, 'x')).rejects.toThrow(/0\.\.1000 ms/);
      await small.publish(topic, 'x'.repeat(100));
      expect((await shared.api.topicStats(topic))?.message_count).toBe(1);
    } finally {
      await small.close();
    }
    expect(() => new Producer({ nsqd: [] })).toThrow(NsqValidationError);
    expect(() => new Producer({ nsqd: ['nohost'] })).toThrow(/invalid address "nohost"/);
  });
});

describe('Producer batching', () => {
  afterEach(() => jest.restoreAllMocks());

  it('coalesces 1000 publishes made in one tick into a few writes', async () => {
    const producer = new Producer({ nsqd: [shared.nsqd] });
    const topic = uniqueName();
    try {
      await producer.connect();
      const write = jest.spyOn(NsqConnection.prototype, 'write');
      await Promise.all(Array.from({ length: 1000 }, (_, i) => producer.publish(topic, `m${i}`)));
      const commands = write.mock.calls.map(([c]) =>
        (Array.isArray(c) ? Buffer.concat(c) : Buffer.from(c as string | Buffer))
          .subarray(0, 5)
          .toString(),
      );
      // maxBatchCount 200 by default: five MPUBs, no PUB.
      expect(commands).toEqual(Array(5).fill('MPUB '));
      expect((await shared.api.topicStats(topic))?.message_count).toBe(1000);
    } finally {
      await producer.close();
    }
  });

  it('splits a tick that is over maxBatchCount or maxBatchBytes', async () => {
    const producer = new Producer({
      nsqd: [shared.nsqd],
      maxBatchCount: 100,
      maxBatchBytes: 10_000,
    });
    const topic = uniqueName();
    const other = uniqueName();
    try {
      const write = jest.spyOn(NsqConnection.prototype, 'write');
      await Promise.all([
        ...Array.from({ length: 250 }, (_, i) => producer.publish(topic, `m${i}`)),
        ...Array.from({ length: 5 }, () => producer.publish(other, Buffer.alloc(3000))),
      ]);
      // Topic: 100 + 100 + 50; other: 3000-byte bodies, three fit in 10 000 bytes: 3 + 2.
      expect(write.mock.calls.length).toBe(5);
      expect((await shared.api.topicStats(topic))?.message_count).toBe(250);
      expect((await shared.api.topicStats(other))?.message_count).toBe(5);
    } finally {
      await producer.close();
    }
  });

  it('gives each caller of a batch its own outcome', async () => {
    const producer = new Producer({ nsqd: [shared.nsqd] });
    const topic = uniqueName();
    try {
      const bodies = ['a', 'b', '', 'c', Buffer.alloc(2 * 1024 * 1024), 'd'];
      const results = await Promise.allSettled(bodies.map((b) => producer.publish(topic, b)));
      expect(results.map((r) => r.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect((await shared.api.topicStats(topic))?.message_count).toBe(4);
    } finally {
      await producer.close();
    }
  });

  it('an nsqd rejection fails only that publish; publishes behind it are sent again', async () => {
    // nsqd's limit is lower than the producer's: nsqd itself rejects (a fatal E_BAD_MESSAGE).
    const nsqd = await NsqdProcess.start({ args: ['--max-msg-size=1000'] });
    const api = new NsqdApi(nsqd.httpUrl);
    const producer = new Producer({ nsqd: [nsqd.tcpAddress] });
    const big = uniqueName();
    const small = uniqueName();
    try {
      await producer.connect();
      const tooBig = producer.publish(big, Buffer.alloc(2000, 1));
      const behind = Array.from({ length: 10 }, (_, i) => producer.publish(small, `m${i}`));
      await expect(tooBig).rejects.toThrow(NsqResponseError);
      await expect(tooBig).rejects.toThrow(/E_BAD_MESSAGE/);
      await expect(Promise.all(behind)).resolves.toHaveLength(10);
      await producer.publish(big, Buffer.alloc(1000, 1));
      expect((await api.topicStats(small))?.message_count).toBe(10);
      expect((await api.topicStats(big))?.message_count).toBe(1);
    } finally {
      await producer.close();
    }
  });

  it('rejects publishes after close', async () => {
    const producer = new Producer({ nsqd: [shared.nsqd] });
    const topic = uniqueName();
    const before = producer.publish(topic, 'flushed by close');
    await producer.close();
    await expect(before).resolves.toBeUndefined();
    await expect(producer.publish(topic, 'x')).rejects.toThrow(
      /close\(\) was called on this Producer/,
    );
    expect((await shared.api.topicStats(topic))?.message_count).toBe(1);
  });
});
