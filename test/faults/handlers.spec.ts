// Fault suite: bad handlers and bad input through a real Nest app: a handler that always throws,
// an undecodable body from a non-Nest producer, bad emits, handlers slower than msg-timeout,
// and close() with handlers in flight.
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload, RpcException } from '@nestjs/microservices';
import { NsqContext, parseDeadLetter } from '../../lib/index.js';
import { NsqdApi, NsqdProcess, sharedNsq, stopAll, uniqueName, waitFor } from '../harness/nsq.js';
import {
  emit,
  figure,
  heapAfterGc,
  round,
  sleep,
  startClient,
  startServer,
  timed,
} from './helpers.js';

afterAll(stopAll);
const shared = sharedNsq();

// nsqd finds the timeouts of a channel created after it started only once it refreshes its
// channel list (every 5 s): the slow-handler case gets an nsqd started, and its channels
// created, when this file starts.
const SLOW = uniqueName('slow');
let slowNsqd: NsqdProcess;
let slowNsqdReadyAt = 0;
beforeAll(async () => {
  slowNsqd = await NsqdProcess.start({ args: ['--msg-timeout=1s'] });
  const api = new NsqdApi(slowNsqd.httpUrl);
  await api.createTopic(`${SLOW}-touch`, 'c');
  await api.createTopic(`${SLOW}-plain`, 'c');
  slowNsqdReadyAt = Date.now() + 5200;
});

describe('a handler that always throws', () => {
  it('is called exactly maxAttempts times per message, then the message is dead-lettered; no loop, no growth', async () => {
    const T = uniqueName('poison');
    const maxAttempts = 5;
    const rounds = 3;
    const perRound = 1000;
    const N = rounds * perRound;
    const calls = new Uint8Array(N);
    const attemptsSeen = new Set<number>();
    const dead = new Uint8Array(N);
    const badLetters: string[] = [];

    @Controller()
    class Poison {
      @EventPattern<string>(`${T}/c`, {
        maxAttempts,
        requeueDelay: 0,
        backoff: false,
        deadLetterTopic: `${T}.dead`,
      })
      handle(@Payload() data: { i: number }, @Ctx() ctx: NsqContext) {
        calls[data.i]++;
        attemptsSeen.add(ctx.getMessage().attempts);
        throw new RpcException(`cannot handle ${data.i}`);
      }

      @EventPattern<string>(`${T}.dead/inspect`, { raw: true })
      inspect(@Payload() raw: Buffer) {
        const letter = parseDeadLetter(raw)!;
        const i = (JSON.parse(letter.body.toString()) as { i: number }).i;
        dead[i]++;
        const expected = JSON.stringify({ i });
        if (
          letter.attempts !== maxAttempts ||
          letter.reason !== 'maxAttempts' ||
          letter.error !== `cannot handle ${i}` ||
          !letter.body.equals(Buffer.from(expected))
        )
          badLetters.push(JSON.stringify({ ...letter, body: letter.body.toString() }));
      }
    }
    const { app, consumers } = await startServer([Poison], { nsqd: [shared.nsqd] });
    const { client, close } = await startClient({ nsqd: [shared.nsqd] });

    const heap: number[] = [];
    const started = Date.now();
    for (let r = 0; r < rounds; r++) {
      const ids = Array.from({ length: perRound }, (_, k) => r * perRound + k);
      await Promise.all(ids.map((i) => emit(client, T, { i })));
      await waitFor(() => ids.every((i) => dead[i] === 1), `round ${r} dead-lettered`, 30_000);
      heap.push(await heapAfterGc());
    }
    const elapsed = Date.now() - started;
    await sleep(1000); // a loop would show as more calls here
    const ch = await shared.api.channelStats(T, 'c');
    const dlq = await shared.api.topicStats(`${T}.dead`);
    const inFlight = consumers().map((c) => c.inFlight);

    figure('handler always throws', {
      messages: N,
      maxAttempts,
      handlerCallsPerMessage: [...new Set(calls)],
      attemptsSeen: [...attemptsSeen].sort(),
      deadLetters: dead.reduce((s, x) => s + x, 0),
      nsqdRequeues: ch?.requeue_count,
      nsqdDepth: ch?.depth,
      nsqdInFlight: ch?.in_flight_count,
      dlqMessages: dlq?.message_count,
      heapAfterEachRoundMb: heap.map((h) => round(h)),
      heapGrowthAfterWarmupMb: round(heap.at(-1)! - heap[0], 2),
      elapsedMs: elapsed,
    });
    expect([...new Set(calls)]).toEqual([maxAttempts]);
    expect([...attemptsSeen].sort()).toEqual([1, 2, 3, 4, 5]);
    expect([...new Set(dead)]).toEqual([1]);
    expect(badLetters).toEqual([]);
    expect(ch).toMatchObject({
      message_count: N,
      requeue_count: N * (maxAttempts - 1),
      depth: 0,
      in_flight_count: 0,
      deferred_count: 0,
    });
    expect(dlq?.message_count).toBe(N);
    expect(inFlight.every((n) => n === 0)).toBe(true);
    // Rounds 2 and 3 (10 000 more failing deliveries) keep nothing: heap back to round 1's.
    expect(heap.at(-1)! - heap[0]).toBeLessThan(2);

    await close();
    await app.close();
  }, 90_000);
});

