// Adaptive RDY against real nsqd: a light stream is written out at once (nsqd flushes when
// in-flight reaches RDY), a backlog still gets all of maxInFlight, and `adaptiveRdy: false`
// keeps today's fixed RDY. nsqd's outputBufferTimeout is set to 1 s here so that a message
// held in its buffer shows as a wait no loaded machine could produce by itself.
import { Consumer, Producer, type ConsumerOptions } from '../../lib/core.js';
import { sharedNsq, stopAll, uniqueName, waitFor } from '../harness/nsq.js';

const shared = sharedNsq();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HOLD = 1000;

const open: { close(ms?: number): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close(1000)));
});
afterAll(() => stopAll());

/** Publishes `count` messages `gapMs` apart; returns how long each took to reach the handler. */
async function trickle(options: Partial<ConsumerOptions>, count: number, gapMs: number) {
  const topic = uniqueName();
  const sentAt = new Map<string, number>();
  const waits: number[] = [];
  const consumer = new Consumer(
    topic,
    'c',
    (m) => {
      const key = m.body.toString();
      waits.push(Date.now() - sentAt.get(key)!);
    },
    { nsqd: [shared.nsqd], maxInFlight: 50, outputBufferTimeout: HOLD, ...options },
  );
  open.push(consumer);
  await consumer.start();
  const producer = new Producer({ nsqd: [shared.nsqd] });
  open.push(producer);
  await producer.publish(topic, 'warm-up');
  await waitFor(() => waits.length === 1, 'the warm-up message', 5000);
  waits.length = 0;
  await sleep(200); // a few review periods: the window has shrunk to what is used
  for (let i = 0; i < count; i++) {
    sentAt.set(`m${i}`, Date.now());
    await producer.publish(topic, `m${i}`);
    await sleep(gapMs);
  }
  await waitFor(() => waits.length === count, `${count} messages`, 3 * HOLD + 5000);
  return { consumer, waits };
}

describe('Consumer: adaptive RDY', () => {
  it('delivers a light stream without nsqd holding it in its output buffer', async () => {
    const { consumer, waits } = await trickle({}, 20, 30);
    // nsqd's buffer would hold each message up to HOLD (1 s); written at once they take ms.
    expect(Math.max(...waits)).toBeLessThan(HOLD / 2);
    // RDY shrank to the one message in flight at a time.
    expect(consumer.connections()[0].rdy).toBe(1);
    const ready = await shared.api.channelStats(consumer.topic, 'c');
    expect(ready?.clients[0]?.ready_count).toBe(1);
  });

  it('with adaptiveRdy: false, RDY stays at maxInFlight and nsqd holds a light stream', async () => {
    const { consumer, waits } = await trickle({ adaptiveRdy: false }, 5, 30);
    // Held until the buffer's timer: the behaviour adaptive RDY removes.
    expect(Math.max(...waits)).toBeGreaterThanOrEqual(HOLD / 2);
    expect(consumer.connections()[0].rdy).toBe(50);
  });

  it('opens the window for a synchronous handler too (nsqd counts answers not yet written)', async () => {
    const topic = uniqueName();
    const producer = new Producer({ nsqd: [shared.nsqd] });
    open.push(producer);
    let handled = 0;
    let widest = 0;
    const consumer = new Consumer(
      topic,
      'c',
      // Answered before the next message is read: our own in-flight count never passes 1.
      () => {
        handled++;
        widest = Math.max(widest, consumer.connections()[0]?.rdy ?? 0);
      },
      { nsqd: [shared.nsqd], maxInFlight: 200 },
    );
    open.push(consumer);
    await consumer.start();
    await waitFor(() => consumer.connections()[0]?.rdy === 1, 'RDY to shrink to 1', 5000);
    await producer.publishMany(
      topic,
      Array.from({ length: 5000 }, (_, i) => `s${i}`),
    );
    await waitFor(() => handled === 5000, 'the backlog', 20_000);
    // A window stuck at what our own count shows (1 or 2) would take one round trip per message.
    expect(widest).toBeGreaterThanOrEqual(100);
  });

  it('gives a backlog all of maxInFlight within a few round trips', async () => {
    const topic = uniqueName();
    const producer = new Producer({ nsqd: [shared.nsqd] });
    open.push(producer);
    let handled = 0;
    let peak = 0;
    const release: (() => void)[] = [];
    const consumer = new Consumer(
      topic,
      'c',
      // Each handler waits to be released: the in-flight count shows how far RDY opened.
      () =>
        new Promise<void>((resolve) => {
          handled++;
          release.push(resolve);
          peak = Math.max(peak, consumer.inFlight);
        }),
      { nsqd: [shared.nsqd], maxInFlight: 64, outputBufferTimeout: HOLD },
    );
    open.push(consumer);
    await consumer.start();
    // Idle first: the window shrinks to 1.
    await waitFor(() => consumer.connections()[0]?.rdy === 1, 'RDY to shrink to 1', 5000);
    await producer.publishMany(
      topic,
      Array.from({ length: 500 }, (_, i) => `b${i}`),
    );
    // Release messages as they come: the backlog makes them wait at nsqd, so RDY doubles.
    const drain = setInterval(() => release.splice(0).forEach((r) => r()), 5);
    try {
      await waitFor(() => peak >= 32, 'in flight to reach at least half of maxInFlight', 5000);
      await waitFor(() => handled === 500, 'the backlog', 10_000);
    } finally {
      clearInterval(drain);
      release.splice(0).forEach((r) => r());
    }
    expect(consumer.connections()[0].rdy).toBeLessThanOrEqual(64);
    // Idle again: back to 1.
    await waitFor(() => consumer.connections()[0]?.rdy === 1, 'RDY back to 1', 5000);
  });
});
