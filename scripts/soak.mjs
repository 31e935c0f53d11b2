#!/usr/bin/env node
// Chaos soak of the NSQ client core (Consumer, Producer from dist/) against real NSQ processes:
// 1 nsqlookupd + 2 nsqd (disk queue only), a producer over both nsqd at about 1 000 msg/s, two
// consumers sharing one channel (5 % of first attempts fail), and a fault every ~12 s: SIGKILL +
// restart, SIGTERM + restart, SIGSTOP for 5 s, lookupd restart. Runs twice: backoff off, then on.
// Reports per phase what was published, lost, duplicated, how long each fault interrupted
// handling, stalls, heap growth and whether everything drained; exits 1 on a message lost by the
// transport, a stall window or no drain (messages lost inside nsqd at a SIGKILL are reported).
//
//   npx tsc -p tsconfig.build.json && node scripts/soak.mjs [--minutes N] [--quick]
//
// nsqd runs with --sync-every=1, so its disk queue positions are on disk after every message and a
// SIGKILL cannot rewind them. That is 2 fsyncs per queue operation: on an ordinary disk nsqd then
// takes only ~600 msg/s, below the soak's rate, and the soak would measure an overloaded nsqd
// (publish timeouts) instead of faults. So the data dirs go to /dev/shm when it exists (--data-dir
// to choose): a killed process loses nothing more on disk than on tmpfs, since what it wrote is in
// the kernel either way; only a machine crash, which the soak does not simulate, would differ.
//
// Definitions (the numbers printed follow these exactly):
// - published: publish() resolved (nsqd acknowledged). failed: publish() rejected, by err.code.
// - handled: the handler resolved for that body (a failed attempt is not a handling).
// - lost: acknowledged and never handled by the end, split into two kinds:
//   (a) lost inside nsqd at a SIGKILL, only with evidence that it was inside the nsqd process
//       that a SIGKILL took: its nsqd is known (a message lives in one nsqd: the one the
//       producer's connection was on, unchanged from publish() to the acknowledgement, or the
//       one a delivery came from); that nsqd's first restart whose new process was up only
//       after the last sign of the message (its acknowledgement, or the arrival of its last
//       delivery, whose handling failed, so it was REQ'd) was a SIGKILL; and it was in flight
//       there at the kill: if it was delivered, its last delivery arrived at most 1 s before
//       the kill (with requeueDelay 0 and --mem-queue-size=0, a REQ that nsqd processed puts
//       it back on disk, which a SIGKILL does not lose); if not, no message behind it in that nsqd's queue (published to it later)
//       reached a consumer earlier than 1 s before the kill (nsqd sends what it takes from the
//       queue within its output buffer timeout, 25 ms by default). Printed per SIGKILL with its
//       count and the times of acknowledgement (and last delivery) relative to the kill.
//   (b) lost by the transport: every other lost message (nsqd unknown, the next restart of its
//       nsqd a SIGTERM, which persists in-flight and deferred messages, or none, or last seen
//       long before the kill...), each with the reason it is not (a).
// - duplicate: handled more than once. Cause: the latest fault of the first handling's nsqd
//   that began before the second handling and ended at most 1 s before the first one (so its
//   FIN may not have made it), else a lookupd restart in that span, else "no fault" (a
//   transport or msg-timeout matter, to judge); "handled from both nsqd" if the handlings came
//   from different nsqd (published twice).
// - recovery: from the fault to the first handling of a message published after the fault.
//   max gap: the longest time without any handling between this fault and the next.
// - stall window: a 5 s window (sliding by 1 s) with no handling at all while some acknowledged
//   message that was handled later had been waiting since the window's start. Windows touching
//   an excused second do not count: a second within a SIGSTOP (to 1 s after SIGCONT) in which the
//   nsqd that was not stopped reported nothing to deliver (depth, in-flight and deferred all 0),
//   i.e. the only nsqd holding messages was the stopped one. Lost messages are not stalls (they
//   are counted as lost).
// - heap slope: heapUsed after global.gc(), sampled every 10 s from t = 10 s to the end of
//   publishing, least squares, MB per minute (the first 10 s are warm-up).
// - nsqd v1.3.0 keeps in-flight and deferred messages only in memory, including those still in
//   its output buffer for a client (consumer default: up to 4 KiB or 25 ms), while with
//   --sync-every=1 its disk read position is already persisted: a SIGKILL of the nsqd the
//   producer is on loses those, typically a few dozen, which never reach the client. Those
//   are (a) above; --unbuffered shrinks that window.
// - drained: within 60 s of the end of publishing, topic and channel depth, in-flight and deferred
//   are 0 on both nsqd and both consumers' inFlight is 0, twice in a row 0.5 s apart.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureNsqBinaries } from './nsq-install.mjs';
import { LookupdProcess, NsqdProcess, reapLeftovers, stopAll } from './nsq-servers.mjs';

const HELP = `Usage: node scripts/soak.mjs [--minutes N] [--quick] [--data-dir DIR] [--unbuffered]

  --minutes N     total run time of both phases' publishing, default 3 (each phase half)
  --quick         about 40 s: 20 s per phase, a fault every 3.5 s instead of 12 s
  --data-dir DIR  where nsqd's data dirs go, default /dev/shm if present, else the OS temp dir
  --unbuffered    consumers ask nsqd for no output buffering (outputBufferSize and
                  outputBufferTimeout -1): what nsqd buffers for a client is in-flight in its
                  memory only, so a SIGKILL loses it; this shrinks that window to almost nothing
  --help

Build first: npx tsc -p tsconfig.build.json`;

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      minutes: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'data-dir': { type: 'string' },
      unbuffered: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (err) {
  console.error(`soak: ${err.message}\n\n${HELP}`);
  process.exit(2);
}
if (opts.help) {
  console.log(HELP);
  process.exit(0);
}