describe('an undecodable payload from a non-Nest producer', () => {
  it('is dead-lettered at once without calling the handler; the next message is handled', async () => {
    const T = uniqueName('garbage');
    const garbage = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28]);
    const handled: { data: unknown; at: number }[] = [];
    const letters: { letter: ReturnType<typeof parseDeadLetter>; at: number }[] = [];

    @Controller()
    class Events {
      @EventPattern<string>(`${T}/c`, { maxInFlight: 1, deadLetterTopic: `${T}.dead` })
      handle(@Payload() data: unknown) {
        handled.push({ data, at: Date.now() });
      }

      @EventPattern<string>(`${T}.dead/inspect`, { raw: true })
      inspect(@Payload() raw: Buffer) {
        letters.push({ letter: parseDeadLetter(raw), at: Date.now() });
      }
    }
    const { app } = await startServer([Events], { nsqd: [shared.nsqd] });
    const publishedAt = Date.now();
    await shared.api.publish(T, garbage); // nsqd's HTTP /pub: no Nest, no client of ours
    for (let i = 0; i < 100; i++) await shared.api.publish(T, JSON.stringify({ next: i }));
    await waitFor(() => letters.length === 1 && handled.length === 100, 'letter and 100 more');
    await sleep(300);
    const ch = await shared.api.channelStats(T, 'c');

    figure('undecodable payload', {
      deadLetteredAfterMs: letters[0].at - publishedAt,
      deadLetterAttempts: letters[0].letter?.attempts,
      reason: letters[0].letter?.reason,
      handlerCallsForIt: handled.filter((h) => typeof h.data !== 'object').length,
      nextHandledAfterMs: handled[0].at - publishedAt,
      nextMessagesHandled: handled.length,
      nsqdRequeues: ch?.requeue_count,
      error: letters[0].letter?.error,
    });
    expect(letters).toHaveLength(1);
    expect(letters[0].letter).toMatchObject({ attempts: 1, reason: 'undecodable', channel: 'c' });
    expect(letters[0].letter!.body.equals(garbage)).toBe(true);
    expect(handled.map((h) => h.data)).toEqual(
      Array.from({ length: 100 }, (_, i) => ({ next: i })),
    );
    expect(ch).toMatchObject({
      requeue_count: 0,
      depth: 0,
      in_flight_count: 0,
      message_count: 101,
    });
    expect(letters[0].at - publishedAt).toBeLessThan(1000);
    await app.close();
  });
});

