// `npm run bench`: builds the library, then measures it against the alternatives on this machine
// and prints one table (also written to bench/results/latest.json).
//
//   BENCH_SCALE=0.05 npm run bench          quick smoke run (sizes x 0.05)
//   npm run bench -- --only consume,emit    only some scenarios (consume, emit, emit-seq,
//                                           latency, latency-100, rpc, rpc-100, memory,
//                                           scale, discovery); rpc selects rpc-100 too
//   BENCH_CPU_PROF=/tmp/prof npm run bench  a CPU profile of every row (node --cpu-prof)
//   npm run bench -- --impl ours,nsqjs      only some implementations (ours, nnt, nsqjs,
//                                           nats, redis, rmq, go)
//
// Every row runs in a fresh child process (bench/scenario.mjs) so that RSS and JIT state do not
// leak between rows; every scenario group gets a fresh nsqd on free loopback ports; everything
// started here is stopped at the end, on error and on Ctrl-C.
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LookupdProcess, NsqdProcess, binDir, stopAll } from '../scripts/nsq-servers.mjs';
import {
  MAX_IN_FLIGHT,
  NATS_URL,
  OUTSTANDING,
  REDIS,
  RMQ_URL,
  PAYLOAD_SIZE,
  body,
  channelStats,
  createTopic,
  deleteTopic,
  mpubHttp,
  payload,
  sleep,
  withTimeout,
} from './common.mjs';
import { ensurePeers, importPeer } from './peers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

// The alternatives measured here and their broker clients live in bench/peers (see peers.mjs).
ensurePeers();
const { default: amqp } = await importPeer('amqplib');
const { connect: natsConnect } = await importPeer('@nats-io/transport-node');
const { Redis } = await importPeer('ioredis');

// ---- settings -------------------------------------------------------------------------------

const { values: argv } = parseArgs({
  options: { only: { type: 'string' }, impl: { type: 'string' } },
  allowPositionals: false,
});
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const CPU_PROF = process.env.BENCH_CPU_PROF;
if (!(SCALE > 0)) throw new Error(`BENCH_SCALE must be a positive number, got ${SCALE}`);
const list = (s) => (s ? s.split(',').map((x) => x.trim()) : undefined);
const ONLY = list(argv.only);
const IMPLS = list(argv.impl);

const scaled = (n, min = 1) => Math.max(min, Math.round(n * SCALE));
const SIZES = {
  consume: scaled(200_000, 1000),
  emit: scaled(200_000, 1000),
  /** emit one at a time: at most this many, and at most seqMaxMs */
  seq: scaled(20_000, 500),
  seqMaxMs: scaled(5_000, 1000),
  memory: scaled(1_000_000, 10_000),
  memorySample: scaled(100_000, 1000),
  latencyRate: 10_000,
  /** the second latency row: a light, steady load, where buffering shows most */
  latency100Rate: 100,
  latencyMs: scaled(5_000, 1000),
  latencyWarmupMs: scaled(1_000, 300),
  /** rpc: sequential round trips after a warm-up; rpc-100: round trips with 100 outstanding */
  rpc: scaled(2_000, 200),
  rpcWarmup: 200,
  rpcConcurrent: scaled(60_000, 2000),
  rpcOutstanding: 100,
  /** discovery: fresh consumers (one topic each), and how long each may wait for its message */
  discoveryRounds: 3,
  discoveryCapMs: 10_000,
  /** Go bench_writer prefill / bench_reader / bench_writer run times, seconds */
  goFillS: Math.max(1, Math.round(3 * SCALE)),
  goRunS: Math.max(0.5, Math.round(2 * SCALE * 10) / 10),
  /** a row that does not finish its work within this is stopped and reported as partial */
  capMs: Math.max(30_000, Math.round(120_000 * Math.sqrt(SCALE))),
};

/** `--only rpc` means both rpc rows (one at a time and 100 outstanding). */
const want = (scenario) =>
  !ONLY || ONLY.includes(scenario) || (scenario === 'rpc-100' && ONLY.includes('rpc'));
const wantImpl = (impl) => !IMPLS || IMPLS.includes(impl);