/** pids currently SIGSTOPped by a fault, to SIGCONT on an early exit. */
const frozen = new Set();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const FAULT_KINDS = ['SIGKILL+restart', 'SIGTERM+restart', 'SIGSTOP 5s', 'lookupd restart'];

async function main() {
  const minutes = opts.quick ? 40 / 60 : Number(opts.minutes ?? 3);
  if (!(minutes > 0)) {
    console.error(`soak: --minutes must be a positive number, got ${opts.minutes}`);
    process.exit(2);
  }
  const distIndex = new URL('../dist/index.js', import.meta.url);
  if (!existsSync(distIndex)) {
    console.error('soak: dist/index.js is missing; run `npx tsc -p tsconfig.build.json` first');
    process.exit(2);
  }
  const { Consumer, Producer } = await import(distIndex.href);

  // NsqdProcess makes its data dir with os.tmpdir(), which follows TMPDIR.
  const dataDir = opts['data-dir'] ?? (existsSync('/dev/shm') ? '/dev/shm' : undefined);
  if (dataDir) process.env.TMPDIR = dataDir;
  ensureNsqBinaries({ quiet: true });
  const reaped = reapLeftovers();
  if (reaped) console.log(`soak: killed ${reaped} NSQ process(es) left by an earlier crashed run`);

  const config = {
    phaseMs: Math.round((minutes * 60_000) / 2),
    faultEveryMs: opts.quick ? 3_500 : 12_000,
    rate: 1000, // messages per second
    tickMs: 20,
    failRate: 0.05, // of first attempts
    stopMs: 5_000, // SIGSTOP length
    drainMs: 60_000,
    nsqdArgs: ['--mem-queue-size=0', '--sync-every=1'],
    unbuffered: opts.unbuffered,
  };

  let cleaningUp = false;
  const cleanup = async () => {
    if (cleaningUp) return;
    cleaningUp = true;
    for (const pid of frozen) {
      try {
        process.kill(pid, 'SIGCONT'); // a stopped nsqd would ignore SIGTERM
      } catch {
        // gone
      }
    }
    await stopAll();
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      console.error(`\nsoak: ${sig}, stopping NSQ processes`);
      cleanup().finally(() => process.exit(130));
    });
  }
  // A hung phase must not leave NSQ running: everything is bounded, this is the last resort.
  const watchdog = setTimeout(
    () => {
      console.error('soak: watchdog: the run took far longer than planned, giving up');
      cleanup().finally(() => process.exit(1));
    },
    2 * (config.phaseMs + 3 * config.drainMs),
  );
  watchdog.unref();

  console.log(
    `soak: 2 phases x ${(config.phaseMs / 1000).toFixed(0)} s, ${config.rate} msg/s, ` +
      `a fault every ${config.faultEveryMs / 1000} s, nsqd ${config.nsqdArgs.join(' ')}, ` +
      `data in ${tmpdir()}${config.unbuffered ? ', consumers unbuffered' : ''}`,
  );
  const phases = [];
  const faultCursor = { kind: 0, nsqd: 0 }; // round-robin carries over from phase to phase
  try {
    phases.push(await runPhase('backoff off', false, config, faultCursor, { Consumer, Producer }));
    phases.push(
      await runPhase('backoff on', { multiplier: 200 }, config, faultCursor, {
        Consumer,
        Producer,
      }),
    );
  } catch (err) {
    console.error('soak: failed:', err);
    await cleanup();
    process.exit(1);
  }
  await cleanup();
  clearTimeout(watchdog);
  report(phases, config);
  const pass = phases.every(
    (p) => p.lostByTransport === 0 && p.stallWindows.length === 0 && p.drained,
  );
  console.log(
    pass ? '\nsoak: PASS' : '\nsoak: FAIL (lost by the transport, stall windows or not drained)',
  );
  process.exit(pass ? 0 : 1);
}

