// Fault suite: nsqd stopped (SIGTERM) or killed (SIGKILL) under a running Nest consumer and
// producer, then started again on the same ports and data dir.
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { NsqRecordBuilder, type NsqContext } from '../../lib/index.js';
import { NsqdApi, NsqdProcess, stopAll, uniqueName, waitFor } from '../harness/nsq.js';
import { emit, figure, sleep, startClient, startServer, timed } from './helpers.js';

afterAll(stopAll);

/** Emit outcomes by kind: an ambiguous one may have been published before the connection died. */
interface EmitFailure {
  ms: number;
  message: string;
  kind: 'down' | 'ambiguous';
  at: number;
}

function classify(message: string): EmitFailure['kind'] {
  if (/^No nsqd reachable to publish to\. 127\.0\.0\.1:\d+: /.test(message)) return 'down';
  if (
    /was lost before it acknowledged \(the message may or may not have been published\)/.test(
      message,
    )
  )
    return 'ambiguous';
  throw new Error(`unexpected emit error: ${message}`);
}

describe('nsqd SIGTERM and restart under load', () => {
  it('20 000 emitted while nsqd restarts: all handled at least once, duplicates bounded and counted', async () => {
    const N = 20_000;
    const maxInFlight = 100;
    const nsqd = await NsqdProcess.start();
    const api = new NsqdApi(nsqd.httpUrl);
    const topic = uniqueName('sigterm');
    const counts = new Uint16Array(N);
    let handled = 0;

    @Controller()
    class Work {
      @EventPattern<string>(`${topic}/work`)
      async handle(@Payload() data: { i: number }) {
        counts[data.i]++;
        handled++;
        await sleep(2);
      }
    }
    const { app, server } = await startServer([Work], {
      nsqd: [nsqd.tcpAddress],
      maxInFlight,
      requeueDelay: 0,
      backoff: false,
      maxReconnectDelay: 500,
    });
    const connectedAt: number[] = [];
    const disconnectedAt: number[] = [];
    server.on('connected', () => connectedAt.push(Date.now()));
    server.on('disconnected', () => disconnectedAt.push(Date.now()));
    const { client, get, close } = await startClient({ nsqd: [nsqd.tcpAddress] });

    let accepted = 0;
    let acceptedAfterRestart = 0;
    let restartedAt = Infinity;
    const failures: EmitFailure[] = [];
    let ambiguousMessages = 0;

    const emitter = (async () => {
      let pending = Array.from({ length: N }, (_, i) => i);
      const deadline = Date.now() + 60_000;
      while (pending.length) {
        if (Date.now() > deadline) throw new Error(`emitter stuck with ${pending.length} left`);
        const batch = pending.slice(0, 200);
        pending = pending.slice(200);
        const results = await Promise.all(
          batch.map((i) => timed(() => emit(client, topic, { i }))),
        );
        let failed = false;
        results.forEach((r, k) => {
          if (!r.error) {
            accepted++;
            if (Date.now() > restartedAt) acceptedAfterRestart++;
            return;
          }
          failed = true;
          const kind = classify(r.error.message);
          if (kind === 'ambiguous') ambiguousMessages++;
          failures.push({ ms: r.ms, message: r.error.message, kind, at: Date.now() });
          pending.push(batch[k]); // the application retries it
        });
        await sleep(failed ? 50 : 5);
      }
    })();

    await waitFor(() => accepted >= 5000, '5 000 emits accepted', 20_000);
    const handledAtStop = handled;
    const stopStart = Date.now();
    await nsqd.stop('SIGTERM');
    const downFor = { stop: Date.now() - stopStart };
    await sleep(1000);
    await nsqd.start();
    restartedAt = Date.now();
    const persisted = await api.channelStats(topic, 'work');

    await emitter;
    await waitFor(() => counts.every((c) => c > 0), 'every message handled', 60_000);
    await waitFor(async () => {
      const ch = await api.channelStats(topic, 'work');
      return ch?.depth === 0 && ch.in_flight_count === 0;
    }, 'nothing left at nsqd');
    await sleep(300); // a late redelivery would show here
    const total = counts.reduce((s, c) => s + c, 0);
    const duplicates = total - N;
    const down = failures.filter((f) => f.kind === 'down');
    const reconnectMs = (connectedAt.find((t) => t >= restartedAt) ?? NaN) - restartedAt;

    figure('nsqd SIGTERM + restart', {
      published: N,
      handledDistinct: counts.filter((c) => c > 0).length,
      handledTotal: total,
      duplicates,
      handledBeforeStop: handledAtStop,
      persistedAtRestart: (persisted?.depth ?? 0) + (persisted?.in_flight_count ?? 0),
      sigtermStopMs: downFor.stop,
      emitsRejectedWhileDown: down.length,
      slowestRejectMs: Math.round(Math.max(...down.map((f) => f.ms))),
      ambiguousEmits: ambiguousMessages,
      acceptedAfterRestart,
      consumerReconnectMs: reconnectMs,
      sampleError: down[0]?.message,
    });

    // Every message handled at least once; duplicates only from what was in flight at nsqd
    // (flushed to disk by SIGTERM, redelivered) or emits whose acknowledgement was lost.
    expect(counts.every((c) => c >= 1)).toBe(true);
    expect(duplicates).toBeGreaterThanOrEqual(0);
    expect(duplicates).toBeLessThanOrEqual(maxInFlight + ambiguousMessages);
    // Emits while nsqd was down failed fast, with an error naming the address and the cause.
    expect(down.length).toBeGreaterThan(0);
    expect(Math.max(...down.map((f) => f.ms))).toBeLessThan(1000);
    for (const f of down) expect(f.message).toContain(nsqd.tcpAddress);
    // ... and succeeded after, through the same client object.
    expect(acceptedAfterRestart).toBeGreaterThan(0);
    expect(get()).toBe(client);
    expect(server.unwrap()).toHaveLength(1);
    expect(disconnectedAt.length).toBeGreaterThanOrEqual(1);
    expect(reconnectMs).toBeLessThan(3000);

    await close();
    await app.close();
  }, 120_000);
});