const LABELS = {
  ours: 'nestjs-nsq (ours)',
  nnt: 'nest-nsq-transport 0.4.0',
  nsqjs: 'nsqjs 0.13.0 raw (no Nest)',
  'ours-nobuf': 'ours, outputBufferSize -1',
  'ours-core': 'ours, core Consumer/Producer (no Nest)',
  wire: 'bare socket PUB (no library)',
  'nsqjs-mpub': 'nsqjs 0.13.0 raw, MPUB x200',
  nats: 'Nest NATS transport',
  redis: 'Nest Redis transport',
  rmq: 'Nest RabbitMQ transport',
  go: 'Go bench_reader/writer (ceiling)',
};

// ---- bookkeeping: everything started here is stopped on the way out -------------------------

/** Child processes alive right now (scenario rows and Go tools). */
const children = new Set();
let stopping = false;

async function shutdown() {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await stopAll();
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${sig}: stopping children and NSQ servers...\n`);
    shutdown().finally(() => process.exit(130));
  });
}

const rows = [];
const log = (line) => process.stderr.write(`${line}\n`);

function addRow(scenario, impl, result) {
  const row = { scenario, impl, label: LABELS[impl] ?? impl, ...result };
  rows.push(row);
  const figure = row.error
    ? `could not run: ${row.error}`
    : `${fmtInt(row.rate)} msg/s` +
      (row.p99 !== undefined ? `, p50 ${fmtMs(row.p50)} ms, p99 ${fmtMs(row.p99)} ms` : '');
  log(`  ${scenario.padEnd(11)} ${row.label.padEnd(32)} ${figure}`);
  return row;
}

// ---- rows -----------------------------------------------------------------------------------

/** Runs `bench/scenario.mjs <scenario> <impl>` with its settings; resolves { result } or { error }. */
function runChild(scenario, impl, cfg) {
  return new Promise((resolve) => {
    const child = fork(join(here, 'scenario.mjs'), [scenario, impl], {
      execArgv: ['--expose-gc', ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : [])],
      env: { ...process.env, BENCH_CONFIG: JSON.stringify(cfg) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    children.add(child);
    let output = '';
    const keep = (chunk) => (output = (output + chunk).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let answer;
    child.on('message', (m) => (answer ??= m));
    const limit = (cfg.capMs ?? 60_000) + 60_000;
    const timer = setTimeout(() => {
      answer ??= { error: `no result within ${Math.round(limit / 1000)} s (killed)` };
      child.kill('SIGKILL');
    }, limit);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      children.delete(child);
      if (answer?.result) return resolve({ ...answer.result });
      const why = answer?.error ?? `exited with ${code ?? sig} before reporting${tail(output)}`;
      resolve({ error: firstLine(why), detail: why + tail(output) });
    });
  });
}

const tail = (s) => (s.trim() ? `\n--- output ---\n${s.trim()}` : '');
/** The first line of an error, without its "Error: " prefix. */
const firstLine = (s) =>
  String(s)
    .split('\n')[0]
    .replace(/^(\w*Error): /, (m, name) => (name === 'Error' ? '' : m))
    .slice(0, 300);

/** Runs a row, reporting a thrown setup error as the row's reason. */
async function row(scenario, impl, fn) {
  if (!wantImpl(impl) || stopping) return;
  let result;
  try {
    result = await fn();
  } catch (err) {
    result = { error: firstLine(err?.message ?? err), detail: String(err?.stack ?? err) };
  }
  if (!stopping) addRow(scenario, impl, result);
}

// ---- brokers other than nsqd ---------------------------------------------------------------

/** Deletes, re-creates and optionally fills a RabbitMQ queue with Nest RMQ event packets. */
async function rmqQueue(queue, { fill = 0, pattern } = {}) {
  const conn = await withTimeout(amqp.connect(RMQ_URL), 10_000, 'RabbitMQ connect');
  try {
    const ch = await conn.createConfirmChannel();
    await ch.deleteQueue(queue);
    await ch.assertQueue(queue, { durable: false });
    for (let i = 0; i < fill; i++) {
      const content = Buffer.from(JSON.stringify({ pattern, data: payload(i) }));
      if (!ch.sendToQueue(queue, content)) await new Promise((r) => ch.once('drain', r));
      if (i % 5000 === 4999) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await conn.close();
  }
}

async function rmqDelete(queue) {
  try {
    const conn = await withTimeout(amqp.connect(RMQ_URL), 10_000, 'RabbitMQ connect');
    const ch = await conn.createChannel();
    await ch.deleteQueue(queue);
    await conn.close();
  } catch {
    // broker gone: nothing to clean
  }
}

/** Versions of the local brokers, for the record. */
async function brokerVersions() {
  const out = {};
  try {
    const nc = await withTimeout(natsConnect({ servers: NATS_URL }), 3000, 'NATS');
    out.nats = nc.info?.version;
    await nc.close();
  } catch (err) {
    out.nats = `unreachable: ${err.message}`;
  }
  const redis = new Redis({ ...REDIS, lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await withTimeout(redis.connect(), 3000, 'Redis');
    out.redis = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1];
  } catch (err) {
    out.redis = `unreachable: ${err.message}`;
  } finally {
    redis.disconnect();
  }
  try {
    const conn = await withTimeout(amqp.connect(RMQ_URL), 3000, 'RabbitMQ');
    out.rabbitmq = conn.connection?.serverProperties?.version;
    await conn.close();
  } catch (err) {
    out.rabbitmq = `unreachable: ${err.message}`;
  }
  return out;
}

// ---- Go bench_reader / bench_writer --------------------------------------------------------

/** Runs a Go bench tool and returns its ops/s (it logs `... - 123456.789ops/s - ...`). */
function goTool(name, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(join(binDir(), name), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      const m = /([\d.]+)ops\/s/.exec(output);
      if (code === 0 && m) resolve({ rate: Math.round(Number(m[1])), output: output.trim() });
      else reject(new Error(`${name} exited ${code}: ${output.trim().slice(-500)}`));
    });
  });
}

/**
 * bench_reader reads for a fixed time, so the channel is filled first with bench_writer for
 * longer than it takes to read; if it still ran dry, the figure is only a lower bound.
 */
async function goConsume(nsqds, topic) {
  const channel = 'bench';
  for (const d of nsqds) await createTopic(d.httpAddress, topic, channel);
  for (const d of nsqds) {
    await goTool(
      'bench_writer',
      [
        `--nsqd-tcp-address=${d.tcpAddress}`,
        `--topic=${topic}`,
        `--size=${PAYLOAD_SIZE}`,
        `--runfor=${SIZES.goFillS}s`,
      ],
      SIZES.goFillS * 1000 + 30_000,
    );
  }
  const results = await Promise.all(
    nsqds.map((d) =>
      goTool(
        'bench_reader',
        [
          `--nsqd-tcp-address=${d.tcpAddress}`,
          `--topic=${topic}`,
          `--channel=${channel}`,
          `--size=${PAYLOAD_SIZE}`,
          `--runfor=${SIZES.goRunS}s`,
          `--rdy=${MAX_IN_FLIGHT}`,
        ],
        SIZES.goRunS * 1000 + 30_000,
      ),
    ),
  );
  const left = await Promise.all(nsqds.map((d) => channelStats(d.httpAddress, topic, channel)));
  const dry = left.some((c) => !c || c.depth === 0);
  for (const d of nsqds) await deleteTopic(d.httpAddress, topic);
  const rate = results.reduce((s, r) => s + r.rate, 0);
  return {
    rate,
    msgs: Math.round(rate * SIZES.goRunS),
    seconds: SIZES.goRunS,
    note:
      `bench_reader --rdy=${MAX_IN_FLIGHT} for ${SIZES.goRunS} s` +
      (nsqds.length > 1 ? `, one per nsqd (${nsqds.length}), summed` : '') +
      `, GOMAXPROCS connections each; channel prefilled by bench_writer` +
      (dry ? '; channel ran dry: lower bound' : ''),
  };
}

async function goEmit(nsqd, topic) {
  const seconds = SIZES.goFillS;
  const { rate } = await goTool(
    'bench_writer',
    [
      `--nsqd-tcp-address=${nsqd.tcpAddress}`,
      `--topic=${topic}`,
      `--size=${PAYLOAD_SIZE}`,
      `--runfor=${seconds}s`,
    ],
    seconds * 1000 + 30_000,
  );
  await deleteTopic(nsqd.httpAddress, topic);
  return {
    rate,
    msgs: Math.round(rate * seconds),
    seconds,
    note: `bench_writer: MPUB of 200 per round trip, GOMAXPROCS connections, ${seconds} s`,
  };
}

// ---- scenario groups ------------------------------------------------------------------------

const CHANNEL = 'bench';

/** Waits until nsqlookupd lists `count` producers of a topic. */
async function lookupdKnows(lookupd, topic, count) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${lookupd.httpUrl}/lookup?topic=${encodeURIComponent(topic)}`);
      if (res.ok && ((await res.json()).producers ?? []).length >= count) return;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new Error(`nsqlookupd did not list ${count} producers of ${topic} within 15 s`);
}