async function runPhase(name, backoff, config, cursor, { Consumer, Producer }) {
  const topic = 'soak';
  const channel = 'soak';
  console.log(`\n=== phase "${name}" (backoff ${JSON.stringify(backoff)}) ===`);

  // Fresh processes and data dirs per phase, so one phase's leftovers cannot blur the other's.
  const lookupd = await LookupdProcess.start();
  const nsqds = [
    await NsqdProcess.start({ lookupd, args: config.nsqdArgs }),
    await NsqdProcess.start({ lookupd, args: config.nsqdArgs }),
  ];
  // Topic and channel on both nsqd before anything runs: lookupd lists both from the start and
  // nothing published before the consumers subscribe sits in a channel-less topic.
  for (const n of nsqds) {
    for (const path of [
      `topic/create?topic=${topic}`,
      `channel/create?topic=${topic}&channel=${channel}`,
    ]) {
      const res = await fetch(`${n.httpUrl}/${path}`, { method: 'POST' });
      if (!res.ok) throw new Error(`${path} on ${n.tcpAddress}: ${res.status}`);
    }
  }
  await waitLookupdLists(lookupd, topic, 2, 10_000);

  // Per-message state in typed arrays: off the JS heap, so they do not blur the heap slope.
  const capacity = Math.ceil((config.rate * (config.phaseMs + 10_000)) / 1000);
  const pubState = new Uint8Array(capacity); // 0 unsettled, 1 acknowledged, 2 failed
  const ackAt = new Int32Array(capacity).fill(-1); // ms since phase start
  const okCount = new Uint8Array(capacity); // successful handlings (saturates at 255)
  const calls = new Uint8Array(capacity); // handler calls, failed ones included (saturates)
  const firstOkAt = new Int32Array(capacity).fill(-1);
  const secondOkAt = new Int32Array(capacity).fill(-1);
  // Where each message is: the nsqd index that acknowledged it (-1 unknown), the nsqd of its
  // last delivery and when that arrived, whether its handling failed, and first/second handler.
  const ackNsqd = new Int8Array(capacity).fill(-1);
  const lastNsqd = new Int8Array(capacity).fill(-1);
  const lastRecvAt = new Int32Array(capacity).fill(-1);
  const firstRecvAt = new Int32Array(capacity).fill(-1);
  const lastFailed = new Uint8Array(capacity);
  const firstOkNsqd = new Int8Array(capacity).fill(-1);
  const secondOkNsqd = new Int8Array(capacity).fill(-1);
  const maxSeconds = Math.ceil((config.phaseMs + config.drainMs * 2 + 60_000) / 1000);
  const okPerSecond = new Int32Array(maxSeconds);

  const stats = {
    issued: 0,
    acked: 0,
    failed: 0,
    failedByCode: {},
    unsettled: 0,
    handlerCalls: 0,
    injected: 0,
    handled: 0,
    perConsumer: [0, 0],
    foreign: 0,
    gaveUp: 0,
    consumerWarnings: {},
    consumerDisconnects: 0,
    producerWarnings: {},
    warningSamples: [],
  };
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  let lastOkAt = 0;
  const gaps = []; // [from, to] between consecutive handlings, when longer than 100 ms
  const faults = [];
  const openFaults = []; // waiting for their first post-fault handling

  const nsqdIndex = (address) => nsqds.findIndex((n) => n.tcpAddress === address);
  const makeHandler = (ci) => async (msg) => {
    stats.handlerCalls++;
    const seq = Number(msg.body.toString());
    const known = Number.isInteger(seq) && seq >= 0 && seq < capacity;
    if (known) {
      if (calls[seq] < 255) calls[seq]++;
      lastNsqd[seq] = nsqdIndex(msg.address);
      lastRecvAt[seq] = msg.receivedAt - t0;
      if (firstRecvAt[seq] < 0) firstRecvAt[seq] = lastRecvAt[seq];
      lastFailed[seq] = 0;
    }
    if (msg.attempts === 1 && Math.random() < config.failRate) {
      stats.injected++;
      if (known) lastFailed[seq] = 1;
      throw new Error('injected failure');
    }
    await sleep(1);
    const t = now();
    if (!Number.isInteger(seq) || seq < 0 || seq >= capacity) {
      stats.foreign++;
      return;
    }
    stats.handled++;
    stats.perConsumer[ci]++;
    if (okCount[seq] < 255) okCount[seq]++;
    if (firstOkAt[seq] < 0) {
      firstOkAt[seq] = t;
      firstOkNsqd[seq] = nsqdIndex(msg.address);
    } else if (secondOkAt[seq] < 0) {
      secondOkAt[seq] = t;
      secondOkNsqd[seq] = nsqdIndex(msg.address);
    }
    okPerSecond[Math.min(maxSeconds - 1, Math.floor(t / 1000))]++;
    if (t - lastOkAt > 100) gaps.push([lastOkAt, t]);
    lastOkAt = t;
    for (let i = openFaults.length - 1; i >= 0; i--) {
      const f = openFaults[i];
      if (seq >= f.seqAtFault) {
        f.recoveryMs = t - f.at;
        openFaults.splice(i, 1);
      }
    }
  };

  const consumers = [0, 1].map(
    (ci) =>
      new Consumer(topic, channel, makeHandler(ci), {
        lookupd: [lookupd.httpAddress],
        lookupdPollInterval: 1000,
        maxInFlight: 100,
        requeueDelay: 0,
        backoff,
        ...(config.unbuffered ? { outputBufferSize: -1, outputBufferTimeout: -1 } : {}),
      }),
  );
  for (const c of consumers) {
    c.on('warning', (e) => {
      bump(stats.consumerWarnings, e.code ?? e.name);
      if (stats.warningSamples.length < 5) stats.warningSamples.push(`consumer: ${e.message}`);
    });
    c.on('disconnected', () => stats.consumerDisconnects++);
    c.on('gaveUp', () => stats.gaveUp++);
  }
  await Promise.all(consumers.map((c) => c.start()));

  const producer = new Producer({ nsqd: nsqds.map((n) => n.tcpAddress), publishTimeout: 2000 });
  // Which nsqd acknowledges: the producer has one connection at a time. A publish whose
  // acknowledgement comes with no connect or disconnect since publish() was called came over the
  // connection that was up then.
  let producerEpoch = 0;
  let producerOn = -1;
  producer.on('connected', (address) => {
    producerEpoch++;
    producerOn = nsqdIndex(address);
  });
  producer.on('disconnected', () => {
    producerEpoch++;
    producerOn = -1;
  });
  producer.on('warning', (e) => {
    bump(stats.producerWarnings, e.code ?? e.name);
    if (stats.warningSamples.length < 5) stats.warningSamples.push(`producer: ${e.message}`);
  });
  await producer.connect();

  // --- publisher: paced by elapsed time, so a slow tick or an outage does not lower the rate.
  let publishing = true;
  let outstanding = 0;
  let faultIndex = -1; // failures are also counted against the fault they follow
  const publishTick = () => {
    if (!publishing) return;
    const due = Math.min(
      Math.floor((now() * config.rate) / 1000) - stats.issued,
      capacity - stats.issued,
      200,
    );
    if (due <= 0) return;
    const epoch = producerEpoch;
    const on = producerOn;
    for (let i = 0; i < due; i++) {
      const s = stats.issued++;
      outstanding++;
      producer.publish(topic, String(s)).then(
        () => {
          pubState[s] = 1;
          ackAt[s] = now();
          if (on >= 0 && producerEpoch === epoch) ackNsqd[s] = on;
          stats.acked++;
          outstanding--;
        },
        (err) => {
          pubState[s] = 2;
          stats.failed++;
          bump(stats.failedByCode, err?.code ?? err?.name ?? 'unknown');
          if (faultIndex >= 0) faults[faultIndex].pubFailures++;
          outstanding--;
        },
      );
    }
  };
  const publisher = setInterval(publishTick, config.tickMs);

  // --- samplers: nsqd stats every second (stall excuses, progress), heap every 10 s.
  const nsqdSamples = []; // { sec, held: [n | null, n | null] }
  const sampler = setInterval(async () => {
    const sec = Math.floor(now() / 1000);
    const held = await Promise.all(nsqds.map((n) => channelHeld(n, topic, channel)));
    nsqdSamples.push({ sec, held });
  }, 1000);
  const heap = [];
  const heapSampler = setInterval(() => {
    if (publishing) heap.push([now() / 60_000, heapMb()]);
  }, 10_000);
  const progress = setInterval(() => {
    const t = now() / 1000;
    console.log(
      `  t=${t.toFixed(0).padStart(3)}s issued=${stats.issued} acked=${stats.acked} ` +
        `failed=${stats.failed} handled=${stats.handled} in-flight=${consumers
          .map((c) => c.inFlight)
          .join('/')} heap=${heapMbNoGc().toFixed(1)}MB`,
    );
  }, 10_000);

  // --- faults: sequential, one per faultEveryMs, each over 3 s before publishing ends.
  const runFaults = async () => {
    for (let k = 1; ; k++) {
      const prevEnd = faults.length ? faults[faults.length - 1].endAt + 1000 : 0;
      const at = Math.max(k * config.faultEveryMs, prevEnd);
      const kind = FAULT_KINDS[cursor.kind % FAULT_KINDS.length];
      const lasts = kind === 'SIGSTOP 5s' ? config.stopMs : 0;
      if (at + lasts > config.phaseMs - 3000) return;
      await sleep(at - now());
      cursor.kind++;
      const target = kind === 'lookupd restart' ? -1 : cursor.nsqd++ % nsqds.length;
      const active = producer.connections().find((c) => c.connected)?.address;
      const f = {
        kind,
        target: target < 0 ? 'lookupd' : `nsqd${target}`,
        producerWasOnIt: target >= 0 && active === nsqds[target].tcpAddress,
        at: now(),
        endAt: 0,
        upAt: 0, // a restarted nsqd answers /ping
        seqAtFault: stats.issued,
        recoveryMs: null,
        maxGapMs: 0,
        pubFailures: 0,
      };
      faults.push(f);
      faultIndex = faults.length - 1;
      openFaults.push(f);
      try {
        if (kind === 'SIGKILL+restart' || kind === 'SIGTERM+restart') {
          await nsqds[target].restart(kind === 'SIGKILL+restart' ? 'SIGKILL' : 'SIGTERM');
          f.upAt = now();
        } else if (kind === 'SIGSTOP 5s') {
          const pid = nsqds[target].pid;
          process.kill(pid, 'SIGSTOP');
          frozen.add(pid);
          await sleep(config.stopMs);
          process.kill(pid, 'SIGCONT');
          frozen.delete(pid);
        } else await lookupd.restart('SIGTERM');
      } finally {
        f.endAt = now();
      }
      console.log(
        `  fault ${faults.length} at t=${(f.at / 1000).toFixed(1)}s: ${kind} ${f.target}` +
          `${f.producerWasOnIt ? ' (the producer was on it)' : ''}, done in ${f.endAt - f.at} ms`,
      );
    }
  };
  await Promise.all([runFaults(), sleep(config.phaseMs - now())]);

  // --- end: stop publishing, let every publish settle, then wait for nsqd and consumers to drain.
  publishing = false;
  clearInterval(publisher);
  clearInterval(heapSampler);
  heap.push([now() / 60_000, heapMb()]);
  const publishEnd = now();
  const settleBy = Date.now() + 15_000;
  while (outstanding > 0 && Date.now() < settleBy) await sleep(50);
  stats.unsettled = outstanding;

  const drainStart = Date.now();
  let drained = false;
  let lastView;
  let zeroInARow = 0;
  while (Date.now() - drainStart < config.drainMs) {
    lastView = await Promise.all(nsqds.map((n) => topicView(n, topic, channel)));
    const inFlight = consumers.map((c) => c.inFlight);
    const zero =
      lastView.every((v) => v && v.topicDepth + v.depth + v.inFlight + v.deferred === 0) &&
      inFlight.every((n) => n === 0);
    zeroInARow = zero ? zeroInARow + 1 : 0;
    if (zeroInARow >= 2) {
      drained = true;
      break;
    }
    await sleep(500);
  }
  const drainMs = Date.now() - drainStart;
  const endSec = Math.floor(now() / 1000);
  clearInterval(sampler);
  clearInterval(progress);
  const finalInFlight = consumers.map((c) => c.inFlight);

  await Promise.all(consumers.map((c) => c.close(5000)));
  await producer.close(5000);
  await stopAll();

  // --- accounting
  let handledDistinct = 0;
  let lost = 0;
  let duplicates = 0;
  let extraHandlings = 0;
  let failedButHandled = 0;
  const lostSeqs = [];
  const dupSeqs = [];
  for (let s = 0; s < stats.issued; s++) {
    if (okCount[s] > 0) handledDistinct++;
    if (okCount[s] > 1) {
      duplicates++;
      extraHandlings += okCount[s] - 1;
      dupSeqs.push(s);
    }
    if (pubState[s] === 1 && okCount[s] === 0) {
      lost++;
      lostSeqs.push(s);
    }
    if (pubState[s] === 2 && okCount[s] > 0) failedButHandled++;
  }

  const { inNsqd, byTransport } = attributeLoss({
    lostSeqs,
    issued: stats.issued,
    faults,
    pubState,
    ackAt,
    ackNsqd,
    lastNsqd,
    firstRecvAt,
    lastRecvAt,
    lastFailed,
    calls,
  });
  const dupCauses = {};
  for (const s of dupSeqs) {
    bump(
      dupCauses,
      duplicateCause(faults, firstOkNsqd[s], secondOkNsqd[s], firstOkAt[s], secondOkAt[s]),
    );
  }

  // Outage: the longest handling gap between a fault and the next one (or the end of publishing).
  faults.forEach((f, i) => {
    const until = i + 1 < faults.length ? faults[i + 1].at : publishEnd;
    for (const [a, b] of [...gaps, [lastOkAt, now()]]) {
      const from = Math.max(a, f.at);
      const to = Math.min(b, until);
      if (to > from) f.maxGapMs = Math.max(f.maxGapMs, to - from);
    }
  });

  const stallWindows = findStalls({
    seconds: endSec,
    okPerSecond,
    issued: stats.issued,
    pubState,
    ackAt,
    firstOkAt,
    faults,
    stopMs: config.stopMs,
    nsqdSamples,
  });

  return {
    name,
    backoff,
    published: stats.acked,
    issued: stats.issued,
    failedPublishes: stats.failed,
    failedByCode: stats.failedByCode,
    failedButHandled,
    unsettledPublishes: stats.unsettled,
    handledDistinct,
    lost,
    lostNeverDelivered: lostSeqs.filter((s) => calls[s] === 0).length,
    lostInNsqd: inNsqd.reduce((a, k) => a + k.count, 0),
    lostInNsqdPerKill: inNsqd,
    lostByTransport: byTransport.length,
    lostByTransportWhy: byTransport.reduce((o, x) => (bump(o, x.why), o), {}),
    lostByTransportRanges: ranges(
      byTransport.map((x) => x.seq),
      ackAt,
    ),
    duplicates,
    dupCauses,
    extraHandlings,
    dupRanges: ranges(dupSeqs, ackAt),
    handlerCalls: stats.handlerCalls,
    injectedFailures: stats.injected,
    perConsumer: stats.perConsumer,
    gaveUp: stats.gaveUp,
    foreign: stats.foreign,
    consumerDisconnects: stats.consumerDisconnects,
    consumerWarnings: stats.consumerWarnings,
    producerWarnings: stats.producerWarnings,
    warningSamples: stats.warningSamples,
    faults: faults.map(({ seqAtFault: _seq, ...f }) => f),
    stallWindows,
    heapSamples: heap.length,
    heapSeries: heap.map(([m, mb]) => [round(m * 60, 0), round(mb, 2)]),
    heapStartMb: round(heap[0]?.[1] ?? NaN, 1),
    heapEndMb: round(heap.at(-1)?.[1] ?? NaN, 1),
    heapSlopeMbPerMin: slope(heap.filter(([m]) => m >= 10 / 60 - 0.01)),
    drained,
    drainMs,
    finalNsqd: lastView,
    finalConsumerInFlight: finalInFlight,
  };
}

