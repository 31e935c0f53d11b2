// Fault suite: a soak of 200 000 messages with 10 % handler failures through a real Nest app:
// every message accounted for, and the heap back where it was.
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { NsqContext, parseDeadLetter, type ClientNsq } from '../../lib/index.js';
import { NsqdApi, NsqdProcess, stopAll, uniqueName, waitFor } from '../harness/nsq.js';
import { emit, figure, heapAfterGc, round, startClient, startServer } from './helpers.js';

afterAll(stopAll);

describe('soak', () => {
  it('200 000 messages, 10 % failing: ok + dead-lettered = published, heap back to baseline', async () => {
    // Everything in nsqd's memory queue: the soak is about this process, not nsqd's disk.
    const nsqd = await NsqdProcess.start({ args: ['--mem-queue-size=250000'] });
    const api = new NsqdApi(nsqd.httpUrl);
    const T = uniqueName('soak');
    const WARMUP = 10_000;
    const N = 200_000;
    const TOTAL = WARMUP + N;
    const maxAttempts = 3;
    // Counters allocated before the baseline: they are not growth.
    const ok = new Uint8Array(TOTAL);
    const dead = new Uint8Array(TOTAL);
    const stats = { calls: 0, failures: 0 };
    // Every 10th message fails its first attempt (requeued, then handled); every 10 000th always
    // fails (dead-lettered after maxAttempts).
    const poison = (i: number) => i % 10_000 === 0;

    @Controller()
    class Soak {
      @EventPattern<string>(`${T}/c`, {
        maxAttempts,
        requeueDelay: 0,
        backoff: false,
        deadLetterTopic: `${T}.dead`,
      })
      handle(@Payload() i: number, @Ctx() ctx: NsqContext) {
        stats.calls++;
        if (poison(i) || (i % 10 === 0 && ctx.getMessage().attempts === 1)) {
          stats.failures++;
          throw new Error(`message ${i} fails`);
        }
        ok[i]++;
      }

      @EventPattern<string>(`${T}.dead/inspect`, { raw: true })
      inspect(@Payload() raw: Buffer) {
        dead[Number(parseDeadLetter(raw)!.body.toString())]++;
      }
    }
    const { app, consumers } = await startServer([Soak], {
      nsqd: [nsqd.tcpAddress],
      maxInFlight: 200,
    });
    const { client, close } = await startClient({ nsqd: [nsqd.tcpAddress] });

    const accounted = (from: number, to: number) => {
      for (let i = from; i < to; i++) if (ok[i] === 0 && dead[i] === 0) return false;
      return true;
    };
    async function publish(c: ClientNsq, from: number, to: number) {
      for (let start = from; start < to; start += 1000) {
        const chunk: Promise<void>[] = [];
        for (let i = start; i < Math.min(to, start + 1000); i++) chunk.push(emit(c, T, i));
        await Promise.all(chunk);
      }
    }
    const settled = () =>
      waitFor(async () => {
        const [ch, dl] = await Promise.all([
          api.channelStats(T, 'c'),
          api.channelStats(`${T}.dead`, 'inspect'),
        ]);
        return (
          ch?.depth === 0 &&
          ch.in_flight_count === 0 &&
          ch.deferred_count === 0 &&
          dl?.depth === 0 &&
          dl.in_flight_count === 0
        );
      }, 'nsqd to have nothing left');

    // Warm-up: JIT, Nest's handler pipeline, the dead-letter producer, pools all exist after it.
    await publish(client, 0, WARMUP);
    await waitFor(() => accounted(0, WARMUP), 'the warm-up', 60_000);
    await settled();
    const before = await heapAfterGc();
    const rssBefore = process.memoryUsage().rss / 2 ** 20;
    stats.calls = 0;
    stats.failures = 0;

    const started = Date.now();
    await publish(client, WARMUP, TOTAL);
    await waitFor(() => accounted(WARMUP, TOTAL), '200 000 messages accounted for', 120_000);
    await settled();
    const elapsed = Date.now() - started;
    const after = await heapAfterGc();
    const rssAfter = process.memoryUsage().rss / 2 ** 20;

    let handledOk = 0;
    let deadLettered = 0;
    let duplicates = 0;
    let both = 0;
    for (let i = WARMUP; i < TOTAL; i++) {
      if (ok[i]) handledOk++;
      if (dead[i]) deadLettered++;
      if (ok[i] && dead[i]) both++;
      if (ok[i] > 1) duplicates += ok[i] - 1;
      if (dead[i] > 1) duplicates += dead[i] - 1;
    }
    const ch = await api.channelStats(T, 'c');
    figure('soak', {
      published: N,
      handledOk,
      deadLettered,
      duplicates,
      handlerCalls: stats.calls,
      handlerFailures: stats.failures,
      failureRate: round(stats.failures / stats.calls, 3),
      nsqdRequeues: ch?.requeue_count,
      elapsedMs: elapsed,
      messagesPerSecond: Math.round(N / (elapsed / 1000)),
      heapBeforeMb: round(before),
      heapAfterMb: round(after),
      heapGrowthMb: round(after - before, 2),
      rssBeforeMb: round(rssBefore),
      rssAfterMb: round(rssAfter),
      consumersInFlight: consumers().map((c) => c.inFlight),
    });
    expect(handledOk + deadLettered).toBe(N);
    expect(both).toBe(0);
    expect(deadLettered).toBe(N / 10_000);
    expect(duplicates).toBe(0);
    expect(consumers().every((c) => c.inFlight === 0)).toBe(true);
    // A leak of even 10 bytes per message would be 2 MB here.
    expect(after - before).toBeLessThan(2);

    await close();
    await app.close();
  }, 150_000);
});