describe('nsqd SIGKILL', () => {
  /**
   * Publishes `published` messages to a slow consumer (10 in flight, 20 ms each), kills nsqd
   * `waitBeforeKill` ms later (20 deferred messages, DPUB 2 s, published just before), starts
   * it again and reports what came back.
   */
  async function killScenario(args: string[], published: number, waitBeforeKill: number) {
    const nsqd = await NsqdProcess.start({ args });
    const topic = uniqueName('sigkill');
    const counts = new Uint16Array(published + 1100);
    let handled = 0;

    @Controller()
    class Work {
      @EventPattern<string>(`${topic}/work`)
      async handle(@Payload() i: number, @Ctx() _ctx: NsqContext) {
        counts[i]++;
        handled++;
        await sleep(20);
      }
    }
    const maxInFlight = 10;
    const { app, server } = await startServer([Work], {
      nsqd: [nsqd.tcpAddress],
      maxInFlight,
      requeueDelay: 0,
      backoff: false,
      maxReconnectDelay: 500,
    });
    const connectedAt: number[] = [];
    server.on('connected', () => connectedAt.push(Date.now()));
    const { client, close } = await startClient({ nsqd: [nsqd.tcpAddress] });

    await Promise.all(Array.from({ length: published }, (_, i) => emit(client, topic, i)));
    await sleep(waitBeforeKill);
    const deferred = Array.from({ length: 20 }, (_, k) => published + 1050 + k);
    await Promise.all(
      deferred.map((i) => emit(client, topic, new NsqRecordBuilder(i).setDelay(2000).build())),
    );
    const deferredAt = Date.now();
    await nsqd.stop('SIGKILL');
    // Handlers already running finish (20 ms); their messages count as handled before the kill.
    await sleep(300);
    const before = Uint16Array.from(counts);
    const handledBeforeKill = before.slice(0, published).filter((c) => c > 0).length;
    await sleep(200);
    await nsqd.start();
    const restartedAt = Date.now();
    await waitFor(() => connectedAt.some((t) => t >= restartedAt), 'the consumer reconnects', 5000);
    const reconnectMs = connectedAt.find((t) => t >= restartedAt)! - restartedAt;

    // Whatever nsqd still had comes back; then the transport goes on with new messages.
    const api = new NsqdApi(nsqd.httpUrl);
    await waitFor(
      async () => {
        const ch = await api.channelStats(topic, 'work');
        return !ch || (ch.depth === 0 && ch.in_flight_count === 0);
      },
      'what nsqd kept to be consumed',
      30_000,
    );
    await sleep(200);
    const later = Array.from({ length: 1000 }, (_, k) => published + k);
    const emitAfter = await timed(() => Promise.all(later.map((i) => emit(client, topic, i))));
    await waitFor(() => later.every((i) => counts[i] > 0), '1 000 later messages', 30_000);
    await sleep(deferredAt + 3000 - Date.now()); // the deferred ones were due 1 s ago

    let recovered = 0;
    let duplicates = 0;
    let lost = 0;
    for (let i = 0; i < published; i++) {
      const after = counts[i] - before[i];
      if (after > 0) recovered++;
      if (counts[i] > 1) duplicates += counts[i] - 1;
      if (counts[i] === 0) lost++;
    }
    const laterHandledOnce = later.filter((i) => counts[i] === 1).length;
    await close();
    await app.close();
    return {
      published,
      handledBeforeKill,
      recoveredAfterRestart: recovered,
      lostByNsqd: lost,
      duplicates,
      reconnectMs,
      emitAfterRestartError: emitAfter.error?.message,
      laterPublished: later.length,
      laterHandledOnce,
      deferredPublished: deferred.length,
      deferredDelivered: deferred.filter((i) => counts[i] > 0).length,
      handled,
      maxInFlight,
    };
  }

  it('default nsqd (in-memory queue): messages in memory are lost; the transport reconnects and goes on', async () => {
    const r = await killScenario([], 2000, 1000);
    figure('nsqd SIGKILL, --mem-queue-size=10000 (default)', r);
    // nsqd kept no message in memory across the kill: all not yet handled are gone.
    expect(r.handledBeforeKill).toBeGreaterThan(0);
    expect(r.handledBeforeKill).toBeLessThan(r.published);
    expect(r.recoveredAfterRestart).toBe(0);
    expect(r.lostByNsqd).toBe(r.published - r.handledBeforeKill);
    // Deferred messages (DPUB, and REQ with a delay) live in nsqd's memory only.
    expect(r.deferredDelivered).toBe(0);
    // The transport did not need anything new to go on.
    expect(r.reconnectMs).toBeLessThan(3000);
    expect(r.emitAfterRestartError).toBeUndefined();
    expect(r.laterHandledOnce).toBe(r.laterPublished);
  }, 60_000);

  it('--mem-queue-size=0 (disk queue): only messages in flight at the kill can be lost', async () => {
    // 2.5 s before the kill: past nsqd's --sync-timeout (2 s), so the queue's files are synced.
    const r = await killScenario(['--mem-queue-size=0'], 2000, 2500);
    figure('nsqd SIGKILL, --mem-queue-size=0', r);
    expect(r.handledBeforeKill).toBeGreaterThan(0);
    expect(r.recoveredAfterRestart).toBeGreaterThan(0);
    // In flight (at most maxInFlight) plus the one nsqd's pump holds can be lost; nothing queued.
    expect(r.lostByNsqd).toBeLessThanOrEqual(r.maxInFlight + 2);
    // (Deferred messages are not asserted here: nsqd keeps them in memory once they reach the
    // channel, but with --mem-queue-size=0 may have written them to the topic's disk queue,
    // where they survive and lose their delay; the figure reports how many.)
    expect(r.reconnectMs).toBeLessThan(3000);
    expect(r.emitAfterRestartError).toBeUndefined();
    expect(r.laterHandledOnce).toBe(r.laterPublished);
  }, 60_000);
});
