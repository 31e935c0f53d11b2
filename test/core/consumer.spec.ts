import { NsqConnection } from '../../lib/connection/connection.js';
import { jest } from '@jest/globals';
import {
  Consumer,
  lookupTopic,
  NsqConnectionError,
  NsqMessage,
  Producer,
  type ConsumerOptions,
  type MessageHandler,
} from '../../lib/core.js';
import {
  LookupdProcess,
  NsqdApi,
  NsqdProcess,
  sharedNsq,
  stopAll,
  uniqueName,
  waitFor,
} from '../harness/nsq.js';

const shared = sharedNsq();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const consumers: Consumer[] = [];
const producers: Producer[] = [];

function consumer(topic: string, handler: MessageHandler, options: ConsumerOptions): Consumer {
  const c = new Consumer(topic, 'c', handler, options);
  consumers.push(c);
  return c;
}
function producer(nsqd: string[]): Producer {
  const p = new Producer({ nsqd });
  producers.push(p);
  return p;
}

afterEach(async () => {
  jest.restoreAllMocks();
  await Promise.all(consumers.splice(0).map((c) => c.close(1000)));
  await Promise.all(producers.splice(0).map((p) => p.close(1000)));
});
afterAll(() => stopAll());

/** Waits until nsqd shows the channel with nothing queued nor in flight, and returns it. */
async function settledChannel(api: NsqdApi, topic: string) {
  await waitFor(async () => {
    const ch = await api.channelStats(topic, 'c');
    return ch?.depth === 0 && ch.in_flight_count === 0 && ch.deferred_count === 0;
  }, `channel ${topic}/c to be empty with nothing in flight`);
  return (await api.channelStats(topic, 'c'))!;
}

describe('Consumer: requeue and attempts', () => {
  it('requeues with the configured delay and counts attempts', async () => {
    const topic = uniqueName();
    const seen: { attempts: number; at: number }[] = [];
    const c = consumer(
      topic,
      (m) => {
        seen.push({ attempts: m.attempts, at: Date.now() });
        if (m.attempts < 3) throw new Error(`attempt ${m.attempts} fails`);
      },
      { nsqd: [shared.nsqd], requeueDelay: 100, backoff: false },
    );
    const failed: unknown[] = [];
    c.on('failed', (_m, err) => failed.push(err));
    await c.start();
    await producer([shared.nsqd]).publish(topic, 'hello');
    await waitFor(() => seen.length >= 3, 'three deliveries', 20_000);
    await sleep(300);
    expect(seen.map((s) => s.attempts)).toEqual([1, 2, 3]);
    // nsqd holds a REQ'd message back for the delay asked (its scan may add to it, never less).
    expect(seen[1].at - seen[0].at).toBeGreaterThanOrEqual(90);
    expect(seen[2].at - seen[1].at).toBeGreaterThanOrEqual(90);
    expect(failed.map((e) => (e as Error).message)).toEqual(['attempt 1 fails', 'attempt 2 fails']);
    const ch = await settledChannel(shared.api, topic);
    expect(ch).toMatchObject({ message_count: 1, requeue_count: 2, timeout_count: 0 });
  });

  it('gives up after maxAttempts: onGiveUp gets the original body once, then FIN', async () => {
    const topic = uniqueName();
    const body = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    let calls = 0;
    const givenUp: { body: Buffer; attempts: number; reason: unknown }[] = [];
    const events: NsqMessage[] = [];
    const c = consumer(
      topic,
      () => {
        calls++;
        return Promise.reject(new Error('always fails'));
      },
      {
        nsqd: [shared.nsqd],
        maxAttempts: 3,
        requeueDelay: 0,
        backoff: false,
        onGiveUp: async (m, reason) => {
          givenUp.push({ body: Buffer.from(m.body), attempts: m.attempts, reason });
        },
      },
    );
    c.on('gaveUp', (m) => events.push(m));
    await c.start();
    await producer([shared.nsqd]).publish(topic, body);
    await waitFor(() => givenUp.length === 1, 'the give-up');
    await sleep(500);
    expect(calls).toBe(3);
    expect(givenUp).toHaveLength(1);
    expect(givenUp[0].body.equals(body)).toBe(true);
    expect(givenUp[0].attempts).toBe(3);
    expect((givenUp[0].reason as Error).message).toBe('always fails');
    expect(events).toHaveLength(1);
    expect(events[0].outcome).toBe('finished');
    const ch = await settledChannel(shared.api, topic);
    expect(ch).toMatchObject({ message_count: 1, requeue_count: 2 });
  });

  it('honours a requeueDelay carried by the error', async () => {
    const topic = uniqueName();
    const seen: { attempts: number; at: number }[] = [];
    const c = consumer(
      topic,
      (m) => {
        seen.push({ attempts: m.attempts, at: Date.now() });
        if (m.attempts === 1) throw Object.assign(new Error('later'), { requeueDelay: 300 });
      },
      // The consumer's own delay is a minute: only the error's can bring it back in seconds.
      { nsqd: [shared.nsqd], requeueDelay: 60_000, backoff: false },
    );
    await c.start();
    await producer([shared.nsqd]).publish(topic, 'x');
    await waitFor(() => seen.length === 2, 'the redelivery', 15_000);
    expect(seen.map((s) => s.attempts)).toEqual([1, 2]);
    expect(seen[1].at - seen[0].at).toBeGreaterThanOrEqual(290);
    await settledChannel(shared.api, topic);
  });

  it('gives up at once on an error with nsqGiveUp: true', async () => {
    const topic = uniqueName();
    let calls = 0;
    const reasons: unknown[] = [];
    const poison = Object.assign(new Error('cannot ever work'), { nsqGiveUp: true as const });
    const c = consumer(
      topic,
      () => {
        calls++;
        throw poison;
      },
      { nsqd: [shared.nsqd], maxAttempts: 5, requeueDelay: 0, backoff: false },
    );
    c.on('gaveUp', (_m, reason) => reasons.push(reason));
    await c.start();
    await producer([shared.nsqd]).publish(topic, 'poison');
    await waitFor(() => reasons.length === 1, 'the give-up');
    await sleep(300);
    expect(calls).toBe(1);
    expect(reasons).toEqual([poison]);
    const ch = await settledChannel(shared.api, topic);
    expect(ch).toMatchObject({ message_count: 1, requeue_count: 0 });
  });
});