/**
 * Stall windows per the rule in the header. Returns merged episodes { fromS, toS } (a run of
 * overlapping 5 s windows is one episode).
 */
function findStalls({
  seconds,
  okPerSecond,
  issued,
  pubState,
  ackAt,
  firstOkAt,
  faults,
  stopMs,
  nsqdSamples,
}) {
  // waitingAt[s]: acknowledged messages, handled later, still unhandled at second s's start.
  const diff = new Int32Array(seconds + 2);
  for (let m = 0; m < issued; m++) {
    if (pubState[m] !== 1 || firstOkAt[m] < 0) continue;
    const from = Math.floor(ackAt[m] / 1000) + 1;
    const to = Math.floor(firstOkAt[m] / 1000);
    if (from <= to && from <= seconds) {
      diff[from]++;
      diff[Math.min(to, seconds) + 1]--;
    }
  }
  const waitingAt = new Int32Array(seconds + 1);
  for (let s = 0, acc = 0; s <= seconds; s++) waitingAt[s] = acc += diff[s];

  const excused = new Uint8Array(seconds + 1);
  for (const f of faults) {
    if (f.kind !== 'SIGSTOP 5s') continue;
    const stopped = Number(f.target.slice(4));
    const fromS = Math.floor(f.at / 1000);
    const toS = Math.floor((f.at + stopMs + 1000) / 1000);
    for (let s = fromS; s <= Math.min(toS, seconds); s++) {
      const others = nsqdSamples
        .filter((x) => x.sec === s)
        .flatMap((x) => x.held.filter((_, i) => i !== stopped));
      // Nothing to deliver elsewhere (or no answer at all): the stopped nsqd held everything.
      if (others.every((h) => h === null || h === 0)) excused[s] = 1;
    }
  }

  const episodes = [];
  for (let s = 0; s + 5 <= seconds; s++) {
    let ok = 0;
    let anyExcused = false;
    for (let k = s; k < s + 5; k++) {
      ok += okPerSecond[k];
      if (excused[k]) anyExcused = true;
    }
    if (ok > 0 || anyExcused || waitingAt[s] === 0) continue;
    const last = episodes.at(-1);
    if (last && s <= last.toS) last.toS = s + 5;
    else episodes.push({ fromS: s, toS: s + 5, waiting: waitingAt[s] });
  }
  return episodes;
}

