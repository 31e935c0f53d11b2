// Live publisher for brokers that do not keep messages for a subscriber that is not there yet
// (NATS core, Redis pub/sub). Forked by a "consume" scenario child once its microservice
// listens; publishes Nest's event packet `{ pattern, data }` as fast as it can while staying at
// most WINDOW messages ahead of what the consumer reported (so broker buffers stay bounded and
// nothing is dropped as a slow consumer). Runs in its own process so it does not share the
// consumer's event loop.
import { payload } from './common.mjs';
import { importPeer } from './peers.mjs';

const { connect } = await importPeer('@nats-io/transport-node');
const { Redis } = await importPeer('ioredis');

const WINDOW = 20_000;
const cfg = JSON.parse(process.env.BENCH_PUBLISHER);

let handled = 0;
let sent = 0;
let wake;

process.on('message', (m) => {
  if (typeof m?.handled === 'number') handled = m.handled;
  wake?.();
});
process.on('disconnect', () => process.exit(0));

const packet = (i) => JSON.stringify({ pattern: cfg.subject, data: payload(i) });
const waitForProgress = () => new Promise((r) => (wake = r));

async function viaNats() {
  const nc = await connect({ servers: cfg.url });
  const enc = new TextEncoder();
  process.send({ ready: true });
  while (sent < cfg.n) {
    while (sent < cfg.n && sent - handled < WINDOW) {
      nc.publish(cfg.subject, enc.encode(packet(sent++)));
      if (sent % 1000 === 0) await nc.flush();
    }
    await nc.flush();
    if (sent < cfg.n) await waitForProgress();
  }
  await nc.flush();
  return () => nc.close();
}

async function viaRedis() {
  const redis = new Redis({ ...cfg.redis, lazyConnect: true });
  await redis.connect();
  process.send({ ready: true });
  while (sent < cfg.n) {
    const batch = [];
    while (sent < cfg.n && sent - handled < WINDOW && batch.length < 1000)
      batch.push(redis.publish(cfg.subject, packet(sent++)));
    await Promise.all(batch);
    if (sent < cfg.n && sent - handled >= WINDOW) await waitForProgress();
  }
  return () => redis.quit();
}

try {
  const close = cfg.kind === 'nats' ? await viaNats() : await viaRedis();
  process.send({ published: sent });
  await close();
} catch (err) {
  process.send({ error: String(err?.stack ?? err) });
  process.exitCode = 1;
}