describe('bad emits beside good ones', () => {
  let nsqd: NsqdProcess;
  let api: NsqdApi;
  beforeAll(async () => {
    nsqd = await NsqdProcess.start({ args: ['--max-msg-size=65536'] });
    api = new NsqdApi(nsqd.httpUrl);
  });

  // Two clients: one told nsqd's limit (checks before sending), one not (nsqd itself refuses).
  it.each([
    ['told nsqd --max-msg-size', { maxMessageSize: 65536 }],
    ['not told nsqd --max-msg-size', {}],
  ])('a bad topic, an oversized and an empty body reject alone (client %s)', async (_, extra) => {
    const { client, close } = await startClient({ nsqd: [nsqd.tcpAddress], ...extra });
    let disconnects = 0;
    client.on('disconnected', () => disconnects++);
    const topic = uniqueName('bad');
    // All in one tick: the good ones share an MPUB with whatever is valid.
    const good = Array.from({ length: 50 }, (_, i) => timed(() => emit(client, topic, { i })));
    const badTopic = timed(() => emit(client, 'no spaces allowed!', { i: -1 }));
    const oversized = timed(() => emit(client, topic, 'x'.repeat(70_000)));
    const empty = timed(() => emit(client, topic, Buffer.alloc(0)));
    const after = [...good, badTopic, oversized, empty];
    const results = await Promise.all(after);
    const later = await timed(() => emit(client, topic, { later: true }));
    // Again, now that the client knows nsqd's limit either way: refused here, connection kept.
    const again = await Promise.all([
      timed(() => emit(client, topic, 'y'.repeat(70_000))),
      ...Array.from({ length: 10 }, (_, i) => timed(() => emit(client, topic, { again: i }))),
    ]);
    const stats = await api.topicStats(topic);

    const [bt, ov, em] = results.slice(50);
    figure(`bad emits (client ${_})`, {
      goodAccepted: results.slice(0, 50).filter((r) => !r.error).length,
      badTopic: bt.error?.message,
      oversized: ov.error?.message,
      empty: em.error?.message,
      laterEmit: later.error?.message ?? 'ok',
      secondOversized: again[0].error?.message,
      goodBesideSecond: again.slice(1).filter((r) => !r.error).length,
      nsqdMessages: stats?.message_count,
      connectionsLost: disconnects,
    });
    expect(results.slice(0, 50).map((r) => r.error?.message)).toEqual(
      new Array(50).fill(undefined),
    );
    expect(bt.error?.message).toMatch(/topic name "no spaces allowed!"/);
    expect(ov.error?.message).toMatch(
      /70000 bytes, over (maxMessageSize|nsqd's --max-msg-size) 65536/,
    );
    expect(em.error?.message).toMatch(/is empty/);
    expect(later.error).toBeUndefined();
    expect(again[0].error?.message).toMatch(/70000 bytes, over .*65536.*nothing was sent/);
    expect(again.slice(1).every((r) => !r.error)).toBe(true);
    expect(stats?.message_count).toBe(61);
    // Told: nothing oversized ever reached nsqd. Not told: nsqd's one refusal cost one connection.
    expect(disconnects).toBe('maxMessageSize' in extra ? 0 : 1);
    await close();
  });
});

describe('a handler slower than msg-timeout', () => {
  it('with touch(): no redelivery; without: nsqd redelivers, visible in attempts', async () => {
    const nsqd = slowNsqd;
    const api = new NsqdApi(nsqd.httpUrl);
    const T = SLOW;
    await sleep(slowNsqdReadyAt - Date.now());
    const touched: number[] = [];
    const untouched: number[] = [];
    let touches = 0;

    @Controller()
    class Slow {
      @EventPattern<string>(`${T}-touch/c`, { requeueDelay: 0, backoff: false })
      async withTouch(@Payload() _i: number, @Ctx() ctx: NsqContext) {
        touched.push(ctx.getMessage().attempts);
        const end = Date.now() + 2500; // 2.5 x msg-timeout
        while (Date.now() < end) {
          await sleep(300);
          ctx.touch();
          touches++;
        }
      }

      @EventPattern<string>(`${T}-plain/c`, { requeueDelay: 0, backoff: false })
      async withoutTouch(@Payload() _i: number, @Ctx() ctx: NsqContext) {
        untouched.push(ctx.getMessage().attempts);
        if (ctx.getMessage().attempts === 1) await sleep(1600);
      }
    }
    const disconnects: string[] = [];
    const { app } = await startServer(
      [Slow],
      { nsqd: [nsqd.tcpAddress], maxInFlight: 10 },
      (server) => server.on('disconnected', (a, p) => disconnects.push(`${p} ${a}`)),
    );
    const { client, close } = await startClient({ nsqd: [nsqd.tcpAddress] });
    await Promise.all(
      [0, 1, 2, 3, 4].flatMap((i) => [
        emit(client, `${T}-touch`, i),
        emit(client, `${T}-plain`, i),
      ]),
    );
    await waitFor(
      () => touched.length === 5 && untouched.length === 10,
      'deliveries',
      10_000,
    ).catch(async (e) => {
      console.log(
        touched,
        untouched,
        JSON.stringify((await api.stats()).topics.map((t) => t.channels)),
      );
      throw e;
    });
    const settled = async (topic: string) =>
      waitFor(
        async () => {
          const ch = await api.channelStats(topic, 'c');
          return ch?.depth === 0 && ch.in_flight_count === 0 && ch.deferred_count === 0;
        },
        `${topic} settled`,
        10_000,
      );
    await Promise.all([settled(`${T}-touch`), settled(`${T}-plain`)]);
    await sleep(1200); // past another msg-timeout: nothing more comes
    const withTouch = await api.channelStats(`${T}-touch`, 'c');
    const without = await api.channelStats(`${T}-plain`, 'c');

    figure('handler slower than msg-timeout (1 s)', {
      handlerMs: { withTouch: 2500, withoutTouch: 1600 },
      withTouch: {
        deliveries: touched.length,
        attempts: touched,
        touches,
        redelivered: touched.length - 5,
        nsqdTimeouts: withTouch?.timeout_count,
      },
      withoutTouch: {
        deliveries: untouched.length,
        attempts: untouched,
        redelivered: untouched.length - 5,
        nsqdTimeouts: without?.timeout_count,
      },
      disconnects: disconnects.length,
    });
    expect(touched).toEqual([1, 1, 1, 1, 1]);
    expect(withTouch).toMatchObject({ timeout_count: 0, requeue_count: 0, message_count: 5 });
    expect(untouched.sort()).toEqual([1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    expect(without).toMatchObject({ timeout_count: 5, message_count: 5 });
    // The late FIN of the first delivery is a non-fatal E_FIN_FAILED: the connection stays.
    expect(disconnects).toEqual([]);
    await close();
    await app.close();
  }, 30_000);
});

describe('close() with handlers in flight', () => {
  it('waits for 20 handlers, leaves nothing in flight at nsqd, loses nothing', async () => {
    const nsqd = await NsqdProcess.start(); // default --msg-timeout=60s: no waiting it out
    const api = new NsqdApi(nsqd.httpUrl);
    const T = uniqueName('close');
    const published = 1000;
    const counts = new Uint8Array(published);
    let started = 0;
    let finished = 0;

    @Controller()
    class Slow {
      @EventPattern<string>(`${T}/c`)
      async handle(@Payload() i: number) {
        started++;
        await sleep(300);
        counts[i]++;
        finished++;
      }
    }
    const { client, close } = await startClient({ nsqd: [nsqd.tcpAddress] });
    await Promise.all(Array.from({ length: published }, (_, i) => emit(client, T, i)));
    const first = await startServer([Slow], { nsqd: [nsqd.tcpAddress], maxInFlight: 20 });
    await waitFor(() => started === 20, '20 handlers in flight');
    const closing = await timed(() => first.app.close());
    const atClose = { started, finished };
    const ch = await api.channelStats(T, 'c'); // at once: no msg-timeout to wait for

    // A second app takes the rest: finished + queued = published, nothing twice.
    const second = await startServer([Slow], { nsqd: [nsqd.tcpAddress], maxInFlight: 200 });
    await waitFor(() => finished === published, 'the rest by a second app', 20_000);
    await second.app.close();
    const duplicates = counts.reduce((s, x) => s + x, 0) - counts.filter((x) => x > 0).length;

    figure('close() with 20 handlers in flight', {
      published,
      inFlightAtClose: 20,
      closeTookMs: Math.round(closing.ms),
      finishedByClose: atClose.finished,
      nsqdInFlightAfterClose: ch?.in_flight_count,
      nsqdQueuedAfterClose: ch?.depth,
      nsqdRequeuesAfterClose: ch?.requeue_count,
      handledBySecondApp: published - atClose.finished,
      duplicates,
    });
    expect(atClose).toEqual({ started: 20, finished: 20 });
    expect(ch).toMatchObject({ in_flight_count: 0, depth: published - 20, timeout_count: 0 });
    expect(closing.ms).toBeLessThan(2000);
    expect(counts.every((x) => x === 1)).toBe(true);
    await close();
  }, 60_000);
});
