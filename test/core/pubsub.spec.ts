import { Consumer, NsqMessage, Producer } from '../../lib/core.js';
import { sharedNsq, uniqueName, waitFor } from '../harness/nsq.js';

const { nsqd, api } = sharedNsq();

describe('publish and consume through one nsqd', () => {
  let producer: Producer;
  beforeEach(() => {
    producer = new Producer({ nsqd: [nsqd] });
  });
  afterEach(() => producer.close());

  it('delivers 10 000 messages exactly once each and FINs them all', async () => {
    const topic = uniqueName();
    const n = 10_000;
    const seen = new Map<string, number>();
    const consumer = new Consumer(
      topic,
      'c',
      (m: NsqMessage) => {
        const k = m.body.toString();
        seen.set(k, (seen.get(k) ?? 0) + 1);
      },
      { nsqd: [nsqd], maxInFlight: 200 },
    );
    await consumer.start();
    await Promise.all(Array.from({ length: n }, (_, i) => producer.publish(topic, `m${i}`)));
    await waitFor(() => seen.size === n, `${n} messages`, 30_000);
    await consumer.close();
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
    const ch = await api.channelStats(topic, 'c');
    expect(ch).toMatchObject({ depth: 0, in_flight_count: 0, message_count: n });
  });

  it('coalesces publishes made in one tick into MPUB', async () => {
    const topic = uniqueName();
    await Promise.all(Array.from({ length: 50 }, (_, i) => producer.publish(topic, `m${i}`)));
    const t = await api.topicStats(topic);
    expect(t?.message_count).toBe(50);
  });

  it('PUB, MPUB and DPUB: the deferred message arrives no earlier than asked', async () => {
    const topic = uniqueName();
    const got: { body: string; at: number }[] = [];
    const consumer = new Consumer(
      topic,
      'c',
      (m) => void got.push({ body: m.body.toString(), at: Date.now() }),
      {
        nsqd: [nsqd],
      },
    );
    await consumer.start();
    const sent = Date.now();
    await producer.publishDeferred(topic, 1500, 'later');
    await producer.publish(topic, 'one');
    await producer.publishMany(topic, ['two', 'three']);
    await waitFor(() => got.length === 4, 'four messages');
    await consumer.close();
    expect(
      got
        .slice(0, 3)
        .map((g) => g.body)
        .sort(),
    ).toEqual(['one', 'three', 'two']);
    expect(got[3].body).toBe('later');
    expect(got[3].at - sent).toBeGreaterThanOrEqual(1500);
  });
});