/** A consume row on NSQ: prefill every nsqd's channel, run the child, drop the topic. */
async function nsqConsume(scenario, impl, nsqds, n, extra = {}) {
  const topic = `${scenario}-${impl}`;
  const per = Math.floor(n / nsqds.length);
  for (const [k, d] of nsqds.entries()) {
    await createTopic(d.httpAddress, topic, CHANNEL);
    await mpubHttp(d.httpAddress, topic, k === 0 ? n - per * (nsqds.length - 1) : per, body);
  }
  try {
    return await runChild(scenario, impl, {
      topic,
      channel: CHANNEL,
      n,
      nsqd: nsqds.map((d) => d.tcpAddress),
      capMs: SIZES.capMs,
      ...extra,
    });
  } finally {
    for (const d of nsqds) await deleteTopic(d.httpAddress, topic);
  }
}

async function consumeGroup() {
  log(`consume: ${SIZES.consume} messages prefilled, maxInFlight ${MAX_IN_FLIGHT}`);
  const nsqd = await NsqdProcess.start();
  try {
    const n = SIZES.consume;
    for (const impl of ['ours', 'ours-nobuf', 'ours-core', 'nnt', 'nsqjs'])
      await row('consume', impl, async () => {
        if (impl !== 'ours-nobuf') return await nsqConsume('consume', impl, [nsqd], n);
        const serverOptions = { outputBufferSize: -1 };
        const r = await nsqConsume('consume', 'ours', [nsqd], n, { serverOptions });
        return { ...r, note: 'nsqd output buffering off' };
      });
    for (const impl of ['nats', 'redis'])
      await row('consume', impl, () =>
        runChild('consume', impl, { n, subject: `bench.consume.${impl}`, capMs: SIZES.capMs }),
      );
    await row('consume', 'rmq', async () => {
      const queue = 'bench-consume';
      const subject = 'bench.consume.rmq';
      await rmqQueue(queue, { fill: n, pattern: subject });
      try {
        const r = await runChild('consume', 'rmq', { n, subject, queue, capMs: SIZES.capMs });
        return {
          ...r,
          note: [`prefilled queue, noAck:false + ack in handler, prefetch ${MAX_IN_FLIGHT}`, r.note]
            .filter(Boolean)
            .join('; '),
        };
      } finally {
        await rmqDelete(queue);
      }
    });
    await row('consume', 'go', () => goConsume([nsqd], 'consume-go'));
  } finally {
    await nsqd.destroy();
  }
}

