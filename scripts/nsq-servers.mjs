// @ts-check
// Real nsqd / nsqlookupd / nsqadmin processes on free loopback ports with temp data dirs.
// Used by the test harness and the demo; plain JS so that jest's global setup can load it as is.
import { spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  statSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Pid files of every process started here, so a later run can reap what a crash left. */
export const RUN_DIR = join(root, '.nsq', 'run');

/** @returns {string} the directory holding the NSQ binaries */
export function binDir() {
  const dir = process.env.NSQ_BIN_DIR ?? join(root, '.nsq', 'bin');
  try {
    statSync(join(dir, 'nsqd'));
  } catch {
    throw new Error(
      `nsqd not found in ${dir}. Run \`npm run nsq:install\` (needs Go, or NSQ v1.3.0 on PATH, ` +
        `or NSQ_BIN_DIR pointing at the binaries).`,
    );
  }
  return dir;
}

/** @returns {Promise<number>} a TCP port free on 127.0.0.1 */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (srv.address());
      srv.close(() => resolvePort(port));
    });
  });
}

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a process on ports just found free; another process may take one of them first, so
 * that case is retried on new ports.
 * @template {NsqServerProcess} T
 * @param {() => Promise<T>} create
 * @returns {Promise<T>}
 */
async function onFreePorts(create) {
  for (let attempt = 1; ; attempt++) {
    const server = await create();
    try {
      return await server.start();
    } catch (err) {
      await server.destroy();
      if (attempt >= 3 || !/address already in use/.test(String(err))) throw err;
    }
  }
}

/** @type {Set<NsqServerProcess>} */
const live = new Set();

/** One NSQ server process that can be stopped and started again on the same ports and data dir. */
class NsqServerProcess {
  /** @type {import('node:child_process').ChildProcess | undefined} */
  child = undefined;
  output = '';

  /**
   * @param {string} name binary name
   * @param {number} httpPort
   */
  constructor(name, httpPort) {
    this.name = name;
    this.httpPort = httpPort;
  }

  get httpAddress() {
    return `127.0.0.1:${this.httpPort}`;
  }
  get httpUrl() {
    return `http://127.0.0.1:${this.httpPort}`;
  }
  get pid() {
    return this.child?.pid;
  }
  get running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** @returns {string[]} */
  args() {
    return [];
  }

  /** Starts the process and waits until it answers /ping. */
  async start() {
    if (this.running) return this;
    const child = spawn(join(binDir(), this.name), this.args(), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.output = '';
    const keep = (/** @type {Buffer} */ chunk) => {
      this.output = (this.output + chunk.toString()).slice(-8192);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    mkdirSync(RUN_DIR, { recursive: true });
    const pidFile = join(RUN_DIR, String(child.pid));
    writeFileSync(pidFile, `${this.name} ${process.pid}`);
    child.once('exit', () => rmSync(pidFile, { force: true }));
    live.add(this);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`${this.name} exited at start (${child.exitCode}): ${this.output}`);
      }
      try {
        if ((await fetch(`${this.httpUrl}/ping`)).ok) return this;
      } catch {
        // not listening yet
      }
      await sleep(20);
    }
    throw new Error(`${this.name} did not answer /ping within 15 s: ${this.output}`);
  }

  /**
   * Stops the process: SIGTERM lets nsqd persist its queues, SIGKILL does not.
   * @param {NodeJS.Signals} [signal]
   */
  async stop(signal = 'SIGTERM') {
    const child = this.child;
    live.delete(this);
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** @param {NodeJS.Signals} [signal] */
  async restart(signal = 'SIGTERM') {
    await this.stop(signal);
    return this.start();
  }

  /** Stops the process and removes what it left on disk. */
  async destroy() {
    await this.stop();
  }
}

export class LookupdProcess extends NsqServerProcess {
  /**
   * @param {number} tcpPort
   * @param {number} httpPort
   */
  constructor(tcpPort, httpPort) {
    super('nsqlookupd', httpPort);
    this.tcpPort = tcpPort;
  }
  static start() {
    return onFreePorts(async () => new LookupdProcess(await freePort(), await freePort()));
  }
  get tcpAddress() {
    return `127.0.0.1:${this.tcpPort}`;
  }
  /** @override */
  args() {
    return [
      `--tcp-address=${this.tcpAddress}`,
      `--http-address=${this.httpAddress}`,
      '--broadcast-address=127.0.0.1',
    ];
  }
}

/**
 * @typedef {object} NsqdOptions
 * @property {LookupdProcess} [lookupd] registers with this nsqlookupd
 * @property {string[]} [args] extra nsqd flags, e.g. `--msg-timeout=2s`
 */

export class NsqdProcess extends NsqServerProcess {
  /**
   * @param {number} tcpPort
   * @param {number} httpPort
   * @param {number} httpsPort
   * @param {NsqdOptions} options
   */
  constructor(tcpPort, httpPort, httpsPort, options) {
    super('nsqd', httpPort);
    this.tcpPort = tcpPort;
    this.httpsPort = httpsPort;
    this.options = options;
    this.dataDir = mkdtempSync(join(tmpdir(), 'nsqd-'));
  }
  /** @param {NsqdOptions} [options] */
  static start(options = {}) {
    return onFreePorts(
      async () => new NsqdProcess(await freePort(), await freePort(), await freePort(), options),
    );
  }
  get tcpAddress() {
    return `127.0.0.1:${this.tcpPort}`;
  }
  /** @override */
  args() {
    const { lookupd, args = [] } = this.options;
    return [
      `--tcp-address=${this.tcpAddress}`,
      `--http-address=${this.httpAddress}`,
      `--https-address=127.0.0.1:${this.httpsPort}`,
      `--data-path=${this.dataDir}`,
      '--broadcast-address=127.0.0.1',
      ...(lookupd ? [`--lookupd-tcp-address=${lookupd.tcpAddress}`] : []),
      ...args,
    ];
  }
  /** @override */
  async destroy() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export class NsqadminProcess extends NsqServerProcess {
  /**
   * @param {number} httpPort
   * @param {LookupdProcess} lookupd
   */
  constructor(httpPort, lookupd) {
    super('nsqadmin', httpPort);
    this.lookupd = lookupd;
  }
  /** @param {LookupdProcess} lookupd */
  static start(lookupd) {
    return onFreePorts(async () => new NsqadminProcess(await freePort(), lookupd));
  }
  /** @override */
  args() {
    return [
      `--http-address=${this.httpAddress}`,
      `--lookupd-http-address=${this.lookupd.httpAddress}`,
    ];
  }
}

/** Stops every process this module started in this process. */
export async function stopAll() {
  await Promise.all([...live].map((p) => p.destroy()));
}

process.once('exit', () => {
  for (const p of live) {
    try {
      if (p.pid) process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Kills NSQ processes whose starting process is gone (a crashed run). @returns {number} how many */
export function reapLeftovers() {
  let files;
  try {
    files = readdirSync(RUN_DIR);
  } catch {
    return 0;
  }
  let killed = 0;
  for (const f of files) {
    const owner = Number(readFileSync(join(RUN_DIR, f), 'utf8').split(' ')[1]);
    if (owner && isAlive(owner)) continue;
    try {
      process.kill(Number(f), 'SIGKILL');
      killed++;
    } catch {
      // already gone
    }
    rmSync(join(RUN_DIR, f), { force: true });
  }
  return killed;
}

/** @param {number} pid */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