/**
 * Splits lost messages per the rule in the header: (a) lost inside nsqd at a SIGKILL, returned
 * per SIGKILL with the acknowledgement (and last delivery) times relative to the kill, and (b)
 * lost by the transport, each with why it is not (a).
 */
function attributeLoss({
  lostSeqs,
  issued,
  faults,
  pubState,
  ackAt,
  ackNsqd,
  lastNsqd,
  firstRecvAt,
  lastRecvAt,
  lastFailed,
  calls,
}) {
  const nsqdOf = (s) => (ackNsqd[s] >= 0 ? ackNsqd[s] : calls[s] > 0 ? lastNsqd[s] : -1);
  // laterDelivered[s]: the earliest first delivery of a message published after s to the same
  // nsqd, i.e. behind s in that nsqd's queue (one producer, in order, FIFO disk queue).
  const laterDelivered = new Float64Array(issued);
  const earliest = [Infinity, Infinity];
  for (let s = issued - 1; s >= 0; s--) {
    const k = pubState[s] === 1 ? nsqdOf(s) : -1;
    laterDelivered[s] = k >= 0 ? earliest[k] : Infinity;
    if (k >= 0 && firstRecvAt[s] >= 0) earliest[k] = Math.min(earliest[k], firstRecvAt[s]);
  }
  const kills = faults
    .filter((f) => f.kind === 'SIGKILL+restart')
    .map((f) => ({
      atS: round(f.at / 1000, 1),
      target: f.target,
      producerWasOnIt: f.producerWasOnIt,
      count: 0,
      neverDelivered: 0,
      ackFromMs: null,
      ackToMs: null,
      lastDeliveryFromMs: null,
      lastDeliveryToMs: null,
      fault: f,
    }));
  const widen = (k, key, v) => {
    k[`${key}FromMs`] = k[`${key}FromMs`] === null ? v : Math.min(k[`${key}FromMs`], v);
    k[`${key}ToMs`] = k[`${key}ToMs`] === null ? v : Math.max(k[`${key}ToMs`], v);
  };
  const byTransport = [];
  for (const s of lostSeqs) {
    const acked = ackNsqd[s];
    const delivered = calls[s] > 0 ? lastNsqd[s] : -1;
    let why;
    if (acked >= 0 && delivered >= 0 && acked !== delivered)
      why = 'acked by one nsqd, delivered by the other';
    else if (calls[s] > 0 && !lastFailed[s]) why = 'last handling never finished';
    else if (acked < 0 && delivered < 0) why = 'nsqd unknown';
    else {
      const k = acked >= 0 ? acked : delivered;
      const lastSign = Math.max(ackAt[s], calls[s] > 0 ? lastRecvAt[s] : -1);
      // The first restart of that nsqd whose new process was up only after the last sign.
      const next = faults.find(
        (f) => f.target === `nsqd${k}` && f.kind.endsWith('+restart') && f.upAt > lastSign,
      );
      if (!next) why = 'no restart of its nsqd after it';
      else if (next.kind !== 'SIGKILL+restart') why = `its nsqd's next restart was ${next.kind}`;
      else if (calls[s] > 0 && lastRecvAt[s] < next.at - IN_NSQD_MS)
        why = `REQ'd over ${IN_NSQD_MS} ms before the SIGKILL`;
      else if (calls[s] === 0 && laterDelivered[s] < next.at - IN_NSQD_MS)
        why = `a message behind it delivered over ${IN_NSQD_MS} ms before the SIGKILL`;
      else {
        const kill = kills.find((x) => x.fault === next);
        kill.count++;
        widen(kill, 'ack', ackAt[s] - next.at);
        if (calls[s] > 0) widen(kill, 'lastDelivery', lastRecvAt[s] - next.at);
        else kill.neverDelivered++;
        continue;
      }
    }
    byTransport.push({ seq: s, why });
  }
  return { inNsqd: kills.map(({ fault: _f, ...k }) => k), byTransport };
}