async function emitGroup() {
  const nsqd = await NsqdProcess.start();
  try {
    for (const scenario of ['emit', 'emit-seq']) {
      if (!want(scenario)) continue;
      log(
        scenario === 'emit'
          ? `emit: ${SIZES.emit} emits, ${OUTSTANDING} outstanding`
          : `emit-seq: one awaited emit at a time, up to ${SIZES.seq} or ${SIZES.seqMaxMs / 1000} s`,
      );
      const n = scenario === 'emit' ? SIZES.emit : SIZES.seq;
      const base = { n, capMs: SIZES.capMs, seqMaxMs: SIZES.seqMaxMs, nsqd: [nsqd.tcpAddress] };
      const impls = [
        'ours',
        'ours-core',
        'nnt',
        'nsqjs',
        ...(scenario === 'emit' ? ['nsqjs-mpub'] : ['wire']),
      ];
      for (const impl of impls) {
        await row(scenario, impl, async () => {
          const topic = `${scenario}-${impl}`;
          try {
            const cfg = { ...base, topic };
            return impl === 'nsqjs-mpub'
              ? await runChild(scenario, 'nsqjs', { ...cfg, batch: 200 })
              : await runChild(scenario, impl, cfg);
          } finally {
            await deleteTopic(nsqd.httpAddress, topic);
          }
        });
      }
      for (const impl of ['nats', 'redis'])
        await row(scenario, impl, async () => {
          const r = await runChild(scenario, impl, {
            ...base,
            subject: `bench.${scenario}.${impl}`,
          });
          return { ...r, note: ['no subscriber', r.note].filter(Boolean).join('; ') };
        });
      await row(scenario, 'rmq', async () => {
        const queue = `bench-${scenario}`;
        await rmqDelete(queue);
        try {
          const r = await runChild(scenario, 'rmq', {
            ...base,
            queue,
            subject: `bench.${scenario}`,
          });
          return {
            ...r,
            note: ['confirm channel, into a queue', r.note].filter(Boolean).join('; '),
          };
        } finally {
          await rmqDelete(queue);
        }
      });
      if (scenario === 'emit') await row('emit', 'go', () => goEmit(nsqd, 'emit-go'));
    }
  } finally {
    await nsqd.destroy();
  }
}

