// Features negotiated in IDENTIFY (TLS, deflate, snappy, AUTH, heartbeats) carrying real traffic
// through real nsqd processes started with the flags each feature needs.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startAuthServer, type AuthServer } from '../harness/auth-server.js';
import { fileURLToPath } from 'node:url';
import { Consumer, NsqMessage, Producer, type NsqConnectionSettings } from '../../lib/core.js';
import {
  NsqdApi,
  NsqdProcess,
  stopAll,
  uniqueName,
  waitFor,
  type ClientStats,
} from '../harness/nsq.js';

const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url));
const ca = readFileSync(fixture('ca.pem'), 'utf8');
const tlsFlags = [`--tls-cert=${fixture('server.pem')}`, `--tls-key=${fixture('server.key')}`];

// Jest fails a test on any unhandled rejection, so the failure tests also prove there is none.
afterAll(stopAll);

/** nsqd's view of the clients of one topic: consumers of `channel`, and producers. */
async function clients(
  api: NsqdApi,
  topic: string,
  channel: string,
): Promise<{ consumers: ClientStats[]; producers: ClientStats[] }> {
  const res = await fetch(`${api.httpUrl}/stats?format=json&topic=${topic}`);
  const stats = (await res.json()) as { producers?: ClientStats[] };
  const ch = await api.channelStats(topic, channel);
  return { consumers: ch?.clients ?? [], producers: stats.producers ?? [] };
}

/** Whether nsqd has the topic (its /stats says `topics: null` when it has none at all). */
async function hasTopic(api: NsqdApi, topic: string): Promise<boolean> {
  return !!(await api.stats(topic)).topics?.some((t) => t.topic_name === topic);
}

/** Small text, 100 KB compressible and 100 KB random bodies, each tagged with its index. */
function mixedBodies(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const tag = Buffer.from(`#${i}:`);
    if (i % 3 === 0) return Buffer.concat([tag, Buffer.from(`small message ${i} é✓`)]);
    if (i % 3 === 1) return Buffer.concat([tag, Buffer.from(`order ${i} `.repeat(10_000))]);
    return Buffer.concat([tag, randomBytes(100 * 1024)]);
  });
}

/**
 * Publishes `bodies` with a producer and consumes them with a consumer, both with `settings`;
 * checks every body arrives once byte for byte, and that close() flushes the last FIN (its
 * handler is still running when close() is called) through whatever codec is in use.
 * Returns nsqd's client stats taken while both were connected.
 */