describe('Consumer: backoff', () => {
  it('sets RDY 0 after a failure, tests with RDY 1, then recovers', async () => {
    const topic = uniqueName();
    const done = new Set<string>();
    let failedOnce = false;
    const c = consumer(
      topic,
      async (m) => {
        await sleep(10);
        if (m.body.toString() === 'm5' && !failedOnce) {
          failedOnce = true;
          throw new Error('first try of m5 fails');
        }
        done.add(m.body.toString());
      },
      {
        nsqd: [shared.nsqd],
        maxInFlight: 5,
        requeueDelay: 0,
        backoff: { multiplier: 600, maxDelay: 2000, window: 1 }, // every failure counts
        adaptiveRdy: false, // RDY exactly as backoff sets it, not shrunk to the work in flight
      },
    );
    await c.start();
    const rdy: { at: number; value: number }[] = [];
    const sampler = setInterval(() => {
      const value = c.connections()[0]?.rdy ?? -1;
      if (rdy.at(-1)?.value !== value) rdy.push({ at: Date.now(), value });
    }, 2);
    try {
      const p = producer([shared.nsqd]);
      await Promise.all(Array.from({ length: 40 }, (_, i) => p.publish(topic, `m${i}`)));
      await waitFor(() => failedOnce, 'the failure');
      // nsqd itself sees RDY 0 during the pause.
      await waitFor(
        async () => (await shared.api.channelStats(topic, 'c'))?.clients[0]?.ready_count === 0,
        'nsqd to show ready_count 0',
        500,
      );
      await waitFor(() => done.size === 40, 'all 40 messages', 20_000);
      await waitFor(() => c.connections()[0]?.rdy === 5, 'RDY back to 5');
      await waitFor(
        async () => (await shared.api.channelStats(topic, 'c'))?.clients[0]?.ready_count === 5,
        'nsqd to show ready_count 5 again',
      );
    } finally {
      clearInterval(sampler);
    }
    const values = rdy.map((r) => r.value);
    const paused = values.indexOf(0);
    expect(values[0]).toBe(5);
    expect(paused).toBeGreaterThan(0);
    expect(values.slice(paused, paused + 3)).toEqual([0, 1, 5]);
    // The pause lasted the first window.
    expect(rdy[paused + 1].at - rdy[paused].at).toBeGreaterThanOrEqual(550);
    await settledChannel(shared.api, topic);
  });
});

