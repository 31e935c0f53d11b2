#!/usr/bin/env node
// npm run test:docker (as root): brings sample/docker-compose.yml up for real and drives it.
//
// No image registry is needed. A private dockerd (own socket and data root in a temp dir, vfs
// storage, no iptables, no docker0 bridge) gets stand-in base images built FROM scratch:
//   nsqio/nsq:v1.3.0        the static NSQ v1.3.0 binaries of .nsq/bin at /nsqd, /nsqlookupd,
//                           /nsqadmin (as in the official image), a static busybox for sh/wget
//   node:20-bookworm-slim   the host's node binary and the shared libraries ldd lists, a `node` user
// The build and prod-deps stages of sample/Dockerfile run on the host (their WORKDIR/COPY/RUN
// steps, the same npm commands, in a temp dir: a container here has no registry); the runtime
// stage is built as it is in sample/Dockerfile from their results. Then docker-compose (1.29,
// the Debian package) runs the real compose file: the order flow through the published ports,
// `docker-compose stop app` while billing handlers are slow (the drain), the two-nsqd profile.
// Everything is torn down at the end: the stack, dockerd, its containerd, the temp dir.
//
// Needs: root, Linux, docker.io + docker-compose + busybox-static (Debian; installed with apt-get
// when missing), the npm registry (npm ci on the host), Go or NSQ binaries (npm run nsq:install).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNsqBinaries } from './nsq-install.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PROJECT = 'nestjs-nsq-sample-test';
const COMPOSE_FILE = join(root, 'sample', 'docker-compose.yml');
const APP_IMAGE = 'nestjs-nsq-sample';
const CHARGE_DELAY_MS = 4_000;
const started = Date.now();
const timings = {};

