#!/usr/bin/env node
// `npm run demo`: the sample order flow end to end on this machine, no Docker needed.
// Gets the NSQ binaries, builds the library and the sample, starts nsqlookupd + nsqd + nsqadmin
// and the sample app on free loopback ports, sends a burst of orders over HTTP (plus one poison
// order and some quotes), shows progress, waits until both channels handled every order, prints
// a summary and stops everything. `npm run demo -- --keep` keeps it all running until Ctrl-C.
// `npm run demo -- --nsqd 3` runs the flow over three nsqd behind nsqlookupd and stops the one the
// producer uses half-way through (SIGTERM, back after 3 s): the producer fails over, and the
// summary checks that every accepted order was handled by both channels.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureNsqBinaries } from './nsq-install.mjs';
import {
  LookupdProcess,
  NsqadminProcess,
  NsqdProcess,
  RUN_DIR,
  freePort,
  reapLeftovers,
  stopAll,
} from './nsq-servers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HELP = `Usage: npm run demo [-- options]

  --keep               keep nsqd, nsqlookupd, nsqadmin and the app running after the run,
                       until Ctrl-C (explore nsqadmin, curl the app)
  --orders=N           orders to send (default 3000)
  --nsqd=N             nsqd behind nsqlookupd (default 1); with 2 or more, the nsqd the
                       producer uses is stopped half-way through and restarted 3 s later
  --concurrency=N      HTTP requests in flight at once (default 64)
  --timeout=SECONDS    how long sending and handling every order may take (default 120)
  --skip-build         use the existing dist/ and sample/dist/
  --help`;

let options;
try {
  ({ values: options } = parseArgs({
    options: {
      keep: { type: 'boolean', default: false },
      orders: { type: 'string', default: '3000' },
      nsqd: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '64' },
      timeout: { type: 'string', default: '120' },
      'skip-build': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (err) {
  console.error(`demo: ${err.message}\n\n${HELP}`);
  process.exit(2);
}
if (options.help) {
  console.log(HELP);
  process.exit(0);
}

function positiveInt(name, value, min = 1) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    console.error(`demo: --${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return n;
}
const ORDERS = positiveInt('orders', options.orders);
const NSQDS = positiveInt('nsqd', options.nsqd);
/** How long the stopped nsqd stays down in a scale-out run. */
const NSQD_DOWN_MS = 3_000;
const CONCURRENCY = positiveInt('concurrency', options.concurrency);
const TIMEOUT_MS = positiveInt('timeout', options.timeout) * 1000;
const KEEP = options.keep;

const tty = Boolean(process.stdout.isTTY);
const color = tty && !process.env.NO_COLOR;
const paint = (code) => (text) => (color ? `\x1b[${code}m${text}\x1b[0m` : String(text));
const bold = paint('1');
const dim = paint('2');
const green = paint('32');
const red = paint('31');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (n) => Math.round(n).toLocaleString('en-US');

/** A demo failure with a message meant for the user. */
class DemoError extends Error {}

// ---------------------------------------------------------------------------------------------
// Processes: everything started here is stopped on exit, Ctrl-C or failure.

/** @type {import('node:child_process').ChildProcess | undefined} */
let app;
let appPidFile;
const logDir = join(root, '.nsq', 'demo');
const appLog = join(logDir, 'sample-app.log');
let stopping = false;
let progressShown = false;

function clearProgress() {
  if (tty && progressShown) process.stdout.write('\r\x1b[2K');
  progressShown = false;
}

function step(text) {
  clearProgress();
  console.log(`${green('>')} ${text}`);
}

function appRunning() {
  return !!app && app.exitCode === null && app.signalCode === null;
}

