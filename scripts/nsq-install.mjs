#!/usr/bin/env node
// Makes sure the NSQ v1.3.0 server binaries are in .nsq/bin/ for tests, the demo and the benchmark.
// Order: NSQ_BIN_DIR, then binaries on PATH, then a build with Go from tools/nsq (pinned module).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const NSQ_BIN_DIR = join(root, '.nsq', 'bin');
const SERVERS = ['nsqd', 'nsqlookupd', 'nsqadmin'];
const BENCH = ['bench_reader', 'bench_writer'];
const PACKAGES = {
  nsqd: 'github.com/nsqio/nsq/apps/nsqd',
  nsqlookupd: 'github.com/nsqio/nsq/apps/nsqlookupd',
  nsqadmin: 'github.com/nsqio/nsq/apps/nsqadmin',
  bench_reader: 'github.com/nsqio/nsq/bench/bench_reader',
  bench_writer: 'github.com/nsqio/nsq/bench/bench_writer',
};
const HOW_TO_GET =
  'NSQ v1.3.0 binaries are needed (nsqd, nsqlookupd, nsqadmin). Either put them on PATH, ' +
  'point NSQ_BIN_DIR at a directory that holds them (https://nsq.io/deployment/installing.html), ' +
  'or install Go >= 1.21 (https://go.dev/dl/) so that `npm run nsq:install` can build them.';

const isFile = (p) => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

function version(bin) {
  try {
    return execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

function findOnPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isFile(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/**
 * Links `target` as `binDir/name`. Nothing to do when that is already the same file: with
 * NSQ_BIN_DIR pointing at the install folder itself, removing it first would lose the binary.
 */
export function linkInto(binDir, name, target) {
  const dest = join(binDir, name);
  if (existsSync(dest) && realpathSync(dest) === realpathSync(target)) return;
  rmSync(dest, { force: true });
  symlinkSync(target, dest);
}

function findGo() {
  return findOnPath('go') ?? ['/usr/local/go/bin/go', '/usr/lib/go/bin/go'].find(isFile);
}

function build(go, names) {
  const started = Date.now();
  console.log(`nsq:install: building ${names.join(', ')} (NSQ v1.3.0) with ${go} ...`);
  execFileSync(go, ['build', '-o', NSQ_BIN_DIR + '/', ...names.map((n) => PACKAGES[n])], {
    cwd: join(root, 'tools', 'nsq'),
    stdio: 'inherit',
    env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
  });
  console.log(`nsq:install: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Returns the directory holding nsqd/nsqlookupd/nsqadmin, installing them if needed. */
export function ensureNsqBinaries({ quiet = false } = {}) {
  const log = quiet ? () => {} : console.log;
  mkdirSync(NSQ_BIN_DIR, { recursive: true });
  const given = process.env.NSQ_BIN_DIR;
  if (given) {
    const missing = SERVERS.filter((n) => !isFile(join(given, n)));
    if (missing.length) {
      throw new Error(`NSQ_BIN_DIR=${given} lacks ${missing.join(', ')}. ${HOW_TO_GET}`);
    }
    for (const n of [...SERVERS, ...BENCH]) {
      if (isFile(join(given, n))) linkInto(NSQ_BIN_DIR, n, resolve(given, n));
    }
  } else if (!SERVERS.every((n) => isFile(join(NSQ_BIN_DIR, n)))) {
    const onPath = SERVERS.map(findOnPath);
    if (onPath.every(Boolean)) {
      SERVERS.forEach((n, i) => linkInto(NSQ_BIN_DIR, n, onPath[i]));
      log(`nsq:install: using ${dirname(onPath[0])} from PATH`);
    } else {
      const go = findGo();
      if (!go) throw new Error(`nsqd was not found and Go is not installed. ${HOW_TO_GET}`);
      build(go, SERVERS);
    }
  }
  // The benchmark's Go ceiling; optional, so a failure here only warns.
  const missingBench = BENCH.filter((n) => !isFile(join(NSQ_BIN_DIR, n)));
  const go = missingBench.length ? findGo() : undefined;
  if (go) {
    try {
      build(go, missingBench);
    } catch (err) {
      console.warn(`nsq:install: could not build ${missingBench.join(', ')}: ${err.message}`);
    }
  }
  const v = version(join(NSQ_BIN_DIR, 'nsqd'));
  if (!v) throw new Error(`${join(NSQ_BIN_DIR, 'nsqd')} does not run. ${HOW_TO_GET}`);
  if (!v.includes('v1.3.')) console.warn(`nsq:install: expected nsqd v1.3.x, found "${v}"`);
  log(`nsq:install: ${v} ready in ${NSQ_BIN_DIR}`);
  return NSQ_BIN_DIR;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    ensureNsqBinaries();
  } catch (err) {
    console.error(`nsq:install failed: ${err.message}`);
    process.exit(1);
  }
}