/**
 * How long before a SIGKILL a lost message may have last been seen and still count as lost
 * inside nsqd: nsqd sends what it takes from the queue within its output buffer timeout (25 ms
 * by default), and a failed handling's REQ leaves at once; the rest is event-loop slack.
 */
const IN_NSQD_MS = 1000;

/** Why a message was handled twice (header: duplicate). */
function duplicateCause(faults, firstNsqd, secondNsqd, t1, t2) {
  if (firstNsqd !== secondNsqd) return 'handled from both nsqd';
  const inWindow = (f) => f.at <= t2 && f.endAt >= t1 - 1000;
  const f =
    faults.findLast((x) => x.target === `nsqd${firstNsqd}` && inWindow(x)) ??
    faults.findLast((x) => x.target === 'lookupd' && inWindow(x));
  return f ? f.kind : 'no fault';
}

/** Consecutive sequence numbers grouped, with their acknowledgement times, for the report. */
function ranges(seqs, ackAt) {
  const out = [];
  for (const s of seqs) {
    const last = out.at(-1);
    if (last && s === last.to + 1) {
      last.to = s;
      last.count++;
      last.ackToS = Math.max(last.ackToS, ackAt[s] / 1000);
    } else {
      out.push({ from: s, to: s, count: 1, ackFromS: ackAt[s] / 1000, ackToS: ackAt[s] / 1000 });
    }
  }
  return out;
}