/** The latency scenarios: the same emit -> handler measurement at two steady send rates. */
const LATENCY_RATES = { latency: SIZES.latencyRate, 'latency-100': SIZES.latency100Rate };

async function latencyGroup() {
  const nsqd = await NsqdProcess.start();
  try {
    for (const [scenario, rate] of Object.entries(LATENCY_RATES)) {
      if (!want(scenario)) continue;
      await latencyRows(scenario, rate, nsqd);
    }
  } finally {
    await nsqd.destroy();
  }
}

async function latencyRows(scenario, rate, nsqd) {
  log(
    `${scenario}: emit -> handler in one process at ${fmtInt(rate)} msg/s, ` +
      `${SIZES.latencyWarmupMs / 1000} s warm-up + ${SIZES.latencyMs / 1000} s recorded`,
  );
  const base = {
    rate,
    durationMs: SIZES.latencyMs,
    warmupMs: SIZES.latencyWarmupMs,
    nsqd: [nsqd.tcpAddress],
    channel: CHANNEL,
    capMs: SIZES.latencyMs + SIZES.latencyWarmupMs,
  };
  for (const impl of ['ours', 'ours-nobuf', 'ours-core', 'nnt', 'nsqjs'])
    await row(scenario, impl, async () => {
      const topic = `${scenario}-${impl}`;
      await createTopic(nsqd.httpAddress, topic, CHANNEL);
      try {
        if (impl !== 'ours-nobuf') return await runChild(scenario, impl, { ...base, topic });
        // The same with nsqd's per-client output buffering off (IDENTIFY output_buffer_size
        // -1): shows how much of ours' latency is nsqd holding messages to fill 16 KB.
        const r = await runChild(scenario, 'ours', {
          ...base,
          topic,
          serverOptions: { outputBufferSize: -1 },
        });
        return { ...r, note: ['nsqd output buffering off', r.note].filter(Boolean).join('; ') };
      } finally {
        await deleteTopic(nsqd.httpAddress, topic);
      }
    });
  for (const impl of ['nats', 'redis'])
    await row(scenario, impl, () =>
      runChild(scenario, impl, { ...base, subject: `bench.${scenario}.${impl}` }),
    );
  await row(scenario, 'rmq', async () => {
    const queue = `bench-${scenario}`;
    await rmqQueue(queue);
    try {
      return await runChild(scenario, 'rmq', { ...base, queue, subject: `bench.${scenario}` });
    } finally {
      await rmqDelete(queue);
    }
  });
}

