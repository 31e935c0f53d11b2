#!/usr/bin/env node
// `npm ci` in a side folder with its own package.json and package-lock.json (bench/peers,
// test/nest11), only when its node_modules is missing or was installed from another lock.
//
//   node scripts/npm-ci-dir.mjs test/nest11
//
// The folders set legacy-peer-deps (their .npmrc, and here): the Nest, rxjs and reflect-metadata
// their packages need as peers must come from the repository's node_modules or from the folder's
// own pinned dependencies, never from a copy npm adds on its own.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const lockHash = (dir) =>
  createHash('sha256')
    .update(readFileSync(join(dir, 'package-lock.json')))
    .digest('hex');

/** Runs `npm ci --prefix dir` unless dir/node_modules was installed from dir's current lock. */
export function npmCiDir(dir, log = (line) => process.stderr.write(`${line}\n`)) {
  const stamp = join(dir, 'node_modules', '.installed-lock-sha256');
  const want = lockHash(dir);
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === want) return;
  log(`${dir}: node_modules missing or stale, npm ci`);
  execFileSync(
    'npm',
    ['ci', '--prefix', dir, '--legacy-peer-deps', '--no-audit', '--no-fund', '--loglevel=error'],
    { stdio: ['ignore', process.stderr, process.stderr] },
  );
  writeFileSync(stamp, `${want}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dirs = process.argv.slice(2);
  if (!dirs.length) throw new Error('usage: node scripts/npm-ci-dir.mjs <dir>...');
  for (const dir of dirs) npmCiDir(resolve(dir));
}