describe('Consumer over several nsqd', () => {
  it('finds nsqd through nsqlookupd, discovers a later one, and never exceeds maxInFlight', async () => {
    const lookupd = await LookupdProcess.start();
    const nsqds = await Promise.all([1, 2, 3].map(() => NsqdProcess.start({ lookupd })));
    const topic = uniqueName();
    const perNsqd = 150;
    const publishTo = async (n: InstanceType<typeof NsqdProcess>) => {
      const p = producer([n.tcpAddress]);
      await p.publishMany(
        topic,
        Array.from({ length: perNsqd }, (_, i) => `${n.tcpAddress}/${i}`),
      );
    };
    await Promise.all(nsqds.map(publishTo));
    await waitFor(
      async () => (await lookupTopic(lookupd.httpAddress, topic)).addresses.length === 3,
      'nsqlookupd to list three producers',
    );

    let running = 0;
    let maxRunning = 0;
    const seen = new Map<string, number>();
    const byAddress = new Map<string, number>();
    const c = consumer(
      topic,
      async (m) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(3);
        running--;
        const k = m.body.toString();
        seen.set(k, (seen.get(k) ?? 0) + 1);
        byAddress.set(m.address, (byAddress.get(m.address) ?? 0) + 1);
      },
      { lookupd: [lookupd.httpAddress], lookupdPollInterval: 500, maxInFlight: 10 },
    );
    const connected: string[] = [];
    c.on('connected', (a) => connected.push(a));
    await c.start();
    await waitFor(() => seen.size === 3 * perNsqd, 'the first three nsqd drained', 20_000);

    const late = await NsqdProcess.start({ lookupd });
    await publishTo(late);
    await waitFor(() => seen.size === 4 * perNsqd, 'the late nsqd drained', 20_000);

    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(connected)).toEqual(new Set([...nsqds, late].map((n) => n.tcpAddress)));
    for (const n of [...nsqds, late]) expect(byAddress.get(n.tcpAddress)).toBe(perNsqd);
    expect(maxRunning).toBeLessThanOrEqual(10);
    expect(maxRunning).toBeGreaterThanOrEqual(5);
    expect(c.connections().reduce((s, x) => s + x.rdy, 0)).toBeLessThanOrEqual(10);
    for (const n of [...nsqds, late]) await settledChannel(new NsqdApi(n.httpUrl), topic);
  });

  it('with maxInFlight 1 over three nsqd, rotates RDY without a storm and consumes all', async () => {
    const nsqds = await Promise.all([1, 2, 3].map(() => NsqdProcess.start()));
    const topic = uniqueName();
    const perNsqd = 20;
    await Promise.all(
      nsqds.map((n) =>
        producer([n.tcpAddress]).publishMany(
          topic,
          Array.from({ length: perNsqd }, (_, i) => `${n.tcpAddress}/${i}`),
        ),
      ),
    );
    const write = jest.spyOn(NsqConnection.prototype, 'write');
    let running = 0;
    let maxRunning = 0;
    const seen = new Set<string>();
    const c = consumer(
      topic,
      async (m) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(2);
        running--;
        seen.add(m.body.toString());
      },
      { nsqd: nsqds.map((n) => n.tcpAddress), maxInFlight: 1 },
    );
    let maxRdy = 0;
    const sampler = setInterval(() => {
      maxRdy = Math.max(
        maxRdy,
        c.connections().reduce((s, x) => s + x.rdy, 0),
      );
    }, 20);
    const start = Date.now();
    try {
      await c.start();
      await waitFor(() => seen.size === 3 * perNsqd, 'all messages', 30_000);
    } finally {
      clearInterval(sampler);
    }
    const elapsed = Date.now() - start;
    const rdyCommands = write.mock.calls.filter(
      ([cmd]) => typeof cmd === 'string' && cmd.startsWith('RDY '),
    ).length;
    expect(maxRdy).toBe(1);
    expect(maxRunning).toBe(1);
    expect(elapsed).toBeLessThan(15_000);
    // A rotation costs two RDY (0 on one, 1 on another); a storm would be hundreds.
    expect(rdyCommands).toBeLessThan(40);
    for (const n of nsqds) await settledChannel(new NsqdApi(n.httpUrl), topic);
  });
});