/**
 * Request/response through an echo handler, one request at a time (rpc) and 100 outstanding
 * (rpc-100): ours over nsqd, and Nest's NATS and Redis transports (their request/response needs
 * no queue set up, unlike RabbitMQ's reply queue).
 */
async function rpcGroup() {
  const nsqd = await NsqdProcess.start();
  // The names a user would pick; every row is its own process, so rows do not share replies.
  const names = { topic: 'rpc-bench', channel: 'c', subject: 'rpc-bench' };
  try {
    for (const scenario of ['rpc', 'rpc-100']) {
      if (!want(scenario)) continue;
      const seq = scenario === 'rpc';
      const n = seq ? SIZES.rpc : SIZES.rpcConcurrent;
      const warmup = seq ? SIZES.rpcWarmup : Math.min(5000, Math.floor(n / 10));
      const outstanding = seq ? 1 : SIZES.rpcOutstanding;
      log(
        `${scenario}: ${n} request/response round trips, ${outstanding} outstanding, ` +
          `after ${warmup} warm-up`,
      );
      const cfg = { ...names, n, warmup, outstanding, nsqd: [nsqd.tcpAddress], capMs: SIZES.capMs };
      for (const impl of ['ours', 'nats', 'redis'])
        await row(scenario, impl, async () => {
          try {
            return await runChild(scenario, impl, cfg);
          } finally {
            if (impl === 'ours') await deleteTopic(nsqd.httpAddress, names.topic);
          }
        });
    }
  } finally {
    await nsqd.destroy();
  }
}

async function memoryGroup() {
  log(`memory: ${SIZES.memory} messages consumed, RSS after ${SIZES.memorySample} and at the end`);
  const nsqd = await NsqdProcess.start();
  try {
    await row('memory', 'ours', async () => {
      const r = await nsqConsume('memory', 'ours', [nsqd], SIZES.memory, {
        samples: [SIZES.memorySample, SIZES.memory],
        capMs: SIZES.capMs * 2,
      });
      if (r.error) return r;
      const [early, late] = r.memory ?? [];
      if (!early || !late) return { ...r, note: `samples missing; ${r.note ?? ''}` };
      const ratio = Math.round((late.rssMB / early.rssMB) * 1000) / 1000;
      return {
        ...r,
        rssRatio: ratio,
        note:
          `RSS (after a full GC) ${r.rssBeforeMB} MB at start, ${early.rssMB} MB after ${early.after}, ` +
          `${late.rssMB} MB after ${late.after}: x${ratio.toFixed(2)}; heap ` +
          `${early.heapUsedMB} -> ${late.heapUsedMB} MB, external ${early.externalMB} -> ${late.externalMB} MB` +
          (r.note ? `; ${r.note}` : ''),
      };
    });
  } finally {
    await nsqd.destroy();
  }
}

async function discoveryGroup() {
  log(`discovery: consumers given only nsqlookupd; a topic's first message published 1 s later`);
  const lookupd = await LookupdProcess.start();
  const nsqd = await NsqdProcess.start({ lookupd });
  try {
    for (const impl of ['ours', 'nnt', 'nsqjs'])
      await row('discovery', impl, async () => {
        const r = await runChild('discovery', impl, {
          topic: `discovery-${impl}`,
          channel: CHANNEL,
          lookupd: [lookupd.httpAddress],
          nsqdHttp: nsqd.httpAddress,
          rounds: SIZES.discoveryRounds,
          capMs: SIZES.discoveryCapMs,
        });
        return {
          ...r,
          note: [`${SIZES.discoveryRounds} topics`, r.note].filter(Boolean).join('; '),
        };
      });
  } finally {
    await nsqd.destroy();
    await lookupd.destroy();
  }
}

