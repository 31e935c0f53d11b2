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

/**
 * A started consumer whose synchronous handler counts messages and the widest RDY seen; the
 * handler answers each message before the next is read, so our own in-flight count stays at 1.
 */
async function countingConsumer(topic: string) {
  const seen = { handled: 0, widest: 0 };
  const consumer: Consumer = new Consumer(
    topic,
    'c',
    () => {
      seen.handled++;
      seen.widest = Math.max(seen.widest, consumer.connections()[0]?.rdy ?? 0);
    },
    { nsqd: [shared.nsqd], maxInFlight: 200 },
  );
  open.push(consumer);
  await consumer.start();
  return { consumer, seen };
}

/** One message handled, then idle: the window has shrunk to 1. */
async function warmUpAndIdle(producer: Producer, consumer: Consumer): Promise<void> {
  await producer.publish(consumer.topic, 'warm-up');
  await waitFor(() => consumer.connections()[0]?.rdy === 1, 'RDY to shrink to 1', 5000);
}

describe('Consumer: adaptive RDY', () => {
  it('delivers a light stream without nsqd holding it in its output buffer', async () => {
    const { consumer, waits } = await trickle({}, 20, 30);
    // nsqd's buffer would hold each message up to HOLD (1 s); written at once they take ms.
    expect(Math.max(...waits)).toBeLessThan(HOLD / 2);
    // RDY shrank to the one message in flight at a time, and nsqd knows it.
    await waitFor(() => consumer.connections()[0]?.rdy === 1, 'RDY 1', 5000);
    await waitFor(
      async () =>
        (await shared.api.channelStats(consumer.topic, 'c'))?.clients[0]?.ready_count === 1,
      'nsqd to show ready_count 1',
      5000,
    );
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
    const { consumer, seen } = await countingConsumer(topic);
    await warmUpAndIdle(producer, consumer);
    seen.widest = 0; // the warm-up came under the first, full RDY
    await producer.publishMany(
      topic,
      Array.from({ length: 5000 }, (_, i) => `s${i}`),
    );
    await waitFor(() => seen.handled === 5001, 'the backlog', 20_000);
    // A window stuck at what our own count shows (1 or 2) would take one round trip per message.
    expect(seen.widest).toBeGreaterThanOrEqual(100);
  });

  it('opens the window for a handler that holds messages until it has a batch', async () => {
    const topic = uniqueName();
    const producer = new Producer({ nsqd: [shared.nsqd] });
    open.push(producer);
    const batch: (() => void)[] = [];
    let finished = 0;
    const consumer = new Consumer(
      topic,
      'c',
      (m) => {
        if (m.body.toString() === 'warm-up') return;
        // Nothing is answered until 10 messages are in: a window stuck at what is held hangs.
        const done = new Promise<void>((resolve) => batch.push(resolve));
        if (batch.length === 10) {
          batch.splice(0).forEach((resolve) => resolve());
          finished += 10;
        }
        return done;
      },
      { nsqd: [shared.nsqd], maxInFlight: 20 },
    );
    open.push(consumer);
    await consumer.start();
    await warmUpAndIdle(producer, consumer);
    for (let i = 0; i < 30; i++) {
      await producer.publish(topic, `h${i}`);
      await sleep(10);
    }
    await waitFor(() => finished >= 30, '3 batches of 10', 10_000);
  });

  it('a connection that starts in front of a paused channel catches up at full RDY', async () => {
    const topic = uniqueName();
    const producer = new Producer({ nsqd: [shared.nsqd] });
    open.push(producer);
    await shared.api.createTopic(topic, 'c');
    const http = shared.api.httpUrl;
    await fetch(`${http}/channel/pause?topic=${topic}&channel=c`, { method: 'POST' });
    const { seen } = await countingConsumer(topic);
    // Published one a millisecond: the oldest waits longest, so ages fall as the backlog is
    // caught up, and no message looks as if it waited longer than the first.
    for (let i = 0; i < 1000; i++) {
      await producer.publish(topic, `p${i}`);
      await sleep(1);
    }
    await sleep(200);
    await fetch(`${http}/channel/unpause?topic=${topic}&channel=c`, { method: 'POST' });
    await waitFor(() => seen.handled === 1000, 'the backlog', 20_000);
    // Nothing delivered before the unpause: the window was not shrunk to 1 in the meantime.
    expect(seen.widest).toBeGreaterThanOrEqual(100);
  });

  it('opens the window for a backlog of redeliveries (another consumer went away)', async () => {
    const topic = uniqueName();
    const producer = new Producer({ nsqd: [shared.nsqd] });
    open.push(producer);
    // A first consumer takes all 2000 messages (its RDY is exactly that) and holds them.
    let taken = 0;
    const leaving = new Consumer(
      topic,
      'c',
      () => {
        taken++;
        return new Promise<void>(() => undefined);
      },
      { nsqd: [shared.nsqd], maxInFlight: 2000, adaptiveRdy: false, requeueDelay: 0 },
    );
    await leaving.start();
    await producer.publishMany(
      topic,
      Array.from({ length: 2000 }, (_, i) => `r${i}`),
    );
    await waitFor(() => taken === 2000, 'the first consumer to hold all 2000', 10_000);
    // The adaptive one joins, handles a warm-up and idles at RDY 1.
    const { consumer, seen } = await countingConsumer(topic);
    await warmUpAndIdle(producer, consumer);
    seen.widest = 0; // the warm-up came under the first, full RDY
    // The first leaves: close() hands its 2000 back (REQ) and nsqd redelivers them, attempts 2,
    // whose timestamps say nothing of waiting for a slot.
    await leaving.close(0);
    await waitFor(() => seen.handled === 2001, 'the redeliveries', 20_000);
    expect(seen.widest).toBeGreaterThanOrEqual(100);
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
      (m) =>
        m.body.toString() === 'warm-up'
          ? undefined
          : new Promise<void>((resolve) => {
              handled++;
              release.push(resolve);
              peak = Math.max(peak, consumer.inFlight);
            }),
      { nsqd: [shared.nsqd], maxInFlight: 64, outputBufferTimeout: HOLD },
    );
    open.push(consumer);
    await consumer.start();
    await warmUpAndIdle(producer, consumer);
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
    // Idle again: back to 1.
    await waitFor(() => consumer.connections()[0]?.rdy === 1, 'RDY back to 1', 5000);
  });
});