/** Messages nsqd still has for the channel (depth + in-flight + deferred), null if no answer. */
async function channelHeld(nsqd, topic, channel) {
  const v = await topicView(nsqd, topic, channel);
  return v ? v.topicDepth + v.depth + v.inFlight + v.deferred : null;
}

async function topicView(nsqd, topic, channel) {
  try {
    const res = await fetch(`${nsqd.httpUrl}/stats?format=json&topic=${topic}&channel=${channel}`, {
      signal: AbortSignal.timeout(800),
    });
    const body = await res.json();
    const t = (body.topics ?? []).find((x) => x.topic_name === topic);
    const c = (t?.channels ?? []).find((x) => x.channel_name === channel);
    return {
      topicDepth: t?.depth ?? 0,
      depth: c?.depth ?? 0,
      inFlight: c?.in_flight_count ?? 0,
      deferred: c?.deferred_count ?? 0,
    };
  } catch {
    return null; // stopped, restarting or slow
  }
}

async function waitLookupdLists(lookupd, topic, count, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${lookupd.httpUrl}/lookup?topic=${topic}`);
      if (res.ok && ((await res.json()).producers ?? []).length >= count) return;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new Error(`nsqlookupd did not list ${count} nsqd for ${topic} within ${timeoutMs} ms`);
}

function heapMb() {
  global.gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}
function heapMbNoGc() {
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** Least-squares slope of [minutes, MB] points, MB per minute; null with fewer than 2. */
function slope(points) {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den ? round(num / den, 2) : null;
}

function bump(obj, key) {
  obj[key] = (obj[key] ?? 0) + 1;
}
const round = (n, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

function report(phases, config) {
  const fmtCodes = (o) =>
    Object.keys(o).length
      ? Object.entries(o)
          .map(([k, v]) => `${k}:${v}`)
          .join(' ')
      : '-';
  const rows = [
    ['published (acknowledged)', (p) => p.published],
    ['failed publishes', (p) => `${p.failedPublishes} (${fmtCodes(p.failedByCode)})`],
    ['  failed but handled anyway', (p) => p.failedButHandled],
    ['  never settled', (p) => p.unsettledPublishes],
    ['handled distinct', (p) => p.handledDistinct],
    ['lost (acked, never handled)', (p) => p.lost],
    ['  never reached a handler', (p) => p.lostNeverDelivered],
    ['  only failed (REQ) attempts', (p) => p.lost - p.lostNeverDelivered],
    [
      '  inside nsqd at a SIGKILL (a)',
      (p) => `${p.lostInNsqd} (${p.lostInNsqdPerKill.map((k) => k.count).join('+') || 0})`,
    ],
    [
      '  LOST BY THE TRANSPORT (b)',
      (p) =>
        `${p.lostByTransport}${p.lostByTransport ? ` (${fmtCodes(p.lostByTransportWhy)})` : ''}`,
    ],
    ['duplicates (handled > once)', (p) => `${p.duplicates} (+${p.extraHandlings} handlings)`],
    ['  by cause', (p) => fmtCodes(p.dupCauses)],
    ['handler calls / injected fails', (p) => `${p.handlerCalls} / ${p.injectedFailures}`],
    ['handled by consumer 0 / 1', (p) => p.perConsumer.join(' / ')],
    ['given up', (p) => p.gaveUp],
    ['consumer disconnects', (p) => p.consumerDisconnects],
    ['consumer warnings', (p) => fmtCodes(p.consumerWarnings)],
    ['producer warnings', (p) => fmtCodes(p.producerWarnings)],
    ['STALL windows', (p) => p.stallWindows.length],
    [
      'heap slope MB/min (n, start->end)',
      (p) => `${p.heapSlopeMbPerMin} (${p.heapSamples}, ${p.heapStartMb}->${p.heapEndMb} MB)`,
    ],
    ['DRAINED (ms)', (p) => `${p.drained} (${p.drainMs})`],
  ];
  const w0 = Math.max(...rows.map(([l]) => l.length));
  const cells = rows.map(([, f]) => phases.map((p) => String(f(p))));
  const w = phases.map((_, i) =>
    Math.max(14, ...cells.map((c) => c[i].length), phases[i].name.length),
  );
  const line = (l, cs) => `${l.padEnd(w0)} | ${cs.map((c, i) => c.padEnd(w[i])).join(' | ')}`;
  console.log(
    `\n${line(
      '',
      phases.map((p) => p.name),
    )}`,
  );
  console.log(`${'-'.repeat(w0)}-+-${w.map((x) => '-'.repeat(x)).join('-+-')}`);
  rows.forEach(([l], i) => console.log(line(l, cells[i])));

  for (const p of phases) {
    console.log(
      `\nfaults, ${p.name} (recovery: to the first handling of a message published after the fault)`,
    );
    console.log(
      '   #   t(s)  fault              target   producer-on-it  recovery(ms)  max gap(ms)  pub fails',
    );
    p.faults.forEach((f, i) => {
      console.log(
        `  ${String(i + 1).padStart(2)}  ${(f.at / 1000).toFixed(1).padStart(5)}  ${f.kind.padEnd(17)}  ` +
          `${f.target.padEnd(7)}  ${String(f.producerWasOnIt).padEnd(14)}  ` +
          `${String(f.recoveryMs ?? 'never').padStart(12)}  ${String(f.maxGapMs).padStart(11)}  ` +
          `${String(f.pubFailures).padStart(9)}`,
      );
    });
    for (const s of p.stallWindows) {
      console.log(`  stall: t=${s.fromS}..${s.toS}s, ${s.waiting} acknowledged messages waiting`);
    }
    const show = (label, rs) => {
      if (!rs.length) return;
      console.log(`  ${label}: ${rs.length} range(s)`);
      for (const r of rs.slice(0, 8)) {
        console.log(
          `    seq ${r.from}..${r.to} (${r.count}), acknowledged at t=${r.ackFromS.toFixed(2)}..${r.ackToS.toFixed(2)}s` +
            ` -> next fault: ${nextFault(p.faults, r.ackFromS * 1000)}`,
        );
      }
      if (rs.length > 8) console.log(`    ... ${rs.length - 8} more`);
    };
    const ms = (v) => (v > 0 ? `+${v}` : String(v));
    for (const k of p.lostInNsqdPerKill) {
      console.log(
        `  SIGKILL ${k.target} at t=${k.atS}s${k.producerWasOnIt ? ' (the producer was on it)' : ''}: ` +
          `${k.count} lost inside it` +
          (k.count
            ? `, acknowledged ${ms(k.ackFromMs)}..${ms(k.ackToMs)} ms from the kill; ` +
              `${k.neverDelivered} never delivered` +
              (k.count > k.neverDelivered
                ? `, ${k.count - k.neverDelivered} last delivered ${ms(k.lastDeliveryFromMs)}..` +
                  `${ms(k.lastDeliveryToMs)} ms from it and REQ'd`
                : '')
            : ''),
      );
    }
    if (p.lostInNsqd) {
      console.log(
        '    (nsqd keeps in-flight and deferred messages, and what it buffers for a client, in\n' +
          `     memory only${config.unbuffered ? ')' : '; compare a run with --unbuffered)'}`,
      );
    }
    show('lost by the transport', p.lostByTransportRanges);
    for (const w of p.warningSamples) console.log(`  warning: ${w}`);
    show('duplicates', p.dupRanges);
    if (!p.drained) {
      console.log(
        `  not drained: nsqd ${JSON.stringify(p.finalNsqd)}, consumer inFlight ${p.finalConsumerInFlight}`,
      );
    }
  }

  const summary = {
    config: {
      phaseSeconds: config.phaseMs / 1000,
      rate: config.rate,
      faultEverySeconds: config.faultEveryMs / 1000,
      nsqdArgs: config.nsqdArgs,
      unbuffered: config.unbuffered,
    },
    phases: phases.map((p) => ({
      name: p.name,
      backoff: p.backoff,
      published: p.published,
      failedPublishes: p.failedByCode,
      failedButHandled: p.failedButHandled,
      handledDistinct: p.handledDistinct,
      lost: p.lost,
      lostNeverDelivered: p.lostNeverDelivered,
      lostInNsqdAtSigkill: p.lostInNsqdPerKill,
      lostByTransport: p.lostByTransport,
      lostByTransportWhy: p.lostByTransportWhy,
      duplicates: p.duplicates,
      duplicatesByCause: p.dupCauses,
      outages: p.faults.map((f) => ({
        kind: f.kind,
        target: f.target,
        atS: round(f.at / 1000, 1),
        recoveryMs: f.recoveryMs,
        maxGapMs: f.maxGapMs,
      })),
      stallWindows: p.stallWindows,
      heapSlopeMbPerMin: p.heapSlopeMbPerMin,
      heapSeries: p.heapSeries,
      drained: p.drained,
    })),
  };
  console.log(`\nSOAK ${JSON.stringify(summary)}`);
}

function nextFault(faults, ms) {
  const f = faults.find((x) => x.at >= ms - 50);
  return f ? `${f.kind} ${f.target} at t=${(f.at / 1000).toFixed(1)}s` : 'none';
}

// Heap figures mean little without a full GC before each sample: re-run this script with
// --expose-gc when it is missing, passing the exit code through.
if (typeof global.gc !== 'function') {
  const child = spawn(
    process.execPath,
    ['--expose-gc', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}