async function scaleGroup() {
  log(`scale: ${SIZES.consume} messages spread over 3 nsqd, consumers find them via nsqlookupd`);
  const lookupd = await LookupdProcess.start();
  const nsqds = [];
  try {
    for (let i = 0; i < 3; i++) nsqds.push(await NsqdProcess.start({ lookupd }));
    for (const impl of ['ours', 'nnt', 'nsqjs']) {
      await row('scale', impl, async () => {
        const topic = `scale-${impl}`;
        for (const d of nsqds) await createTopic(d.httpAddress, topic, CHANNEL);
        await lookupdKnows(lookupd, topic, nsqds.length);
        const r = await nsqConsume('scale', impl, nsqds, SIZES.consume, {
          lookupd: [lookupd.httpAddress],
        });
        return { ...r, note: ['3 nsqd via nsqlookupd', r.note].filter(Boolean).join('; ') };
      });
    }
    await row('scale', 'go', () => goConsume(nsqds, 'scale-go'));
  } finally {
    await Promise.all(nsqds.map((d) => d.destroy()));
    await lookupd.destroy();
  }
}

// ---- report ---------------------------------------------------------------------------------

const fmtInt = (x) => (x === undefined ? '' : Math.round(x).toLocaleString('en-US'));
const fmtMs = (x) => (x === undefined ? '' : x < 10 ? x.toFixed(2) : x.toFixed(1));

/**
 * The figure each row is compared on: a latency quantile for rows that measure latency (lower
 * wins; p99 for latency rows, p50 for one-at-a-time round trips), else throughput.
 */
const RATIO_ON = { latency: 'p99', 'latency-100': 'p99', rpc: 'p50', discovery: 'max' };

/** Adds `ratio` to every row: its compared figure / ours'. */
function addRatios() {
  for (const r of rows) {
    const ours = rows.find((o) => o.scenario === r.scenario && o.impl === 'ours' && !o.error);
    if (!ours || r.error) continue;
    const key = RATIO_ON[r.scenario] ?? 'rate';
    if (r[key] !== undefined && ours[key]) r.ratio = r[key] / ours[key];
  }
}

