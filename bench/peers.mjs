// The alternatives the benchmark measures against (nest-nsq-transport, nsqjs, the NATS, Redis
// and RabbitMQ clients) are not dependencies of the package: they live in bench/peers, with
// their own package.json and package-lock.json, and `npm run bench` installs them there on
// demand. Nest, rxjs and reflect-metadata come from the repository's own node_modules (peers
// that need them, like nest-nsq-transport, find them by walking up the directory tree).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { npmCiDir } from '../scripts/npm-ci-dir.mjs';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'peers');

/** Runs `npm ci --prefix bench/peers` unless bench/peers/node_modules matches the lock. */
export const ensurePeers = () => npmCiDir(dir);

const peerRequire = createRequire(join(dir, 'package.json'));

/** `require(name)` resolved from bench/peers. */
export const requirePeer = (name) => peerRequire(name);

/** `import(name)` resolved from bench/peers. */
export const importPeer = (name) => import(pathToFileURL(peerRequire.resolve(name)).href);

/**
 * Nest's own transports (NATS, Redis, RabbitMQ) load their client library by name from
 * @nestjs/microservices' location, where bench/peers is not on the resolution path. Nest keeps
 * the libraries it loaded in one cache keyed by name (`loadPackage` / `loadPackageSync` in
 * @nestjs/common/internal); putting the bench/peers copy there first makes Nest use it.
 */
export async function preloadForNest(names) {
  const { tryLoadPackage } = await import('@nestjs/common/internal');
  for (const name of names) {
    const loaded = await tryLoadPackage(name, () => importPeer(name));
    if (!loaded) throw new Error(`${name} could not be loaded from bench/peers`);
  }
}
