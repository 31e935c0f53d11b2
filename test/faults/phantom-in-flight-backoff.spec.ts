// Fault suite, backoff on: phantom in-flight messages (see phantom-in-flight.spec.ts) cost a
// consumer in normal mode a slot of its window each, but in backoff's testing state the single
// RDY 1 is never served (nsqd counts the phantom against it), so the consumer would stop
// consuming for good. It must replace the connection: after SIGKILL cycles, a backoff still ends
// and every message is handled.
import { Consumer, Producer } from '../../lib/core.js';
import { NsqdApi, NsqdProcess, stopAll, uniqueName, waitFor } from '../harness/nsq.js';
import { figure, sleep } from './helpers.js';

afterAll(stopAll);

describe('phantom in-flight after nsqd crashes, backoff on', () => {
  it('a consumer pushed into backoff after SIGKILLs consumes again and nsqd counts nothing in flight', async () => {
    // A disk-only queue with the default --sync-every: after a crash nsqd re-reads messages,
    // among them originals already requeued, delivering their id twice at once.
    const nsqd = await NsqdProcess.start({ args: ['--mem-queue-size=0'] });
    const api = new NsqdApi(nsqd.httpUrl);
    const topic = uniqueName('phantom-backoff');
    const warnings: string[] = [];
    const probed = new Set<string>();
    let handled = 0;
    const producer = new Producer({ nsqd: [nsqd.tcpAddress], maxRetryDelay: 100 });
    const consumer = new Consumer(
      topic,
      'c',
      async (m) => {
        const body = m.body.toString();
        if (body.startsWith('probe')) {
          probed.add(body);
          return;
        }
        // Every other message fails its first attempt: a REQ, i.e. a second copy on disk. (All
        // of them would keep backoff at its top level: each test would get a first attempt.)
        if (m.attempts === 1 && (body.startsWith('fail') || Number(body) % 2 === 0)) {
          throw new Error('first attempt');
        }
        await sleep(2);
        handled++;
      },
      {
        nsqd: [nsqd.tcpAddress],
        maxInFlight: 50,
        requeueDelay: 0,
        // A third of the results fail under load: backoff engages at bursts of failures.
        backoff: { multiplier: 100, maxDelay: 400 },
        maxReconnectDelay: 300,
      },
    );
    consumer.on('warning', (e) => warnings.push(e.message));
    // Backoff seen: every subscribed connection at RDY 0 (paused) or 1 in all (testing).
    const seen = { paused: 0, testing: 0 };
    const watch = setInterval(() => {
      const conns = consumer.connections().filter((c) => c.subscribed);
      const rdy = conns.reduce((a, c) => a + c.rdy, 0);
      if (conns.length && rdy === 0) seen.paused++;
      if (rdy === 1) seen.testing++;
    }, 5);
    watch.unref();
    await producer.publish(topic, 'first');
    await consumer.start();

    const phantoms = () => warnings.filter((w) => /delivered that id twice/.test(w)).length;
    const nsqdInFlight = async () =>
      ((await api.channelStats(topic, 'c'))?.clients ?? []).reduce(
        (a, c) => a + c.in_flight_count,
        0,
      );
    // Everything answered and nsqd holding nothing back; on a timeout, what nsqd counts.
    const drained = (what: string) =>
      waitFor(
        async () => {
          const c = await api.channelStats(topic, 'c');
          return c?.depth === 0 && c.deferred_count === 0 && consumer.inFlight === 0;
        },
        what,
        // In backoff a backlog drains at the test rate (one message per pause of up to 400 ms)
        // while half the first attempts fail: on a busy machine that can take well over 10 s.
        30_000,
      ).catch(async (err: Error) => {
        const c = await api.channelStats(topic, 'c');
        const clients = (c?.clients ?? []).map((x) => ({
          rdy: x.ready_count,
          inFlight: x.in_flight_count,
        }));
        throw new Error(
          `${err.message}: depth ${c?.depth}, nsqd's clients ${JSON.stringify(clients)}, ` +
            `the consumer holds ${consumer.inFlight}`,
        );
      });

    // SIGKILL cycles under ~150 messages/s until a phantom is seen: healed (the consumer's
    // warning) or left (nsqd counts messages in flight with everything answered).
    let crashes = 0;
    let leftInFlight = 0;
    let seq = 0;
    while (crashes < 8 && phantoms() === 0 && leftInFlight === 0) {
      let publishing = true;
      const load = (async () => {
        while (publishing) {
          const batch = Array.from({ length: 15 }, () => producer.publish(topic, String(seq++)));
          await Promise.allSettled(batch);
          await sleep(100);
        }
      })();
      await sleep(800);
      await nsqd.restart('SIGKILL');
      crashes++;
      await sleep(1200);
      publishing = false;
      await load;
      // A consumer stuck in backoff's RDY 1 behind a phantom never gets here.
      await drained(`the backlog consumed after crash ${crashes}`);
      await sleep(300);
      leftInFlight = await nsqdInFlight();
    }

    // Now push the consumer into backoff: 10 first attempts fail in a row (half of backoff's
    // window, all failed). It pauses, then tests with RDY 1; a phantom on that connection
    // would hold the 100 probes back for good. (Still in backoff from the crashes, each failure
    // raises the level instead: at most 10 pauses of 400 ms.)
    const before = { ...seen };
    const probeStart = Date.now();
    await producer.publishMany(
      topic,
      Array.from({ length: 10 }, (_, k) => `fail${k}`),
    );
    await producer.publishMany(
      topic,
      Array.from({ length: 100 }, (_, k) => `probe${k}`),
    );
    let probeError: Error | undefined;
    await waitFor(() => probed.size === 100, 'the 100 probes handled after backoff', 15_000).catch(
      (err: Error) => (probeError = err),
    );
    const probeMs = Date.now() - probeStart;
    const probeHandled = probed.size;
    // Retired connections are replaced once answered: nsqd's count must end at 0.
    let finalInFlight = -1;
    if (!probeError) {
      await drained('the backlog drained after the probes');
      await waitFor(
        async () => (finalInFlight = await nsqdInFlight()) === 0,
        'nsqd counting nothing in flight',
        5_000,
      ).catch(() => undefined);
    }
    clearInterval(watch);
    figure('phantom in-flight after nsqd SIGKILL, backoff on', {
      crashes,
      phantomsHealed: phantoms(),
      leftInFlightAfterCrashes: leftInFlight,
      handled,
      backoffPausedSamples: seen.paused - before.paused,
      backoffTestingSamples: seen.testing - before.testing,
      probeHandled,
      probeMs,
      nsqdInFlightAtEnd: finalInFlight,
    });
    await producer.close();
    await consumer.close(0);
    // A phantom occurred (and was healed), backoff engaged, and the consumer kept consuming.
    expect(phantoms()).toBeGreaterThan(0);
    expect(seen.paused - before.paused).toBeGreaterThan(0);
    expect(probeError).toBeUndefined();
    expect(finalInFlight).toBe(0);
  }, 120_000);
});