describe('Consumer and Producer across an nsqd restart', () => {
  it('reconnects, consumes again, and the same producer publishes again', async () => {
    const nsqd = await NsqdProcess.start();
    const topic = uniqueName();
    const got: string[] = [];
    const events: string[] = [];
    const c = consumer(topic, (m) => void got.push(m.body.toString()), { nsqd: [nsqd.tcpAddress] });
    for (const e of ['connected', 'disconnected', 'reconnecting'] as const)
      c.on(e, () => events.push(e));
    const p = producer([nsqd.tcpAddress]);
    await c.start();
    await p.publish(topic, 'before');
    await waitFor(() => got.length === 1, 'the first message');

    await nsqd.stop('SIGTERM');
    await waitFor(() => events.includes('reconnecting'), 'the consumer to notice');
    for (let i = 0; i < 3; i++) {
      const start = Date.now();
      await expect(p.publish(topic, 'while down')).rejects.toThrow(NsqConnectionError);
      expect(Date.now() - start).toBeLessThan(1000);
    }
    await expect(p.publish(topic, 'while down')).rejects.toThrow(nsqd.tcpAddress);

    await nsqd.start();
    await waitFor(
      () => events.filter((e) => e === 'connected').length === 2,
      'the reconnect',
      20_000,
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await p.publish(topic, 'after');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(100);
      }
    }
    await p.publishMany(topic, ['after 2', 'after 3']);
    await waitFor(() => got.length === 4, 'the messages published after the restart');
    expect(got).toEqual(['before', 'after', 'after 2', 'after 3']);
    expect(events[0]).toBe('connected');
    expect(events.slice(1, 3)).toEqual(['disconnected', 'reconnecting']);
    expect(events.at(-1)).toBe('connected');
    await settledChannel(new NsqdApi(nsqd.httpUrl), topic);
  });
});

describe('Consumer.close()', () => {
  it('waits for handlers in flight and their FINs reach nsqd', async () => {
    const topic = uniqueName();
    const published = 50;
    let started = 0;
    let finished = 0;
    const c = new Consumer(
      topic,
      'c',
      async () => {
        started++;
        await sleep(300);
        finished++;
      },
      { nsqd: [shared.nsqd], maxInFlight: 20 },
    );
    await c.start();
    await producer([shared.nsqd]).publishMany(
      topic,
      Array.from({ length: published }, (_, i) => `m${i}`),
    );
    await waitFor(() => started === 20, '20 handlers running');
    const closing = Date.now();
    await c.close();
    expect(Date.now() - closing).toBeGreaterThanOrEqual(200);
    expect(finished).toBe(20);
    expect(started).toBe(20);
    // No waiting for msg-timeout (60 s): the FINs were flushed before the socket ended.
    await waitFor(
      async () => (await shared.api.channelStats(topic, 'c'))?.in_flight_count === 0,
      'in_flight_count 0',
      2000,
    );
    const ch = (await shared.api.channelStats(topic, 'c'))!;
    expect(ch.depth + finished).toBe(published);
    expect(ch).toMatchObject({ message_count: published, requeue_count: 0, timeout_count: 0 });
  });

  it('requeues at once what is still running after the drain timeout', async () => {
    const topic = uniqueName();
    let started = 0;
    const c = new Consumer(
      topic,
      'c',
      async () => {
        started++;
        await sleep(2000);
      },
      { nsqd: [shared.nsqd], maxInFlight: 5 },
    );
    await c.start();
    await producer([shared.nsqd]).publishMany(topic, ['a', 'b', 'c', 'd', 'e', 'f']);
    await waitFor(() => started === 5, '5 handlers running');
    const closing = Date.now();
    await c.close(200);
    expect(Date.now() - closing).toBeLessThan(1500);
    await waitFor(
      async () => (await shared.api.channelStats(topic, 'c'))?.in_flight_count === 0,
      'in_flight_count 0',
      2000,
    );
    expect(await shared.api.channelStats(topic, 'c')).toMatchObject({
      depth: 6,
      requeue_count: 5,
      timeout_count: 0,
    });
    await sleep(2000); // the abandoned handlers end; their late FIN must not throw
  });
});