async function roundTrip(
  nsqd: NsqdProcess,
  settings: NsqConnectionSettings,
  bodies: Buffer[],
): Promise<{ consumers: ClientStats[]; producers: ClientStats[] }> {
  const api = new NsqdApi(nsqd.httpUrl);
  const topic = uniqueName();
  const got = new Map<number, Buffer[]>();
  let releaseLast!: () => void;
  const lastHandled = new Promise<void>((r) => (releaseLast = r));
  let lastStarted = false;
  const consumer = new Consumer(
    topic,
    'c',
    async (m: NsqMessage) => {
      const i = Number(/^#(\d+):/.exec(m.body.subarray(0, 12).toString('latin1'))![1]);
      got.set(i, [...(got.get(i) ?? []), m.body]);
      if (i === bodies.length - 1) {
        lastStarted = true;
        await lastHandled;
      }
    },
    { ...settings, nsqd: [nsqd.tcpAddress], maxInFlight: 50 },
  );
  const producer = new Producer({ ...settings, nsqd: [nsqd.tcpAddress] });
  try {
    await consumer.start();
    await Promise.all(bodies.slice(0, -1).map((b) => producer.publish(topic, b)));
    await waitFor(() => got.size === bodies.length - 1, `${bodies.length - 1} messages`, 15_000);
    await producer.publish(topic, bodies[bodies.length - 1]);
    await waitFor(() => lastStarted, 'the last message');
    const seen = await clients(api, topic, 'c');
    const closed = consumer.close();
    setTimeout(releaseLast, 100);
    await closed;
    for (const [i, body] of bodies.entries()) {
      expect(got.get(i)?.length).toBe(1);
      expect(got.get(i)![0].equals(body)).toBe(true);
    }
    expect(await api.channelStats(topic, 'c')).toMatchObject({
      depth: 0,
      in_flight_count: 0,
      requeue_count: 0,
      timeout_count: 0,
      message_count: bodies.length,
    });
    return seen;
  } finally {
    releaseLast();
    await Promise.all([consumer.close(), producer.close()]);
  }
}

/** Runs `attempt`, which must reject, and returns the error. */
async function failure(attempt: () => Promise<unknown>): Promise<Error> {
  try {
    await attempt();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

describe('TLS', () => {
  let nsqd: NsqdProcess;
  let required: NsqdProcess;
  beforeAll(async () => {
    [nsqd, required] = await Promise.all([
      NsqdProcess.start({ args: [...tlsFlags, '--deflate=true', '--snappy=true'] }),
      // tcp-https: TLS required on TCP; `true` would also refuse plain HTTP, /ping and /stats included.
      NsqdProcess.start({ args: [...tlsFlags, '--tls-required=tcp-https'] }),
    ]);
  });

  it('publishes and consumes over TLS verified with the test CA', async () => {
    const { consumers, producers } = await roundTrip(nsqd, { tls: { ca } }, mixedBodies(30));
    expect(consumers).toEqual([expect.objectContaining({ tls: true, deflate: false })]);
    expect(producers).toEqual([expect.objectContaining({ tls: true })]);
  });

  it('stacks deflate and snappy on top of TLS', async () => {
    const deflated = await roundTrip(nsqd, { tls: { ca }, deflate: true }, mixedBodies(30));
    expect(deflated.consumers).toEqual([expect.objectContaining({ tls: true, deflate: true })]);
    const snappy = await roundTrip(nsqd, { tls: { ca }, snappy: true }, mixedBodies(30));
    expect(snappy.consumers).toEqual([expect.objectContaining({ tls: true, snappy: true })]);
  });

  it('works against an nsqd that requires TLS', async () => {
    const { consumers } = await roundTrip(required, { tls: { ca } }, mixedBodies(6));
    expect(consumers).toEqual([expect.objectContaining({ tls: true })]);
  });

  it('refuses an untrusted certificate with a clear error', async () => {
    const topic = uniqueName();
    const warnings: Error[] = [];
    const consumer = new Consumer(topic, 'c', () => {}, { nsqd: [nsqd.tcpAddress], tls: true });
    consumer.on('warning', (e) => warnings.push(e));
    const err = await failure(() => consumer.start());
    expect(err.message).toMatch(/TLS/);
    expect(err.message).toMatch(/certificate/);
    expect(err.message).toContain(nsqd.tcpAddress);
    expect(warnings.map((w) => w.message)).toContainEqual(
      expect.stringMatching(/^TLS handshake with nsqd at .* failed: .*certificate/),
    );

    const producer = new Producer({ nsqd: [nsqd.tcpAddress], tls: true });
    const pubErr = await failure(() => producer.publish(topic, 'x'));
    expect(pubErr.message).toMatch(/TLS.*certificate/);
    await producer.close();
    // Nothing reached nsqd.
    expect(await hasTopic(new NsqdApi(nsqd.httpUrl), topic)).toBe(false);
  });

  it('asking for TLS from an nsqd without it fails clearly', async () => {
    const plain = await NsqdProcess.start();
    const producer = new Producer({ nsqd: [plain.tcpAddress], tls: { ca } });
    const err = await failure(() => producer.publish(uniqueName(), 'x'));
    expect(err.message).toMatch(/does not offer (it|TLS)/);
    await producer.close();
  });

  it('a client without TLS against --tls-required gets an error that says TLS', async () => {
    const topic = uniqueName();
    const producer = new Producer({ nsqd: [required.tcpAddress] });
    const pubErr = await failure(() => producer.publish(topic, 'x'));
    expect(pubErr.message).toMatch(/TLS required/);
    await producer.close();

    const warnings: Error[] = [];
    const consumer = new Consumer(topic, 'c', () => {}, { nsqd: [required.tcpAddress] });
    consumer.on('warning', (e) => warnings.push(e));
    const subErr = await failure(() => consumer.start());
    // start() only says SUB failed; the reason comes with the 'warning' event.
    expect(subErr.message).toContain(required.tcpAddress);
    expect(warnings.map((w) => w.message)).toContainEqual(
      expect.stringMatching(/E_INVALID: cannot SUB in current state \(TLS required\)/),
    );
  });
});

describe('stream compression', () => {
  let nsqd: NsqdProcess;
  beforeAll(async () => {
    nsqd = await NsqdProcess.start({ args: ['--deflate=true', '--snappy=true'] });
  });

  it('deflate carries a few hundred mixed messages, 100 KB ones included', async () => {
    const { consumers, producers } = await roundTrip(
      nsqd,
      { deflate: true, deflateLevel: 3 },
      mixedBodies(300),
    );
    expect(consumers).toEqual([expect.objectContaining({ deflate: true, snappy: false })]);
    expect(producers).toEqual([expect.objectContaining({ deflate: true })]);
  });

  it('snappy carries a few hundred mixed messages, 100 KB ones included', async () => {
    const { consumers, producers } = await roundTrip(nsqd, { snappy: true }, mixedBodies(300));
    expect(consumers).toEqual([expect.objectContaining({ snappy: true, deflate: false })]);
    expect(producers).toEqual([expect.objectContaining({ snappy: true })]);
  });

  it('asking for both deflate and snappy is a clear error', async () => {
    const producer = new Producer({ nsqd: [nsqd.tcpAddress], deflate: true, snappy: true });
    const err = await failure(() => producer.publish(uniqueName(), 'x'));
    expect(err.message).toMatch(/deflate.*snappy/);
    await producer.close();
  });
});

describe('AUTH', () => {
  const SECRET = 'open-sesame';
  let server: AuthServer;
  let requests: URLSearchParams[];
  let nsqd: NsqdProcess;
  let tlsNsqd: NsqdProcess;

  beforeAll(async () => {
    server = await startAuthServer(SECRET);
    requests = server.requests;
    [nsqd, tlsNsqd] = await Promise.all([
      NsqdProcess.start({ args: [server.flag, '--deflate=true'] }),
      NsqdProcess.start({ args: [server.flag, ...tlsFlags] }),
    ]);
  });
  afterAll(() => server.close());

  it('publishes and consumes with the right secret', async () => {
    requests.length = 0;
    const { consumers, producers } = await roundTrip(
      nsqd,
      { authSecret: SECRET, deflate: true },
      mixedBodies(12),
    );
    expect(consumers).toEqual([expect.objectContaining({ authed: true, deflate: true })]);
    expect(producers).toEqual([expect.objectContaining({ authed: true })]);
    expect(requests.map((q) => [q.get('secret'), q.get('tls')])).toContainEqual([SECRET, 'false']);
  });

  it('sends AUTH only after TLS is up', async () => {
    requests.length = 0;
    const { consumers } = await roundTrip(
      tlsNsqd,
      { authSecret: SECRET, tls: { ca } },
      mixedBodies(6),
    );
    expect(consumers).toEqual([expect.objectContaining({ authed: true, tls: true })]);
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((q) => q.get('tls') === 'true')).toBe(true);
  });

  it('a wrong secret fails with an error that names AUTH', async () => {
    const topic = uniqueName();
    const consumer = new Consumer(topic, 'c', () => {}, {
      nsqd: [nsqd.tcpAddress],
      authSecret: 'wrong',
    });
    const err = await failure(() => consumer.start());
    expect(err.message).toMatch(/AUTH.*E_AUTH_FAILED/);

    const producer = new Producer({ nsqd: [nsqd.tcpAddress], authSecret: 'wrong' });
    const pubErr = await failure(() => producer.publish(topic, 'x'));
    expect(pubErr.message).toMatch(/AUTH.*E_AUTH_FAILED/);
    await producer.close();
    expect(await hasTopic(new NsqdApi(nsqd.httpUrl), topic)).toBe(false);
  });

  it('no secret against an nsqd that requires AUTH says to set authSecret', async () => {
    const producer = new Producer({ nsqd: [nsqd.tcpAddress] });
    const err = await failure(() => producer.publish(uniqueName(), 'x'));
    expect(err.message).toMatch(/requires AUTH: set the authSecret option/);
    await producer.close();

    const consumer = new Consumer(uniqueName(), 'c', () => {}, { nsqd: [nsqd.tcpAddress] });
    const subErr = await failure(() => consumer.start());
    expect(subErr.message).toMatch(/authSecret/);
  });
});

describe('heartbeats', () => {
  let nsqd: NsqdProcess;
  beforeAll(async () => {
    nsqd = await NsqdProcess.start();
  });

  it('keeps an idle connection alive by answering heartbeats', async () => {
    const topic = uniqueName();
    const got: string[] = [];
    const events: string[] = [];
    const consumer = new Consumer(topic, 'c', (m) => void got.push(m.body.toString()), {
      nsqd: [nsqd.tcpAddress],
      heartbeatInterval: 1000,
    });
    consumer.on('disconnected', (_a, e) => events.push(`disconnected ${e?.message}`));
    consumer.on('reconnecting', () => events.push('reconnecting'));
    const producer = new Producer({ nsqd: [nsqd.tcpAddress], heartbeatInterval: 1000 });
    try {
      await consumer.start();
      await producer.connect();
      await new Promise((r) => setTimeout(r, 3500));
      await producer.publish(topic, 'after the idle');
      await waitFor(() => got.length === 1, 'the message published after 3.5 s idle');
      expect(got).toEqual(['after the idle']);
      expect(events).toEqual([]);
      expect(producer.connections()).toEqual([
        expect.objectContaining({ connected: true, lastError: undefined }),
      ]);
    } finally {
      await Promise.all([consumer.close(), producer.close()]);
    }
  });

  it('detects a silent nsqd within 2.5 heartbeats and reconnects once it is back', async () => {
    const interval = 1000;
    const api = new NsqdApi(nsqd.httpUrl);
    const topic = uniqueName();
    const got: string[] = [];
    const disconnects: { at: number; error?: Error }[] = [];
    let connects = 0;
    const consumer = new Consumer(topic, 'c', (m) => void got.push(m.body.toString()), {
      nsqd: [nsqd.tcpAddress],
      heartbeatInterval: interval,
      connectTimeout: 1000,
      maxReconnectDelay: 500,
    });
    consumer.on('connected', () => connects++);
    consumer.on('disconnected', (_a, error) => disconnects.push({ at: Date.now(), error }));
    const pid = nsqd.pid!;
    try {
      await consumer.start();
      expect(connects).toBe(1);
      const stoppedAt = Date.now();
      process.kill(pid, 'SIGSTOP');
      try {
        await waitFor(() => disconnects.length > 0, 'the disconnect', 4 * interval);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      expect(disconnects[0].at - stoppedAt).toBeLessThanOrEqual(2.5 * interval + 300);
      expect(disconnects[0].error?.message).toMatch(/heartbeats? .*missed/);
      await waitFor(() => connects === 2, 'the reconnect', 8000);
      await api.publish(topic, 'after the pause');
      await waitFor(() => got.length === 1, 'a message after the reconnect');
      expect(got).toEqual(['after the pause']);
      expect(disconnects).toHaveLength(1);
    } finally {
      process.kill(pid, 'SIGCONT');
      await consumer.close();
    }
  });
});
