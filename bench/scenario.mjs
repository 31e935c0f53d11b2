// One benchmark row in a fresh process: `node bench/scenario.mjs <scenario> <impl>`, with the
// row's settings as JSON in BENCH_CONFIG. Forked by run.mjs; reports { result } or { error }
// over IPC, then exits. Brokers and prefilled topics are set up by run.mjs.
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { adapters } from './adapters.mjs';
import { NATS_URL, OUTSTANDING, REDIS, mb, payload, probe, sleep, summarize } from './common.mjs';

const [scenario, implName] = process.argv.slice(2);
const cfg = JSON.parse(process.env.BENCH_CONFIG ?? '{}');
const impl = adapters[implName];
const now = () => performance.now();
const rss = () => process.memoryUsage().rss;

/** Things to close when the row ends, newest first. */
const cleanup = [];

/** A promise with its resolve function. */
function signal() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves after ms (or never fails); used as the row's time cap. */
const cap = (ms) => sleep(ms).then(() => 'cap');

/**
 * Starts the live publisher (NATS / Redis) and returns a function the handler calls with its
 * count, so that the publisher stays a bounded window ahead.
 */
async function startPublisher(kind, n) {
  const child = fork(fileURLToPath(new URL('./publisher.mjs', import.meta.url)), [], {
    env: {
      ...process.env,
      BENCH_PUBLISHER: JSON.stringify({
        kind,
        n,
        subject: cfg.subject,
        url: NATS_URL,
        redis: REDIS,
      }),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  cleanup.push(() => child.kill());
  const ready = signal();
  let finished = false;
  child.on('message', (m) => {
    if (m.ready) ready.resolve();
    if (m.published !== undefined) finished = true;
    if (m.error) fail(new Error(`live publisher: ${m.error}`));
  });
  child.once('exit', (code) => {
    if (!finished && !ending) fail(new Error(`live publisher exited (${code}) before the end`));
  });
  await ready.promise;
  return (handled) => child.connected && child.send({ handled });
}

/**
 * Consumes cfg.n messages through the implementation's consumer. Messages were prefilled by
 * run.mjs, except for brokers that do not retain (a live publisher process then feeds them).
 * `samples` is a list of counts at which to record RSS (after a full GC when exposed).
 */
async function consume({ samples = [] } = {}) {
  const n = cfg.n;
  const done = signal();
  let count = 0;
  let first = 0;
  let last = 0;
  let report;
  const memory = [];
  const sampleAt = new Set(samples);
  const onMessage = () => {
    if (count === 0) first = now();
    count++;
    if (report !== undefined && count % 1000 === 0) report(count);
    if (sampleAt.has(count)) {
      globalThis.gc?.();
      memory.push({
        after: count,
        rssMB: mb(rss()),
        heapUsedMB: mb(process.memoryUsage().heapUsed),
        externalMB: mb(process.memoryUsage().external),
        arrayBuffersMB: mb(process.memoryUsage().arrayBuffers),
      });
    }
    if (count === n) {
      last = now();
      done.resolve();
    }
  };
  const consumer = await impl.consumer(cfg, onMessage);
  cleanup.push(() => consumer.close());
  globalThis.gc?.();
  const rssBeforeMB = mb(rss());
  if (impl.retains === false) report = await startPublisher(implName, n);
  const outcome = await Promise.race([done.promise, cap(cfg.capMs)]);
  if (outcome === 'cap') last = now();
  const seconds = (last - first) / 1000;
  return {
    msgs: count,
    seconds: round(seconds, 3),
    rate: count > 1 ? Math.round(count / seconds) : 0,
    rssMB: mb(rss()),
    rssBeforeMB,
    memory,
    note: [
      impl.retains === false
        ? 'live-published by a separate process (broker does not retain), <= 20k ahead'
        : '',
      ...(consumer.issues?.() ?? []),
      outcome === 'cap' ? `stopped at the ${cfg.capMs / 1000} s cap: ${count}/${n}` : '',
    ]
      .filter(Boolean)
      .join('; '),
  };
}

/** N emits with OUTSTANDING in flight; msg/s until all acknowledged. */
async function emit() {
  const batch = cfg.batch ?? 1;
  const client = await impl.client(cfg, { batch });
  cleanup.push(() => client.close());
  const warmup = Math.min(2000, Math.floor(cfg.n / 10));
  const run = async (n, workers, deadline) => {
    let started = 0;
    let acked = 0;
    let failed = 0;
    let firstError;
    const worker = async () => {
      while (started < n && now() < deadline) {
        const i = started;
        started += batch;
        const data =
          batch > 1
            ? Array.from({ length: Math.min(batch, n - i) }, (_, k) => payload(i + k))
            : payload(i);
        try {
          await client.emit(data);
          acked += batch > 1 ? data.length : 1;
        } catch (err) {
          failed++;
          firstError ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, worker));
    await client.flush?.();
    return { acked, failed, firstError };
  };
  const workers = Math.max(1, Math.floor(OUTSTANDING / batch));
  await run(warmup, workers, Infinity);
  const t0 = now();
  const { acked, failed, firstError } = await run(cfg.n, workers, t0 + cfg.capMs);
  const seconds = (now() - t0) / 1000;
  return {
    msgs: acked,
    seconds: round(seconds, 3),
    rate: Math.round(acked / seconds),
    rssMB: mb(rss()),
    note: [
      batch > 1 ? `MPUB of ${batch}, ${workers} batches outstanding` : '',
      client.flush ? 'NATS publish is fire-and-forget: counted when flushed' : '',
      acked + failed < cfg.n ? `stopped at the ${cfg.capMs / 1000} s cap: ${acked}/${cfg.n}` : '',
      failed ? `${failed} failed: ${firstError?.message ?? firstError}` : '',
    ]
      .filter(Boolean)
      .join('; '),
  };
}

/** One emit at a time, awaited: msg/s and per-call latency. */
async function emitSequential() {
  const client = await impl.client(cfg);
  cleanup.push(() => client.close());
  for (let i = 0; i < 200; i++) await client.emit(payload(i)); // warm-up
  const latencies = [];
  const t0 = now();
  const deadline = t0 + cfg.seqMaxMs;
  let i = 0;
  while (i < cfg.n && now() < deadline) {
    const start = now();
    await client.emit(payload(i++));
    latencies.push(now() - start);
  }
  await client.flush?.();
  const seconds = (now() - t0) / 1000;
  return {
    msgs: i,
    seconds: round(seconds, 3),
    rate: Math.round(i / seconds),
    ...summarize(latencies),
    rssMB: mb(rss()),
    note: [
      i < cfg.n ? `time-boxed to ${cfg.seqMaxMs / 1000} s` : '',
      client.flush ? 'NATS publish resolves before the server saw it' : '',
    ]
      .filter(Boolean)
      .join('; '),
  };
}

/** emit -> handler in one process at a steady cfg.rate msg/s; latency from send to handler. */
async function latency() {
  const latencies = [];
  let recordFrom = Infinity;
  let received = 0;
  const onMessage = (data) => {
    received++;
    if (data.t >= recordFrom) latencies.push(now() - data.t);
  };
  const consumer = await impl.consumer(cfg, onMessage);
  cleanup.push(() => consumer.close());
  const client = await impl.client(cfg);
  cleanup.push(() => client.close());
  await sleep(200);

  let sent = 0;
  let failed = 0;
  let firstError;
  const start = now();
  recordFrom = start + cfg.warmupMs;
  const end = recordFrom + cfg.durationMs;
  await new Promise((resolve) => {
    const tick = () => {
      const t = now();
      if (t >= end) return resolve();
      const due = Math.floor(((t - start) * cfg.rate) / 1000);
      while (sent < due) {
        client.emit(probe(sent++, now())).catch((err) => {
          failed++;
          firstError ??= err;
        });
      }
      setTimeout(tick, 1);
    };
    tick();
  });
  const sendSeconds = (now() - start) / 1000;
  const drainUntil = now() + 5000;
  while (received < sent - failed && now() < drainUntil) await sleep(20);
  const stats = summarize(latencies);
  return {
    msgs: received,
    seconds: round(sendSeconds, 3),
    rate: Math.round(sent / sendSeconds),
    ...stats,
    rssMB: mb(rss()),
    note: [
      received < sent ? `${sent - received} of ${sent} not received within 5 s` : '',
      failed ? `${failed} emits failed: ${firstError?.message ?? firstError}` : '',
    ]
      .filter(Boolean)
      .join('; '),
  };
}

/**
 * Request/response through an echo handler, client and server in this process: one request at
 * a time after cfg.warmup (rpc: calls/s, per-call p50/p99/max), or cfg.outstanding in flight
 * (rpc-100: requests/s until the last reply). Every reply is checked against its request.
 */
async function rpc() {
  const server = await impl.rpcServer(cfg);
  cleanup.push(() => server.close());
  const client = await impl.rpcClient(cfg);
  cleanup.push(() => client.close());
  const outstanding = cfg.outstanding ?? 1;
  const deadline = { at: Infinity };
  let wrong = 0;
  let failed = 0;
  let firstError;
  // A reply that is not the request's data would make the figures meaningless: count it.
  const call = async (i) => {
    const data = payload(i);
    const reply = await client.send(data);
    if (reply?.id !== data.id || reply?.pad !== data.pad) wrong++;
  };
  const run = async (n, latencies) => {
    let started = 0;
    let done = 0;
    const worker = async () => {
      while (started < n && now() < deadline.at) {
        const i = started++;
        const t = now();
        try {
          await call(i);
          done++;
          latencies?.push(now() - t);
        } catch (err) {
          failed++;
          firstError ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: outstanding }, worker));
    return done;
  };
  // Warm-up: JIT, connections, and our reply topic's consumer, which starts with the client.
  await run(cfg.warmup, undefined);
  wrong = 0;
  failed = 0;
  firstError = undefined;
  const latencies = outstanding === 1 ? [] : undefined;
  const t0 = now();
  deadline.at = t0 + cfg.capMs;
  const done = await run(cfg.n, latencies);
  const seconds = (now() - t0) / 1000;
  if (done === 0) throw new Error(`every request failed: ${reason(firstError)}`);
  return {
    msgs: done,
    seconds: round(seconds, 3),
    rate: Math.round(done / seconds),
    ...(latencies ? summarize(latencies) : {}),
    rssMB: mb(rss()),
    note: [
      outstanding === 1 ? 'one at a time' : `${outstanding} outstanding`,
      'echo handler, client and server in one process',
      done + failed < cfg.n ? `stopped at the ${cfg.capMs / 1000} s cap: ${done}/${cfg.n}` : '',
      failed ? `${failed} failed: ${reason(firstError)}` : '',
      wrong ? `${wrong} replies were not the request's data` : '',
    ]
      .filter(Boolean)
      .join('; '),
  };
}

/**
 * A consumer given only nsqlookupd, for a topic that does not exist yet; 1 s later one message
 * is published (creating the topic). Figure: publish -> handler, for cfg.rounds fresh consumers.
 */
async function discovery() {
  const delays = [];
  for (let k = 0; k < cfg.rounds; k++) {
    const topic = `${cfg.topic}-${k}`;
    const got = signal();
    // Some consumers count as started only once connected to an nsqd, which none is yet.
    const starting = impl.consumer({ ...cfg, topic }, () => got.resolve(now()));
    starting.catch(() => {});
    await sleep(1000);
    const sentAt = now();
    const res = await fetch(`http://${cfg.nsqdHttp}/pub?topic=${topic}`, {
      method: 'POST',
      body: JSON.stringify(payload(k)),
    });
    if (!res.ok) throw new Error(`nsqd /pub answered ${res.status}`);
    const at = await Promise.race([got.promise, cap(cfg.capMs)]);
    if (at === 'cap') {
      throw new Error(`no delivery within ${cfg.capMs / 1000} s of the first publish`);
    }
    delays.push(at - sentAt);
    await (await starting).close();
  }
  return { msgs: delays.length, ...summarize(delays), rssMB: mb(rss()) };
}

const scenarios = {
  discovery: () => discovery(),
  consume: () => consume(),
  scale: () => consume(),
  memory: () => consume({ samples: cfg.samples }),
  emit: () => emit(),
  'emit-seq': () => emitSequential(),
  latency: () => latency(),
  'latency-100': () => latency(),
  rpc: () => rpc(),
  'rpc-100': () => rpc(),
};

/** An error's message; Nest hands RPC errors over as plain objects, shown as JSON. */
const reason = (err) => err?.message ?? JSON.stringify(err);

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

async function closeAll() {
  for (const close of cleanup.reverse()) {
    try {
      await close();
    } catch (err) {
      console.error(`close: ${err?.message ?? err}`);
    }
  }
}

async function main() {
  if (!impl) throw new Error(`unknown implementation ${implName}`);
  const run = scenarios[scenario];
  if (!run) throw new Error(`unknown scenario ${scenario}`);
  const result = await run();
  ending = true;
  await closeAll();
  return result;
}

// Errors a library raises out of band (a socket error event nobody listens to, ...) end the
// row with that error instead of a crash without a report.
process.on('uncaughtException', (err) => fail(err));
process.on('unhandledRejection', (err) => fail(err));

let reported = false;
/** Set once the row has its figures: what dies while closing no longer fails it. */
let ending = false;
function fail(err) {
  if (reported) return;
  reported = true;
  process.send?.({ error: String(err?.stack ?? err) }, () => process.exit(1));
  setTimeout(() => process.exit(1), 1000).unref();
}

main().then(
  (result) => {
    reported = true;
    process.send?.({ result }, () => process.exit(0));
  },
  (err) => fail(err),
);
