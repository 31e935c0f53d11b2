// Helpers shared by the benchmark's orchestrator (run.mjs) and its scenario children.
// Plain Node ESM: no build step, nothing from lib/ (the library is loaded from dist/).

/** Body size of every benchmark message, in bytes. */
export const PAYLOAD_SIZE = 200;

/** Messages in flight for every consumer (NSQ maxInFlight / RDY, RabbitMQ prefetch). */
export const MAX_IN_FLIGHT = 1000;

/** The local brokers for NestJS's own transports. */
export const NATS_URL = 'nats://127.0.0.1:4222';
export const REDIS = { host: '127.0.0.1', port: 6379 };
export const RMQ_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** Outstanding emits in the "emit" scenario. */
export const OUTSTANDING = 1000;

const PAD_BASE = JSON.stringify({ id: '00000000', pad: '' }).length;
/** The padding that makes `{ id: <8 chars>, pad }` exactly PAYLOAD_SIZE bytes of JSON. */
export const PAD = 'x'.repeat(PAYLOAD_SIZE - PAD_BASE);

/** The data of message `i`: 200 bytes once JSON-encoded. */
export function payload(i) {
  return { id: String(i).padStart(8, '0'), pad: PAD };
}

const LAT_BASE = JSON.stringify({ id: '00000000', t: 1000.123, pad: '' }).length;
const LAT_PAD = 'x'.repeat(PAYLOAD_SIZE - LAT_BASE);
/** A latency probe: `t` is performance.now() at send (same process); about 200 bytes. */
export function probe(i, t) {
  return { id: String(i).padStart(8, '0'), t, pad: LAT_PAD };
}

/** Exact JSON body of message `i` (what a JSON-serializing producer would send). */
export function body(i) {
  return Buffer.from(JSON.stringify(payload(i)));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Value at quantile q (0..1) of an ascending-sorted numeric array. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return undefined;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx];
}

/** p50 / p99 / max (ms) of a list of samples (ms). */
export function summarize(samples) {
  const sorted = Float64Array.from(samples).sort();
  return {
    samples: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1] : undefined,
  };
}

export const mb = (bytes) => Math.round((bytes / 1048576) * 10) / 10;

/** Rejects after `ms` with a message naming what did not happen. */
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      timer.unref?.();
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---- nsqd HTTP API (prefill, stats, cleanup) -------------------------------------------------

/**
 * Publishes `count` messages (bodies from `makeBody(i)`) to a topic through nsqd's HTTP
 * `/mpub?binary=true`, in batches, a few requests at a time.
 */
export async function mpubHttp(httpAddress, topic, count, makeBody = body, offset = 0) {
  const BATCH = 5000;
  const batches = [];
  for (let start = 0; start < count; start += BATCH) batches.push(start);
  const url = `http://${httpAddress}/mpub?topic=${encodeURIComponent(topic)}&binary=true`;
  const send = async (start) => {
    const n = Math.min(BATCH, count - start);
    const parts = [Buffer.alloc(4)];
    parts[0].writeUInt32BE(n);
    for (let i = 0; i < n; i++) {
      const b = makeBody(offset + start + i);
      const size = Buffer.alloc(4);
      size.writeUInt32BE(b.length);
      parts.push(size, b);
    }
    const res = await fetch(url, { method: 'POST', body: Buffer.concat(parts) });
    if (!res.ok) throw new Error(`nsqd /mpub ${res.status}: ${await res.text()}`);
  };
  let next = 0;
  const worker = async () => {
    while (next < batches.length) await send(batches[next++]);
  };
  await Promise.all([worker(), worker(), worker()]);
}

/** Creates a topic (and optionally a channel) so that messages published to it are kept. */
export async function createTopic(httpAddress, topic, channel) {
  const q = `topic=${encodeURIComponent(topic)}`;
  let res = await fetch(`http://${httpAddress}/topic/create?${q}`, { method: 'POST' });
  if (!res.ok) throw new Error(`nsqd /topic/create ${res.status}: ${await res.text()}`);
  if (channel) {
    res = await fetch(
      `http://${httpAddress}/channel/create?${q}&channel=${encodeURIComponent(channel)}`,
      { method: 'POST' },
    );
    if (!res.ok) throw new Error(`nsqd /channel/create ${res.status}: ${await res.text()}`);
  }
}

/** Deletes a topic (frees nsqd memory and disk between rows); ignores a missing topic. */
export async function deleteTopic(httpAddress, topic) {
  try {
    await fetch(`http://${httpAddress}/topic/delete?topic=${encodeURIComponent(topic)}`, {
      method: 'POST',
    });
  } catch {
    // nsqd gone: nothing to clean
  }
}

/** The channel's stats (depth, in_flight_count, message_count, ...) or undefined. */
export async function channelStats(httpAddress, topic, channel) {
  const res = await fetch(
    `http://${httpAddress}/stats?format=json&topic=${encodeURIComponent(topic)}` +
      `&channel=${encodeURIComponent(channel)}`,
  );
  if (!res.ok) return undefined;
  const stats = await res.json();
  const t = (stats.topics ?? []).find((x) => x.topic_name === topic);
  return t?.channels?.find((c) => c.channel_name === channel);
}

/** The topic's depth (messages waiting before any channel), or undefined. */
export async function topicStats(httpAddress, topic) {
  const res = await fetch(
    `http://${httpAddress}/stats?format=json&topic=${encodeURIComponent(topic)}`,
  );
  if (!res.ok) return undefined;
  const stats = await res.json();
  return (stats.topics ?? []).find((x) => x.topic_name === topic);
}