const log = (line) =>
  console.log(`[docker-test ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);

function fail(message) {
  throw new Error(message);
}

function check(ok, message) {
  if (!ok) fail(`check failed: ${message}`);
  log(`ok: ${message}`);
}

async function timed(name, fn) {
  const t = Date.now();
  try {
    return await fn();
  } finally {
    timings[name] = (Date.now() - t) / 1000;
    log(`${name}: ${timings[name].toFixed(1)} s`);
  }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function run(cmd, args, { env, cwd, quiet = false, allowFail = false, input } = {}) {
  const res = spawnSync(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    input,
    maxBuffer: 256 * 1024 * 1024,
  });
  const out = (res.stdout ?? '') + (res.stderr ?? '');
  if (res.status !== 0 && !allowFail) {
    fail(`${cmd} ${args.join(' ')} exited ${res.status ?? res.signal}:\n${out.slice(-4000)}`);
  }
  if (!quiet && out.trim()) console.log(out.trimEnd());
  return { status: res.status, out, stdout: res.stdout ?? '' };
}

const which = (name) =>
  ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin']
    .map((d) => join(d, name))
    .find((p) => existsSync(p));

// ---------------------------------------------------------------------------------------------
// Prerequisites

function prerequisites() {
  if (process.platform !== 'linux') fail('The docker stack test runs on Linux only.');
  if (process.getuid?.() !== 0) {
    fail('The docker stack test starts its own dockerd, which needs root: run it as root.');
  }
  const wanted = { dockerd: 'docker.io', 'docker-compose': 'docker-compose' };
  const haveBusybox = () => existsSync('/bin/busybox') && isStatic('/bin/busybox');
  const missing = Object.entries(wanted)
    .filter(([bin]) => !which(bin))
    .map(([, pkg]) => pkg);
  if (!haveBusybox()) missing.push('busybox-static');
  if (missing.length) {
    if (!which('apt-get')) {
      fail(
        `Missing ${missing.join(', ')}. Install Docker Engine with docker-compose ` +
          '(Debian/Ubuntu: apt-get install docker.io docker-compose busybox-static).',
      );
    }
    log(`installing ${missing.join(' ')} with apt-get`);
    const t = Date.now();
    run('apt-get', ['update', '-q'], { quiet: true });
    run('apt-get', ['install', '-y', '-q', ...missing], {
      env: { DEBIAN_FRONTEND: 'noninteractive' },
      quiet: true,
    });
    timings['apt-get install'] = (Date.now() - t) / 1000;
    log(`apt-get install: ${timings['apt-get install'].toFixed(1)} s`);
  }
  if (!haveBusybox()) fail('/bin/busybox is not a static busybox (apt-get install busybox-static)');
  // The docker CLI that comes with dockerd (another one on PATH may be newer than the daemon).
  const dockerd = which('dockerd');
  const docker = [join(dirname(dockerd), 'docker'), '/usr/bin/docker'].find((p) => existsSync(p));
  if (!docker) fail('docker CLI not found next to dockerd');
  return { dockerd, docker, compose: which('docker-compose') };
}

function isStatic(file) {
  const res = spawnSync('ldd', [file], { encoding: 'utf8' });
  return /not a dynamic executable|statically linked/.test((res.stdout ?? '') + (res.stderr ?? ''));
}

// ---------------------------------------------------------------------------------------------
// The private dockerd

async function startDockerd(tools, dir) {
  const sock = join(dir, 'docker.sock');
  const args = [
    '--host',
    `unix://${sock}`,
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'exec'),
    '--pidfile',
    join(dir, 'dockerd.pid'),
    '--storage-driver=vfs',
    '--iptables=false',
    '--ip-masq=false',
    '--bridge=none',
  ];
  const out = join(dir, 'dockerd.log');
  const fd = (await import('node:fs')).openSync(out, 'a');
  const proc = spawn(tools.dockerd, args, { stdio: ['ignore', fd, fd], detached: false });
  const env = {
    DOCKER_HOST: `unix://${sock}`,
    DOCKER_BUILDKIT: '0',
    COMPOSE_DOCKER_CLI_BUILD: '0',
  };
  for (let i = 0; i < 120; i++) {
    if (proc.exitCode !== null) fail(`dockerd exited:\n${readFileSync(out, 'utf8').slice(-3000)}`);
    const res = spawnSync(tools.docker, ['version', '--format', '{{.Server.Version}}'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    if (res.status === 0) {
      log(`dockerd ${res.stdout.trim()} up on ${sock} (pid ${proc.pid})`);
      return { proc, env, log: out };
    }
    await sleep(500);
  }
  fail(`dockerd did not answer:\n${readFileSync(out, 'utf8').slice(-3000)}`);
}

async function stopDockerd(daemon, dir) {
  if (!daemon?.proc || daemon.proc.exitCode !== null) return;
  daemon.proc.kill('SIGTERM');
  for (let i = 0; i < 60 && daemon.proc.exitCode === null; i++) await sleep(500);
  if (daemon.proc.exitCode === null) {
    log('dockerd did not stop in 30 s: SIGKILL');
    daemon.proc.kill('SIGKILL');
    await sleep(1000);
  }
  // Anything dockerd or its containerd left behind that still refers to the temp dir.
  for (const line of spawnSync('pgrep', ['-af', dir], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)) {
    const pid = Number(line.split(' ')[0]);
    if (pid && pid !== process.pid) {
      log(`killing leftover ${line}`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

function unmountUnder(dir) {
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m) => m && m.startsWith(dir))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}

// ---------------------------------------------------------------------------------------------
// Stand-in base images

function buildNsqImage(docker, env, dir) {
  const ctx = join(dir, 'ctx-nsq');
  mkdirSync(ctx, { recursive: true });
  const bin = ensureNsqBinaries({ quiet: true });
  for (const name of ['nsqd', 'nsqlookupd', 'nsqadmin']) {
    const file = realpathSync(join(bin, name));
    if (!isStatic(file)) fail(`${file} is not static (build it with CGO_ENABLED=0)`);
    copyFileSync(file, join(ctx, name));
  }
  copyFileSync('/bin/busybox', join(ctx, 'busybox'));
  writeFileSync(
    join(ctx, 'Dockerfile'),
    `# Stand-in for nsqio/nsq:v1.3.0: binaries in /usr/local/bin linked at /, busybox, WORKDIR /data.
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /usr/local/bin /data /etc /tmp && chmod 1777 /tmp && echo 'hosts: files dns' > /etc/nsswitch.conf"]
COPY nsqd nsqlookupd nsqadmin /usr/local/bin/
RUN ln -s /usr/local/bin/nsqd /usr/local/bin/nsqlookupd /usr/local/bin/nsqadmin /
EXPOSE 4150 4151 4160 4161 4170 4171
WORKDIR /data
`,
  );
  run(docker, ['build', '-q', '-t', 'nsqio/nsq:v1.3.0', ctx], { env });
}

function buildNodeImage(docker, env, dir) {
  const ctx = join(dir, 'ctx-node');
  const node = realpathSync(process.execPath);
  const files = new Set([node]);
  for (const m of execFileSync('ldd', [node], { encoding: 'utf8' }).matchAll(/(\/\S+) \(0x/g)) {
    files.add(m[1]);
  }
  for (const file of files) {
    const dest = join(ctx, 'rootfs', file === node ? '/usr/local/bin/node' : file);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(realpathSync(file), dest);
  }
  mkdirSync(join(ctx, 'rootfs', 'etc'), { recursive: true });
  mkdirSync(join(ctx, 'rootfs', 'tmp'), { recursive: true });
  mkdirSync(join(ctx, 'rootfs', 'home', 'node'), { recursive: true });
  writeFileSync(
    join(ctx, 'rootfs', 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n',
  );
  writeFileSync(join(ctx, 'rootfs', 'etc', 'group'), 'root:x:0:\nnode:x:1000:\n');
  writeFileSync(join(ctx, 'rootfs', 'etc', 'nsswitch.conf'), 'hosts: files dns\n');
  writeFileSync(
    join(ctx, 'Dockerfile'),
    `# Stand-in for node:20-bookworm-slim: the host's node (${process.version}) and its libraries.
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin NODE_VERSION=${process.version.slice(1)}
CMD ["node"]
`,
  );
  run(docker, ['build', '-q', '-t', 'node:20-bookworm-slim', ctx], { env });
  run(
    docker,
    [
      'run',
      '--rm',
      '-u',
      'node',
      'node:20-bookworm-slim',
      'node',
      '-e',
      'console.log("node " + process.version + " as uid " + process.getuid())',
    ],
    { env },
  );
}

// ---------------------------------------------------------------------------------------------
// sample/Dockerfile: its build and prod-deps stages on the host, its runtime stage in docker

function parseDockerfile(text) {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const stages = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [, op, rest] = line.match(/^(\S+)\s+(.*)$/) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [, image, name] = rest.match(/^(\S+)(?:\s+AS\s+(\S+))?$/i) ?? [];
      stages.push({ image, name, lines: [], instructions: [] });
    }
    stages.at(-1).lines.push(raw);
    stages.at(-1).instructions.push({ op: op.toUpperCase(), rest });
  }
  return stages;
}

/** Runs a stage's WORKDIR /app, COPY (from the context) and RUN steps in `dir` (as /app). */
function runStageOnHost(stage, dir) {
  log(`stage ${stage.name} on the host in ${dir}`);
  mkdirSync(dir, { recursive: true });
  for (const { op, rest } of stage.instructions) {
    if (op === 'FROM') continue;
    if (op === 'WORKDIR') {
      if (rest !== '/app') fail(`stage ${stage.name}: WORKDIR ${rest} (the test expects /app)`);
    } else if (op === 'COPY') {
      if (rest.startsWith('--')) fail(`stage ${stage.name}: COPY ${rest} is not supported here`);
      const parts = rest.split(/\s+/);
      const dest = parts.pop();
      for (const src of parts) {
        const target = dest.endsWith('/')
          ? join(dir, dest, src.split('/').pop())
          : parts.length > 1
            ? fail(`COPY of several sources to ${dest}`)
            : join(dir, dest);
        mkdirSync(dirname(target), { recursive: true });
        cpSync(join(root, src), target, { recursive: true });
      }
    } else if (op === 'RUN') {
      log(`  RUN ${rest}`);
      run('sh', ['-c', rest], { cwd: dir, quiet: true });
    } else if (op !== 'ENV' && op !== 'ARG') {
      fail(`stage ${stage.name}: ${op} is not supported by the test`);
    }
  }
}

function buildAppImage(docker, env, dir) {
  const stages = parseDockerfile(readFileSync(join(root, 'sample', 'Dockerfile'), 'utf8'));
  const runtime = stages.at(-1);
  const ctx = join(dir, 'ctx-app');
  const lines = [
    '# Test-only: stand-ins for the stages run on the host, then the real runtime stage.',
  ];
  const fromStages = new Map();
  for (const { op, rest } of runtime.instructions) {
    const m = op === 'COPY' && rest.match(/^--from=(\S+)\s+(\S+)\s+\S+$/);
    if (m) fromStages.set(m[1], [...(fromStages.get(m[1]) ?? []), m[2]]);
  }
  for (const [name, paths] of fromStages) {
    const stage = stages.find((s) => s.name === name) ?? fail(`no stage ${name}`);
    const hostDir = join(dir, 'stage-' + name);
    timings[`stage ${name} (host)`] = 0;
    const t = Date.now();
    runStageOnHost(stage, hostDir);
    timings[`stage ${name} (host)`] = (Date.now() - t) / 1000;
    lines.push(`FROM scratch AS ${name}`);
    for (const p of paths) {
      if (!p.startsWith('/app/')) fail(`COPY --from=${name} ${p}: outside /app`);
      const rel = p.slice('/app/'.length);
      cpSync(join(hostDir, rel), join(ctx, name, rel), { recursive: true });
      lines.push(`COPY ${name}/${rel} ${p}`);
    }
  }
  lines.push(...runtime.lines);
  writeFileSync(join(ctx, 'Dockerfile'), lines.join('\n') + '\n');
  run(docker, ['build', '-q', '-t', APP_IMAGE, ctx], { env });
}

/** The classic builder (no BuildKit) honours the root .dockerignore: what the context holds. */
function checkDockerignore(docker, env, dir) {
  const ctx = join(dir, 'ctx-ignore');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(
    join(ctx, 'Dockerfile'),
    'FROM nsqio/nsq:v1.3.0\nCOPY . /ctx\nRUN du -sk /ctx && ls -A /ctx && ' +
      'test ! -e /ctx/node_modules && test ! -e /ctx/.git && test ! -e /ctx/dist && ' +
      'test ! -e /ctx/.nsq && test -e /ctx/lib && test -e /ctx/sample/src && ' +
      'test -e /ctx/package-lock.json && test -e /ctx/sample/docker/prod-package.mjs\n',
  );
  const res = run(docker, ['build', '--no-cache', '-f', join(ctx, 'Dockerfile'), root], {
    env,
    quiet: true,
  });
  const sent = res.out.match(/Sending build context to Docker daemon\s+(\S+)/)?.[1];
  check(Boolean(sent), `classic builder: build context of the repository root is ${sent}`);
  const kb = res.out.match(/^(\d+)\s+\/ctx$/m)?.[1];
  check(true, `.dockerignore: the context holds ${kb} kB, no node_modules/.git/dist/.nsq`);
}

// ---------------------------------------------------------------------------------------------
// The stack

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

async function http(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) fail(`${method} ${url}: ${res.status} ${text}`);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function waitFor(what, fn, timeoutMs = 120_000) {
  const until = Date.now() + timeoutMs;
  let last;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(500);
  }
  fail(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

function containerHealth(docker, env) {
  const ids = run(docker, ['ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`], {
    env,
    quiet: true,
  })
    .stdout.split('\n')
    .filter(Boolean);
  if (!ids.length) return {};
  const out = run(
    docker,
    [
      'inspect',
      '-f',
      '{{index .Config.Labels "com.docker.compose.service"}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}',
      ...ids,
    ],
    { env, quiet: true },
  ).stdout;
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' ')),
  );
}

async function waitHealthy(docker, env, services) {
  return waitFor(`${services.join(', ')} healthy`, () => {
    const h = containerHealth(docker, env);
    return services.every((s) => h[s] === 'healthy') && h;
  });
}

const nsqdChannel = (stats, topic, channel) =>
  stats.topics
    .find((t) => t.topic_name === topic)
    ?.channels.find((c) => c.channel_name === channel);

async function driveStack(tools, env, ports) {
  const composeEnv = {
    ...env,
    COMPOSE_PROJECT_NAME: PROJECT,
    APP_PORT: String(ports.app),
    NSQD_TCP_PORT: String(ports.nsqdTcp),
    NSQD_HTTP_PORT: String(ports.nsqdHttp),
    NSQD2_TCP_PORT: String(ports.nsqd2Tcp),
    NSQD2_HTTP_PORT: String(ports.nsqd2Http),
    NSQLOOKUPD_TCP_PORT: String(ports.lookupdTcp),
    NSQLOOKUPD_HTTP_PORT: String(ports.lookupdHttp),
    NSQADMIN_PORT: String(ports.admin),
    CHARGE_DELAY_MS: String(CHARGE_DELAY_MS),
  };
  const compose = (args, opts = {}) =>
    run(tools.compose, ['-f', COMPOSE_FILE, ...args], { env: composeEnv, ...opts });
  const app = `http://127.0.0.1:${ports.app}`;
  const nsqd = `http://127.0.0.1:${ports.nsqdHttp}`;

  compose(['config', '-q']);
  check(true, 'docker-compose 1.29 accepts sample/docker-compose.yml (config -q)');

  await timed('stack up (healthy)', async () => {
    compose(['up', '-d', '--no-build'], { quiet: true });
    const h = await waitHealthy(tools.docker, env, ['nsqlookupd', 'nsqd', 'nsqadmin', 'app']);
    log(`health: ${JSON.stringify(h)}`);
  });
  run(tools.docker, ['ps', '--format', '{{.Names}}\t{{.Status}}\t{{.Ports}}'], { env });

  // Published ports, from the host.
  check(
    (await http('GET', `http://127.0.0.1:${ports.lookupdHttp}/ping`)) === 'OK',
    'nsqlookupd /ping on its published port',
  );
  check((await http('GET', `${nsqd}/ping`)) === 'OK', 'nsqd /ping on its published port');
  check(
    (await http('GET', `http://127.0.0.1:${ports.admin}/ping`)) === 'OK',
    'nsqadmin /ping on its published port',
  );
  const health = await http('GET', `${app}/health`);
  check(health.status === 'ok', `app /health: ${JSON.stringify(health.info ?? health)}`);

  // The order flow.
  const ORDERS = 30;
  const ids = [];
  await timed('order flow', async () => {
    for (let i = 0; i < ORDERS; i++) {
      const order = await http('POST', `${app}/orders`, {
        customer: `c${i}`,
        items: [{ sku: 'tea', qty: 1 + (i % 3) }],
      });
      ids.push(order.id);
    }
    await waitFor('every order handled by billing and shipping', async () => {
      const missing = await http('POST', `${app}/stats/missing`, { ids });
      return (
        Object.keys(missing).length >= 2 &&
        Object.values(missing).every((m) => m.length === 0) &&
        missing
      );
    });
  });
  const stats = await http('GET', `${app}/stats`);
  check(
    stats.orders.accepted === ORDERS &&
      stats.channels['orders/billing']?.handled === ORDERS &&
      stats.channels['orders/shipping']?.handled === ORDERS,
    `/stats: ${ORDERS} accepted, billing handled ${stats.channels['orders/billing']?.handled} ` +
      `(retried ${stats.channels['orders/billing']?.retried}), shipping handled ${stats.channels['orders/shipping']?.handled}`,
  );
  const quote = await http('GET', `${app}/quote?items=tea:2,mug`);
  check(
    Array.isArray(quote.lines) && quote.lines.length === 2,
    `GET /quote over NSQ: ${JSON.stringify(quote).slice(0, 120)}`,
  );

  // The drain: stop the app while billing handlers are in their CHARGE_DELAY_MS payment call.
  const DRAIN_ORDERS = 10;
  for (let i = 0; i < DRAIN_ORDERS; i++) {
    ids.push(
      (await http('POST', `${app}/orders`, { customer: `d${i}`, items: [{ sku: 'mug', qty: 1 }] }))
        .id,
    );
  }
  const inFlight = await waitFor(
    'billing handlers in flight',
    async () => {
      const s = await http('GET', `${app}/stats`);
      const billing = s.consumers.find((c) => c.pattern === 'orders/billing');
      return billing?.inFlight > 0 && billing.inFlight;
    },
    10_000,
  );
  log(
    `billing has ${inFlight} messages in flight, each ${CHARGE_DELAY_MS} ms in its payment call: docker-compose stop app`,
  );
  const stopStart = Date.now();
  compose(['stop', 'app'], { quiet: true });
  const stopMs = Date.now() - stopStart;
  timings['docker-compose stop app (drain)'] = stopMs / 1000;
  const state = JSON.parse(
    run(tools.docker, ['inspect', '-f', '{{json .State}}', `${PROJECT}_app_1`], {
      env,
      quiet: true,
    }).stdout,
  );
  const logs = run(tools.docker, ['logs', '--tail', '30', `${PROJECT}_app_1`], { env, quiet: true })
    .out.split('\n')
    .map((l) => l.replace(ANSI, ''));
  const before = logs.find((l) => /SIGTERM: draining the consumers/.test(l));
  const after = logs.find((l) => /SIGTERM: drained and closed/.test(l));
  console.log([before, after].filter(Boolean).join('\n'));
  check(
    Boolean(before && after),
    'app log: SIGTERM, draining the consumers ... drained and closed',
  );
  const count = (line) => Number(line?.match(/orders\/billing=(\d+)/)?.[1] ?? NaN);
  check(
    count(after) > count(before),
    `billing finished ${count(after) - count(before)} orders during the drain (${count(before)} -> ${count(after)})`,
  );
  check(
    stopMs < 40_000 && state.ExitCode !== 137 && !state.OOMKilled,
    `stopped in ${(stopMs / 1000).toFixed(1)} s (stop_grace_period 40 s), exit code ${state.ExitCode} (not SIGKILL)`,
  );
  const nsqdStats = await http('GET', `${nsqd}/stats?format=json&topic=orders`);
  const billing = nsqdStats.topics
    ? nsqdChannel(nsqdStats, 'orders', 'billing')
    : nsqdChannel(nsqdStats.data ?? nsqdStats, 'orders', 'billing');
  check(
    billing &&
      billing.in_flight_count === 0 &&
      billing.timeout_count === 0 &&
      billing.clients.length === 0,
    `nsqd orders/billing after the stop: in flight ${billing?.in_flight_count}, timed out ${billing?.timeout_count}, ` +
      `messages ${billing?.message_count}, requeued ${billing?.requeue_count}, depth ${billing?.depth}, clients ${billing?.clients.length}`,
  );

  // Two nsqd behind nsqlookupd (profile two-nsqd): the app publishes to nsqd (nsqd2 is its
  // failover), consumes from both; orders published straight to nsqd2 from the host reach it
  // through nsqlookupd.
  await timed('two-nsqd profile up (healthy)', async () => {
    compose(['--profile', 'two-nsqd', 'up', '-d', '--no-build'], {
      quiet: true,
      env: { ...composeEnv, NSQD_ADDRESS: 'nsqd:4150,nsqd2:4150', LOOKUPD_POLL_INTERVAL: '2000' },
    });
    await waitHealthy(tools.docker, env, ['nsqlookupd', 'nsqd', 'nsqd2', 'nsqadmin', 'app']);
  });
  const producers = await http('GET', `http://127.0.0.1:${ports.lookupdHttp}/nodes`);
  const names = producers.producers.map((p) => `${p.broadcast_address}:${p.tcp_port}`).sort();
  check(
    names.join(',') === 'nsqd2:4150,nsqd:4150' || names.join(',') === 'nsqd:4150,nsqd2:4150',
    `nsqlookupd lists ${names.join(', ')}`,
  );
  const more = [];
  for (let i = 0; i < 10; i++) {
    more.push(
      (await http('POST', `${app}/orders`, { customer: `p${i}`, items: [{ sku: 'tea', qty: 1 }] }))
        .id,
    );
  }
  for (let i = 0; i < 10; i++) {
    const id = `nsqd2-${i}`;
    more.push(id);
    await http('POST', `http://127.0.0.1:${ports.nsqd2Http}/pub?topic=orders`, {
      id,
      createdAt: Date.now(),
      customer: 'host',
      items: [{ sku: 'mug', qty: 1 }],
    });
  }
  await timed('two-nsqd flow', () =>
    waitFor(
      'orders from nsqd and nsqd2 handled by billing and shipping',
      async () => {
        const missing = await http('POST', `${app}/stats/missing`, { ids: more });
        return (
          Object.keys(missing).length >= 2 && Object.values(missing).every((m) => m.length === 0)
        );
      },
      90_000,
    ),
  );
  check(
    true,
    `20 orders (10 via the app to nsqd, 10 from the host to nsqd2) handled by both channels`,
  );

  await timed('docker-compose down', async () => {
    compose(['--profile', 'two-nsqd', 'down', '-v', '--remove-orphans'], { quiet: true });
  });
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const tools = await timed('prerequisites', () => prerequisites());
  log(`dockerd ${tools.dockerd}, docker ${tools.docker}, docker-compose ${tools.compose}`);
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-nsq-docker-'));
  let daemon;
  let failed = false;
  try {
    daemon = await timed('dockerd start', () => startDockerd(tools, dir));
    const env = daemon.env;
    await timed('image nsqio/nsq:v1.3.0 (stand-in)', () => buildNsqImage(tools.docker, env, dir));
    await timed('image node:20-bookworm-slim (stand-in)', () =>
      buildNodeImage(tools.docker, env, dir),
    );
    await timed('.dockerignore check', () => checkDockerignore(tools.docker, env, dir));
    await timed('image nestjs-nsq-sample', () => buildAppImage(tools.docker, env, dir));
    run(tools.docker, ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}\t{{.Size}}'], { env });
    const ports = {};
    for (const k of [
      'app',
      'nsqdTcp',
      'nsqdHttp',
      'nsqd2Tcp',
      'nsqd2Http',
      'lookupdTcp',
      'lookupdHttp',
      'admin',
    ]) {
      ports[k] = await freePort();
    }
    await driveStack(tools, env, ports);
  } catch (err) {
    failed = true;
    console.error(`[docker-test] FAILED: ${err.stack ?? err}`);
    if (daemon) {
      spawnSync(tools.compose, ['-f', COMPOSE_FILE, 'logs', '--tail', '40'], {
        env: { ...process.env, ...daemon.env, COMPOSE_PROJECT_NAME: PROJECT },
        stdio: 'inherit',
      });
      spawnSync(
        tools.compose,
        ['-f', COMPOSE_FILE, '--profile', 'two-nsqd', 'down', '-v', '-t', '5'],
        {
          env: { ...process.env, ...daemon.env, COMPOSE_PROJECT_NAME: PROJECT },
          stdio: 'inherit',
        },
      );
    }
  } finally {
    await timed('dockerd stop', () => stopDockerd(daemon, dir));
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
    const left = spawnSync('pgrep', ['-af', 'dockerd|containerd'], {
      encoding: 'utf8',
    }).stdout.trim();
    if (left) console.log(`[docker-test] still running (not started by this test?):\n${left}`);
    else log('no dockerd or containerd left running; temp dir removed');
    timings.total = (Date.now() - started) / 1000;
    console.log('[docker-test] timings (s):');
    for (const [k, v] of Object.entries(timings)) console.log(`  ${k.padEnd(40)} ${v.toFixed(1)}`);
  }
  if (failed) process.exit(1);
  log('PASS');
}

await main();