function table() {
  const header = [
    'scenario',
    'implementation',
    'msg/s',
    'vs ours',
    'p50 ms',
    'p99 ms',
    'max ms',
    'RSS MB',
    'note',
  ];
  const body = rows.map((r) =>
    r.error
      ? [r.scenario, r.label, '-', '-', '', '', '', '', `could not run: ${r.error}`]
      : [
          r.scenario,
          r.label,
          fmtInt(r.rate),
          r.ratio === undefined ? '' : r.ratio.toFixed(2),
          fmtMs(r.p50),
          fmtMs(r.p99),
          fmtMs(r.max),
          r.rssMB === undefined ? '' : r.rssMB.toFixed(0),
          r.note ?? '',
        ],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const right = new Set([2, 3, 4, 5, 6, 7]);
  const line = (cells) =>
    cells
      .map((c, i) =>
        i === cells.length - 1
          ? String(c)
          : right.has(i)
            ? String(c).padStart(widths[i])
            : String(c).padEnd(widths[i]),
      )
      .join('  ')
      .trimEnd();
  return [
    line(header),
    widths.map((w) => '-'.repeat(Math.min(w, 40))).join('  '),
    ...body.map(line),
  ].join('\n');
}

function machine() {
  const cpus = os.cpus();
  let nsqdVersion;
  try {
    nsqdVersion = execFileSync(join(binDir(), 'nsqd'), ['--version'], { encoding: 'utf8' }).trim();
  } catch (err) {
    nsqdVersion = `unknown: ${err.message}`;
  }
  const version = (pkg, from = root) => {
    try {
      return JSON.parse(readFileSync(join(from, 'node_modules', pkg, 'package.json'), 'utf8'))
        .version;
    } catch {
      return undefined;
    }
  };
  return {
    cpu: cpus[0]?.model,
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    nsqd: nsqdVersion,
    packages: Object.fromEntries([
      ...['@nestjs/core', '@nestjs/microservices'].map((p) => [p, version(p)]),
      ...[
        'nsqjs',
        'nest-nsq-transport',
        '@nats-io/transport-node',
        'ioredis',
        'amqplib',
        'amqp-connection-manager',
      ].map((p) => [p, version(p, join(here, 'peers'))]),
    ]),
    loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** Scenario groups that run more than one scenario (each can be chosen with --only). */
const GROUP_MEMBERS = {
  emit: ['emit', 'emit-seq'],
  latency: ['latency', 'latency-100'],
  rpc: ['rpc', 'rpc-100'],
};

// ---- main -----------------------------------------------------------------------------------

async function main() {
  const started = new Date();
  const info = machine();
  info.brokers = await brokerVersions();
  log(
    `nestjs-nsq benchmark: ${info.cpu}, ${info.cores} cores, node ${info.node}, ${info.nsqd}; ` +
      `BENCH_SCALE=${SCALE}; load ${info.loadavgAtStart.join(' ')}`,
  );
  const groups = [
    ['consume', consumeGroup],
    ['emit', emitGroup],
    ['latency', latencyGroup],
    ['rpc', rpcGroup],
    ['memory', memoryGroup],
    ['scale', scaleGroup],
    ['discovery', discoveryGroup],
  ];
  for (const [name, group] of groups) {
    const members = GROUP_MEMBERS[name] ?? [name];
    if (!members.some(want) || stopping) continue;
    try {
      await group();
    } catch (err) {
      log(`${name}: group failed: ${err?.stack ?? err}`);
      rows.push({
        scenario: name,
        impl: '-',
        label: '(group)',
        error: firstLine(err?.message ?? err),
      });
    }
  }
  if (stopping) return;
  addRatios();
  info.loadavgAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const text = table();
  process.stdout.write(
    `\n${text}\n\n` +
      `msg/s: from first to last message (consume, scale, memory), until all acknowledged (emit), ` +
      `calls/s (emit-seq, rpc), achieved send rate (latency, latency-100), requests/s until the last ` +
      `reply (rpc-100).\n` +
      `vs ours: msg/s relative to ours (higher is better); latency rows: p99 relative to ours, rpc: p50 ` +
      `relative to ours, discovery: max relative to ours (lower is better).\n` +
      `p50/p99/max: per-call time (emit-seq), per round trip (rpc); emit -> handler with client and server in one process at ` +
      `${fmtInt(SIZES.latencyRate)} msg/s (latency) and ${fmtInt(SIZES.latency100Rate)} msg/s (latency-100), ` +
      `${SIZES.latencyWarmupMs / 1000} s warm-up + ${SIZES.latencyMs / 1000} s recorded; ` +
      `send() -> echo handler -> reply, awaited, client and server in one process (rpc: ` +
      `${fmtInt(SIZES.rpc)} one at a time after ${SIZES.rpcWarmup} warm-up; rpc-100: ` +
      `${fmtInt(SIZES.rpcConcurrent)} with ${SIZES.rpcOutstanding} outstanding); publish -> handler ` +
      `of a new topic's first message, the consumer given only nsqlookupd (discovery; nsqjs and ` +
      `nest-nsq-transport poll lookupd every 60 s by default).\n` +
      `RSS: of the row's process at its end. maxInFlight / RDY / prefetch ${MAX_IN_FLIGHT} everywhere.\n` +
      `${PAYLOAD_SIZE}-byte JSON bodies; Nest's NATS/Redis/RMQ wrap them as { pattern, data }.\n` +
      `Machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGB} GB, ${info.os}, node ${info.node}, ` +
      `${info.nsqd}; NATS ${info.brokers.nats}, Redis ${info.brokers.redis}, RabbitMQ ${info.brokers.rabbitmq}; ` +
      `load ${info.loadavgAtStart.join(' ')} -> ${info.loadavgAtEnd.join(' ')}.\n`,
  );
  const out = join(here, 'results');
  mkdirSync(out, { recursive: true });
  const report = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    seconds: Math.round((Date.now() - started.getTime()) / 1000),
    scale: SCALE,
    sizes: {
      ...SIZES,
      payloadBytes: PAYLOAD_SIZE,
      maxInFlight: MAX_IN_FLIGHT,
      outstanding: OUTSTANDING,
    },
    machine: info,
    rows,
    table: text,
  };
  writeFileSync(join(out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  log(`written: bench/results/latest.json (${report.seconds} s)`);
}

try {
  await main();
} finally {
  if (!stopping) await shutdown();
}