async function stopApp() {
  const child = app;
  if (!child || !appRunning()) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM'); // the app drains its consumers and flushes FIN/REQ
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

process.once('exit', () => {
  if (appRunning()) app.kill('SIGKILL');
  if (appPidFile) rmSync(appPidFile, { force: true });
});

async function shutdown(code, message) {
  if (stopping) return;
  stopping = true;
  clearProgress();
  if (message) (code === 0 ? console.log : console.error)(message);
  const started = Date.now();
  try {
    await stopApp();
    await stopAll();
  } catch (err) {
    console.error(`demo: stopping failed: ${err.message}`);
    code ||= 1;
  }
  const took = ((Date.now() - started) / 1000).toFixed(1);
  console.log(dim(`Stopped the sample app, nsqadmin, nsqd and nsqlookupd (${took} s).`));
  process.exit(code);
}

let keepWaiting;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (stopping) {
      console.error('\nForced exit.');
      process.exit(130); // the exit hooks kill what is left
    }
    if (keepWaiting) keepWaiting();
    else
      void shutdown(
        130,
        `\n${signal === 'SIGINT' ? 'Interrupted' : 'Terminated'}: stopping everything ...`,
      );
  });
}

function tail(file, lines = 30) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------
// Steps

/** Runs a build command; its output is shown only if it fails. */
function run(what, command, args) {
  const started = Date.now();
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (err) => reject(new DemoError(`${what} failed: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolveRun(Date.now() - started);
      else reject(new DemoError(`${what} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

async function build() {
  const npm = process.env.npm_execpath;
  const buildMs = npm
    ? await run('npm run build', process.execPath, [npm, 'run', '--silent', 'build'])
    : await run('npm run build', 'npm', ['run', '--silent', 'build']);
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const sampleMs = await run('tsc -p sample', process.execPath, [
    tsc,
    '-p',
    'sample/tsconfig.json',
  ]);
  return buildMs + sampleMs;
}

async function startApp(env) {
  mkdirSync(logDir, { recursive: true });
  const fd = openSync(appLog, 'w');
  // Own process group: Ctrl-C reaches the demo, which stops the app first (gracefully).
  app = spawn(process.execPath, [join(root, 'sample', 'dist', 'main.js')], {
    cwd: root,
    env: { ...process.env, ...env, NO_COLOR: '1' },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  // Registered like the NSQ servers, so a later run (or the tests) reaps it after a crash.
  mkdirSync(RUN_DIR, { recursive: true });
  appPidFile = join(RUN_DIR, String(app.pid));
  writeFileSync(appPidFile, `sample ${process.pid}`);
  app.once('exit', (code, signal) => {
    rmSync(appPidFile, { force: true });
    if (!stopping) {
      void shutdown(
        1,
        red(`The sample app exited unexpectedly (${signal ?? code}). Its last log lines:\n`) +
          tail(appLog),
      );
    }
  });
}

async function waitForHealth(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!appRunning()) throw new DemoError(`the sample app exited at start:\n${tail(appLog)}`);
    try {
      const res = await fetch(`${url}/health`);
      const body = await res.json();
      if (res.ok && body.status === 'ok') return body;
      last = `${res.status} ${JSON.stringify(body)}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await sleep(100);
  }
  throw new DemoError(`the sample app was not healthy within ${timeoutMs / 1000} s (${last})`);
}

async function http(method, url, body) {
  const res = await fetch(url, {
    method,
    signal: AbortSignal.timeout(15_000),
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) throw new DemoError(`${method} ${url} answered ${res.status}: ${text}`);
  return json;
}

/** Creates the sample's topics and channels at once (the app would create them when it starts). */
async function createChannels(nsqdHttp) {
  const channels = {
    orders: ['billing', 'shipping'],
    'orders.dead': ['inspect'],
    quotes: ['pricing'],
  };
  for (const [topic, names] of Object.entries(channels)) {
    await http('POST', `${nsqdHttp}/topic/create?topic=${topic}`);
    for (const name of names)
      await http('POST', `${nsqdHttp}/channel/create?topic=${topic}&channel=${name}`);
  }
}

const SKUS = ['tea', 'coffee', 'mug', 'teapot', 'kettle'];
function orderBody(i) {
  return {
    customer: `customer-${(i % 97) + 1}`,
    items: [
      { sku: SKUS[i % SKUS.length], qty: (i % 3) + 1 },
      ...(i % 4 === 0 ? [{ sku: SKUS[(i + 2) % SKUS.length], qty: 1 }] : []),
    ],
  };
}

const QUOTES = ['tea:2,mug', 'coffee:3', 'kettle,teapot', 'mug:6', 'tea,coffee,mug,teapot,kettle'];

/** Sends quote requests one after the other; checks each answer adds up. */
async function sendQuotes(url, count) {
  const latencies = [];
  let example;
  for (let i = 0; i < count && !stopping; i++) {
    const items = QUOTES[i % QUOTES.length];
    const started = performance.now();
    const quote = await http('GET', `${url}/quote?items=${encodeURIComponent(items)}`);
    latencies.push(performance.now() - started);
    const sum = quote.lines.reduce((s, l) => s + l.cents, 0);
    if (quote.lines.length !== items.split(',').length || sum !== quote.subtotalCents) {
      throw new DemoError(`quote for ${items} does not add up: ${JSON.stringify(quote)}`);
    }
    if (quote.subtotalCents + quote.shippingCents !== quote.totalCents) {
      throw new DemoError(`quote for ${items} has a wrong total: ${JSON.stringify(quote)}`);
    }
    example ??= { items, quote };
  }
  return { latencies, example };
}

/**
 * Posts `count` orders with at most `concurrency` requests in flight; records the ids accepted.
 * With several nsqd, a POST that fails while the producer fails over is tried again (up to 10
 * times): the order it carried may or may not have been published, as the app's error says.
 */
async function sendOrders(url, count, concurrency, progress) {
  const started = Date.now();
  let next = 0;
  const post = async (i) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await http('POST', `${url}/orders`, orderBody(i));
      } catch (err) {
        if (NSQDS === 1 || attempt === 10) throw err;
        progress.failedPosts++;
        await sleep(100);
      }
    }
  };
  const worker = async () => {
    while (next < count && !stopping) {
      const i = next++;
      const order = await post(i);
      progress.accepted.push(order.id);
      if (progress.stoppedAt && !progress.firstAfterStop) progress.firstAfterStop = Date.now();
      progress.sent++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return Date.now() - started;
}

function percentile(samples, q) {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

const BILLING = 'orders/billing';
const SHIPPING = 'orders/shipping';
const channel = (stats, name) =>
  stats?.channels?.[name] ?? { handled: 0, deliveries: 0, retried: 0, gaveUp: 0, attempts: {} };
const rdyOf = (stats, pattern) =>
  (stats?.consumers ?? [])
    .filter((c) => c.pattern === pattern)
    .flatMap((c) => c.connections)
    .reduce((sum, c) => sum + c.rdy, 0);

function progressLine(progress, stats, startedAt) {
  const billing = channel(stats, BILLING);
  const shipping = channel(stats, SHIPPING);
  const seconds = (Date.now() - startedAt) / 1000;
  const done = Math.min(billing.handled, shipping.handled);
  const rdy = rdyOf(stats, BILLING);
  return [
    `${seconds.toFixed(1).padStart(5)} s`,
    `sent ${fmt(progress.sent)}/${fmt(ORDERS)}`,
    `billing ${fmt(billing.handled)}`,
    `shipping ${fmt(shipping.handled)}`,
    `retried ${fmt(billing.retried + shipping.retried)}`,
    `dead-lettered ${stats?.deadLetters?.count ?? 0}`,
    `billing RDY ${rdy}${rdy <= 1 ? ' (backoff)' : ''}`,
    `${fmt(done / Math.max(seconds, 0.001))} orders/s`,
  ].join(' | ');
}

function showProgress(line) {
  if (tty) {
    const width = process.stdout.columns || 120;
    process.stdout.write(`\r\x1b[2K${line.slice(0, width - 1)}`);
    progressShown = true;
  } else {
    console.log(line);
  }
}

/**
 * Stops `nsqd` (SIGTERM: it writes its queues to disk) and starts it again on the same ports and
 * data dir NSQD_DOWN_MS later. Resolves with when and for how long.
 */
async function stopAndRestart(nsqd, progress) {
  const atOrder = progress.sent;
  progress.stoppedAt = Date.now();
  step(`stopping nsqd ${nsqd.tcpAddress} (the producer's) at order ${fmt(atOrder)}`);
  await nsqd.stop('SIGTERM');
  await sleep(NSQD_DOWN_MS);
  await nsqd.start();
  const downMs = Date.now() - progress.stoppedAt;
  step(`nsqd ${nsqd.tcpAddress} is back after ${(downMs / 1000).toFixed(1)} s`);
  return { atOrder, stoppedAt: progress.stoppedAt, downMs };
}

/**
 * The first trace in the app log that crosses the order flow: a PRODUCER span (POST /orders'
 * emit) and CONSUMER spans, its children, in both channels.
 */
function orderTrace(log) {
  const traces = new Map();
  for (const m of log.matchAll(/trace (\w+) span \w+ (\w+) "([^"]+)"(?: channel (\w+))?/g)) {
    const [, id, kind, name, channelName] = m;
    if (!traces.has(id)) traces.set(id, []);
    traces.get(id).push(`${name}${channelName ? ` (${channelName})` : ''} ${kind}`);
  }
  // The first with one delivery per channel: an order that needed no retry reads simplest.
  const crossing = [...traces].filter(([, spans]) => {
    const count = (text) => spans.filter((s) => s.includes(text)).length;
    return (
      count('PRODUCER') === 1 &&
      count('(billing) CONSUMER') >= 1 &&
      count('(shipping) CONSUMER') >= 1
    );
  });
  const [id, spans] = crossing.find(([, s]) => s.length === 3) ?? crossing[0] ?? [];
  return id && { id, spans: [...spans].sort((a) => (a.includes('PRODUCER') ? -1 : 1)) };
}

/** How many of `ids` some channel has not handled yet (asked in chunks: body size limits). */
async function unhandled(url, ids) {
  let count = 0;
  for (let i = 0; i < ids.length; i += 1000) {
    const chunk = ids.slice(i, i + 1000);
    const missing = await http('POST', `${url}/stats/missing`, { ids: chunk });
    for (const channelName of [BILLING, SHIPPING]) count += (missing[channelName] ?? chunk).length;
  }
  return count;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const demoStarted = Date.now();
  reapLeftovers();
  const binDir = ensureNsqBinaries({ quiet: true });
  step(`NSQ v1.3.0 binaries in ${relative(root, binDir)}`);

  const lookupd = await LookupdProcess.start();
  const nsqds = [];
  for (let i = 0; i < NSQDS; i++) nsqds.push(await NsqdProcess.start({ lookupd }));
  const nsqd = nsqds[0];
  const nsqdStartedAt = Date.now();
  const nsqadmin = await NsqadminProcess.start(lookupd);
  for (const n of nsqds) await createChannels(n.httpUrl);
  step(
    `nsqlookupd ${lookupd.httpAddress} (tcp ${lookupd.tcpAddress}), ` +
      nsqds.map((n) => `nsqd ${n.tcpAddress} (http ${n.httpAddress})`).join(', ') +
      `, nsqadmin ${nsqadmin.httpUrl}`,
  );

  if (options['skip-build']) step('build skipped (--skip-build)');
  else {
    const ms = await build();
    if (stopping) return 130;
    step(`built the library (npm run build) and the sample (tsc -p sample) in ${ms} ms`);
  }

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  await startApp({
    // The producer publishes to the first and fails over to the next; the consumers use all.
    NSQD_ADDRESS: nsqds.map((n) => n.tcpAddress).join(','),
    NSQLOOKUPD_ADDRESS: lookupd.httpAddress,
    PORT: String(port),
    HOST: '127.0.0.1',
    TRACING: '1', // the app log shows a trace crossing the order flow (sample/src/tracing.ts)
  });
  const health = await waitForHealth(url, 30_000);
  step(
    `sample app ${url} (pid ${app.pid}, log ${relative(root, appLog)}): health ${health.status}, ` +
      `${health.details.nsq.nsqd.length} nsqd connections`,
  );

  // nsqd v1.3.0 scans channels for due REQ delays (and in-flight timeouts) from a channel list it
  // refreshes every 5 s: until the first refresh after a channel was created, requeued messages
  // of that channel stay deferred. Created above at start, they are in the list after 5 s.
  const scanned = nsqdStartedAt + 5_200 - Date.now();
  if (scanned > 0) {
    step(
      `waiting ${(scanned / 1000).toFixed(1)} s until nsqd's requeue scanner lists the new channels`,
    );
    await sleep(scanned);
  }

  // One poison order first: it fails on every attempt in both channels while the burst flows.
  const poison = await http('POST', `${url}/orders`, { customer: 'mallory', poison: true });
  step(
    `sending ${fmt(ORDERS)} orders (${CONCURRENCY} at a time), 1 poison order ${poison.id.slice(0, 8)}, quotes`,
  );

  const progress = { sent: 0, accepted: [], failedPosts: 0 };
  let fault;
  const startedAt = Date.now();
  let stats;
  let sendError;
  let sendMs = 0;
  let sendingDone = false;
  const sending = Promise.all([
    sendOrders(url, ORDERS, CONCURRENCY, progress),
    sendQuotes(url, 10),
  ]).then(
    (results) => {
      sendMs = results[0];
      sendingDone = true;
      return results;
    },
    (err) => {
      sendError = err;
      sendingDone = true;
    },
  );

  const rdySamples = { total: 0, backoff: 0 };
  const poll = tty ? 100 : 200;
  let lastPrint = 0;
  const deadline = startedAt + TIMEOUT_MS;
  for (;;) {
    if (stopping) return 130;
    if (sendError) throw sendError;
    try {
      stats = await http('GET', `${url}/stats`);
    } catch (err) {
      throw new DemoError(`GET /stats failed: ${err.message}`);
    }
    const billing = channel(stats, BILLING);
    const shipping = channel(stats, SHIPPING);
    if (NSQDS > 1 && !fault && progress.sent >= ORDERS / 2) fault = stopAndRestart(nsqd, progress);
    if (billing.handled < ORDERS) {
      rdySamples.total++;
      if (rdyOf(stats, BILLING) <= 1) rdySamples.backoff++;
    }
    const complete =
      sendingDone &&
      billing.handled >= ORDERS &&
      shipping.handled >= ORDERS &&
      stats.deadLetters.count >= 2 &&
      (NSQDS === 1 || ((await fault) && (await unhandled(url, progress.accepted)) === 0));
    if (tty || Date.now() - lastPrint >= 1000 || complete) {
      showProgress(progressLine(progress, stats, startedAt));
      lastPrint = Date.now();
    }
    if (complete) break;
    if (Date.now() > deadline) {
      throw new DemoError(
        `timed out after ${TIMEOUT_MS / 1000} s: ${progress.sent} of ${ORDERS} orders sent, ` +
          `billing handled ${billing.handled}, shipping ` +
          `${shipping.handled} of ${ORDERS} orders, ${stats.deadLetters.count} of 2 dead letters ` +
          `(see ${relative(root, appLog)})`,
      );
    }
    await sleep(poll);
  }
  if (tty) process.stdout.write('\n');
  progressShown = false;
  const [, quotes] = await sending;

  const problems = [];
  const billing = channel(stats, BILLING);
  const shipping = channel(stats, SHIPPING);
  if (stats.orders.accepted !== ORDERS)
    problems.push(`the app accepted ${stats.orders.accepted} orders, not ${ORDERS}`);
  const letters = stats.deadLetters.recent.filter((l) => l.orderId === poison.id);
  const expectedBody = JSON.stringify(poison);
  const channels = letters.map((l) => `${l.topic}/${l.channel}`).sort();
  if (channels.join() !== [BILLING, SHIPPING].join())
    problems.push(`poison order dead-lettered from [${channels}], expected both channels`);
  if (!letters.every((l) => l.body === expectedBody))
    problems.push('a dead letter does not carry the poison order body unchanged');
  if (stats.deadLetters.count !== 2)
    problems.push(`${stats.deadLetters.count} dead letters, expected 2 (the poison order)`);
  const finalHealth = await fetch(`${url}/health`).then((r) => r.json());
  const metrics = await fetch(`${url}/metrics`).then((r) => r.text());
  const metric = (name) =>
    [...metrics.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'gm'))].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
  if (finalHealth.status !== 'ok') problems.push(`health is ${JSON.stringify(finalHealth)}`);
  const traced = orderTrace(readFileSync(appLog, 'utf8'));
  if (!traced) problems.push(`no trace of an order through billing and shipping in ${appLog}`);
  const missing = await unhandled(url, progress.accepted);
  if (missing !== 0) problems.push(`${missing} accepted orders not handled by both channels`);
  const faulted = fault ? await fault : undefined;

  // -------------------------------------------------------------------------------------------
  const elapsed = (stats.lastHandledAt - startedAt) / 1000;
  const deliveries = billing.deliveries + shipping.deliveries;
  const attempts = (c) =>
    Object.entries(c.attempts)
      .map(([a, n]) => `${fmt(n)} on attempt ${a}`)
      .join(', ');
  const lat = stats.latencyMs;
  const rows = [
    [
      'orders',
      `${fmt(ORDERS)} accepted over HTTP in ${(sendMs / 1000).toFixed(1)} s ` +
        `(${fmt(ORDERS / (sendMs / 1000))}/s, ${CONCURRENCY} in flight) + 1 poison order`,
    ],
    [
      'handled',
      `${BILLING} ${fmt(billing.handled)}, ${SHIPPING} ${fmt(shipping.handled)} ` +
        `(every order by both channels; ${billing.duplicates + shipping.duplicates} duplicate deliveries)`,
    ],
    ['', `${BILLING}: ${attempts(billing)}`],
    ['', `${SHIPPING}: ${attempts(shipping)}`],
    [
      'retried (REQ)',
      `${BILLING} ${fmt(billing.retried)}, ${SHIPPING} ${fmt(shipping.retried)} ` +
        `(flaky first attempts + the poison order's retries)`,
    ],
    [
      'backoff',
      `${BILLING} intake at RDY <= 1 in ${Math.round((100 * rdySamples.backoff) / Math.max(1, rdySamples.total))} % ` +
        `of ${rdySamples.total} samples while orders were pending`,
    ],
    [
      'dead-lettered',
      `${stats.deadLetters.count} to orders.dead: ` +
        letters.map((l) => `${l.channel} after ${l.attempts} attempts`).join(', ') +
        (letters.every((l) => l.body === expectedBody) ? ', body unchanged' : ', BODY CHANGED'),
    ],
    [
      'throughput',
      `${fmt(deliveries / elapsed)} messages/s handled ` +
        `(${fmt(ORDERS / elapsed)} orders/s through both channels, ${elapsed.toFixed(2)} s from the first order sent to the last handled)`,
    ],
    [
      'emit->handled',
      `p50 ${lat.p50} ms, p90 ${lat.p90} ms, p99 ${lat.p99} ms, max ${lat.max} ms ` +
        `(${BILLING} p99 ${billing.latencyMs.p99} ms, ${SHIPPING} p99 ${shipping.latencyMs.p99} ms)`,
    ],
    [
      'quotes',
      `${quotes.latencies.length} answered over NSQ request/response, ` +
        `p50 ${percentile(quotes.latencies, 0.5).toFixed(1)} ms, max ${Math.max(...quotes.latencies).toFixed(1)} ms; ` +
        `${quotes.example.items} = ${(quotes.example.quote.totalCents / 100).toFixed(2)} EUR`,
    ],
    ...(faulted
      ? [
          [
            'scale-out',
            `${NSQDS} nsqd behind nsqlookupd; at order ${fmt(faulted.atOrder)} the producer's nsqd ` +
              `${nsqd.tcpAddress} was stopped (SIGTERM) and came back ${(faulted.downMs / 1000).toFixed(1)} s later`,
          ],
          [
            '',
            (progress.firstAfterStop
              ? `producer failed over: next order accepted ${progress.firstAfterStop - faulted.stoppedAt} ms after the stop; `
              : 'no order was sent after the stop (too few --orders to see the failover); ') +
              `${progress.failedPosts} POSTs failed meanwhile and were sent again`,
          ],
          [
            '',
            `${fmt(progress.accepted.length)} orders accepted, ${missing} of them not handled by both channels` +
              ` (lost: ${missing}); duplicates are allowed (at-least-once)`,
          ],
        ]
      : []),
    ['health', `${finalHealth.status} (GET ${url}/health)`],
    [
      'metrics',
      `${fmt(metric('nsq_consumer_messages_received_total'))} received, ` +
        `${fmt(metric('nsq_consumer_messages_requeued_total'))} requeued, ` +
        `${fmt(metric('nsq_consumer_messages_dead_lettered_total'))} dead-lettered, ` +
        `${fmt(metric('nsq_producer_messages_published_total'))} published ` +
        `(GET ${url}/metrics, Prometheus text)`,
    ],
    [
      'trace',
      traced
        ? `${traced.id}: ${traced.spans.join(' -> ')} (grep ${relative(root, appLog)} for the id)`
        : 'none found',
    ],
    ['logs', `the sample app's log: ${relative(root, appLog)}`],
    [
      'nsqadmin',
      `${nsqadmin.httpUrl}${KEEP ? '' : dim('  (stopped now; --keep keeps it running)')}`,
    ],
    ['took', `${((Date.now() - demoStarted) / 1000).toFixed(1)} s in all`],
  ];
  console.log(`\n${bold('Summary')}`);
  for (const [label, text] of rows) console.log(`  ${label.padEnd(14)} ${text}`);

  if (problems.length) {
    throw new DemoError(`the run finished, but:\n  - ${problems.join('\n  - ')}`);
  }
  console.log(`\n${green('Demo OK.')}`);

  if (KEEP) {
    console.log(
      `\n${bold('Still running')} (Ctrl-C stops everything):\n` +
        `  app        ${url}  (try: curl -X POST ${url}/orders -H 'content-type: application/json' -d '{}'` +
        `; curl '${url}/quote?items=tea:2,mug'; curl ${url}/stats; curl ${url}/health; curl ${url}/metrics)\n` +
        `  nsqadmin   ${nsqadmin.httpUrl}\n` +
        `  nsqd       tcp ${nsqd.tcpAddress}, http ${nsqd.httpUrl}\n` +
        `  nsqlookupd ${lookupd.httpUrl}\n` +
        `  app log    ${appLog}`,
    );
    await new Promise((resolveKeep) => (keepWaiting = resolveKeep));
    console.log('');
  }
  return 0;
}

main().then(
  (code) => shutdown(code),
  (err) =>
    shutdown(
      1,
      red(`\nDemo failed: ${err instanceof DemoError ? err.message : (err?.stack ?? err)}`),
    ),
);
