import { NsqConnection } from '../../lib/connection/connection.js';
// Fault suite: connections that cannot work (TLS required, untrusted certificate, wrong AUTH
// secret) and a connection that goes silent, through real Nest apps.
import { jest } from '@jest/globals';
import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { readFileSync } from 'node:fs';
import { startAuthServer, type AuthServer } from '../harness/auth-server.js';
import { fileURLToPath } from 'node:url';
import { freeze, NsqdProcess, stopAll, uniqueName, waitFor } from '../harness/nsq.js';
import { emit, failure, figure, sleep, startClient, startServer, timed } from './helpers.js';

const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url));
const ca = readFileSync(fixture('ca.pem'), 'utf8');
const tlsFlags = [`--tls-cert=${fixture('server.pem')}`, `--tls-key=${fixture('server.key')}`];

afterEach(() => jest.restoreAllMocks());
afterAll(stopAll);

/** Connection attempts to `address` made while `during` runs. */
async function connectAttempts(address: string, during: () => Promise<unknown>) {
  const connect = jest.spyOn(NsqConnection.prototype, 'connect');
  await during();
  const n = connect.mock.contexts.filter((c) => (c as NsqConnection).address === address).length;
  connect.mockRestore();
  return n;
}

function handlerFor(topic: string, got: unknown[]) {
  @Controller()
  class Handler {
    @EventPattern<string>(`${topic}/c`)
    handle(@Payload() data: unknown) {
      got.push(data);
    }
  }
  return Handler;
}

describe('TLS', () => {
  let tlsNsqd: NsqdProcess;
  let required: NsqdProcess;
  let plain: NsqdProcess;
  beforeAll(async () => {
    [tlsNsqd, required, plain] = await Promise.all([
      NsqdProcess.start({ args: tlsFlags }),
      NsqdProcess.start({ args: [...tlsFlags, '--tls-required=tcp-https'] }),
      NsqdProcess.start(),
    ]);
  });

  it('nsqd requires TLS, the app has none: a clear error, retries with backoff, no crash loop', async () => {
    const topic = uniqueName('tlsreq');
    const got: unknown[] = [];
    // Only that nsqd: listen() fails with the reason.
    const onlyBad = await timed(() =>
      startServer([handlerFor(topic, got)], { nsqd: [required.tcpAddress] }),
    );
    // Beside a working nsqd: the app runs, the bad one is retried with growing delays.
    const errors: string[] = [];
    let app: Awaited<ReturnType<typeof startServer>>['app'] | undefined;
    const attempts = await connectAttempts(required.tcpAddress, async () => {
      ({ app } = await startServer(
        [handlerFor(topic, got)],
        { nsqd: [plain.tcpAddress, required.tcpAddress] },
        (server) => server.on('error', (e) => errors.push(e.message)),
      ));
      await sleep(3000);
    });
    const { client, close } = await startClient({ nsqd: [plain.tcpAddress] });
    await emit(client, topic, 'works beside it');
    await waitFor(() => got.length === 1, 'the message via the working nsqd');

    // The producer side: each emit rejects at once with the reason; nsqd is not hammered.
    const bad = await startClient({ nsqd: [required.tcpAddress] });
    const emits: { ms: number; message?: string }[] = [];
    const producerAttempts = await connectAttempts(required.tcpAddress, async () => {
      for (let k = 0; k < 20; k++) {
        const r = await timed(() => emit(bad.client, topic, k));
        emits.push({ ms: r.ms, message: r.error?.message });
        await sleep(100);
      }
    });

    figure('TLS required, client without TLS', {
      listenError: onlyBad.error?.message,
      listenFailedAfterMs: Math.round(onlyBad.ms),
      consumerAttemptsIn3s: attempts,
      consumerError: errors[0],
      emits: emits.length,
      emitsRejected: emits.filter((e) => e.message).length,
      slowestRejectMs: Math.round(Math.max(...emits.map((e) => e.ms))),
      producerAttemptsIn2s: producerAttempts,
      emitError: emits[0].message,
    });
    expect(onlyBad.error?.message).toMatch(/TLS required/);
    expect(onlyBad.error?.message).toContain(required.tcpAddress);
    expect(errors[0]).toMatch(/TLS required/);
    // 250 ms doubling: attempts at ~0, 0.25, 0.75, 1.75 s (+/- 20 %) in 3 s.
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(6);
    expect(emits.every((e) => e.message && /TLS required/.test(e.message))).toBe(true);
    expect(Math.max(...emits.map((e) => e.ms))).toBeLessThan(500);
    // Not one connection per emit: 250 ms doubling (at most 1 s) between attempts.
    expect(producerAttempts).toBeLessThanOrEqual(6);
    await bad.close();
    await close();
    await app?.close();
  }, 30_000);

  it('an untrusted certificate: a clear TLS error on both sides', async () => {
    const topic = uniqueName('tlsca');
    const listen = await timed(() =>
      startServer([handlerFor(topic, [])], { nsqd: [tlsNsqd.tcpAddress], tls: true }),
    );
    const { client, close } = await startClient({ nsqd: [tlsNsqd.tcpAddress], tls: true });
    const emitted = await timed(() => emit(client, topic, 'x'));
    // The same settings with the CA work: the failure is the certificate, nothing else.
    const got: unknown[] = [];
    const good = await startServer([handlerFor(topic, got)], {
      nsqd: [tlsNsqd.tcpAddress],
      tls: { ca },
    });
    const trusted = await startClient({ nsqd: [tlsNsqd.tcpAddress], tls: { ca } });
    await emit(trusted.client, topic, 'over TLS');
    await waitFor(() => got.length === 1, 'a message over TLS with the CA');

    figure('TLS with an untrusted certificate', {
      listenError: listen.error?.message,
      listenFailedAfterMs: Math.round(listen.ms),
      emitError: emitted.error?.message,
      emitRejectedAfterMs: Math.round(emitted.ms),
      withCa: got,
    });
    expect(listen.error?.message).toMatch(/TLS handshake with nsqd at .* failed: .*certificate/);
    expect(emitted.error?.message).toMatch(/TLS handshake with nsqd at .* failed: .*certificate/);
    expect(listen.ms).toBeLessThan(2000);
    expect(emitted.ms).toBeLessThan(2000);
    await Promise.all([close(), trusted.close(), good.app.close()]);
  });
});

describe('AUTH with a wrong secret', () => {
  const SECRET = 'open-sesame';
  let auth: AuthServer;
  let nsqd: NsqdProcess;
  beforeAll(async () => {
    auth = await startAuthServer(SECRET);
    nsqd = await NsqdProcess.start({ args: [auth.flag] });
  });
  afterAll(() => auth.close());

  it('says AUTH on both sides; the right secret works', async () => {
    const topic = uniqueName('auth');
    const listen = await timed(() =>
      startServer([handlerFor(topic, [])], { nsqd: [nsqd.tcpAddress], authSecret: 'wrong' }),
    );
    const { client, close } = await startClient({ nsqd: [nsqd.tcpAddress], authSecret: 'wrong' });
    const emitted = await timed(() => emit(client, topic, 'x'));
    const got: unknown[] = [];
    const good = await startServer([handlerFor(topic, got)], {
      nsqd: [nsqd.tcpAddress],
      authSecret: SECRET,
    });
    const right = await startClient({ nsqd: [nsqd.tcpAddress], authSecret: SECRET });
    await emit(right.client, topic, 'authorized');
    await waitFor(() => got.length === 1, 'a message with the right secret');

    figure('AUTH with a wrong secret', {
      listenError: listen.error?.message,
      emitError: emitted.error?.message,
      withRightSecret: got,
    });
    expect(listen.error?.message).toMatch(/AUTH failed: .*E_AUTH_FAILED/);
    expect(emitted.error?.message).toMatch(/AUTH failed: .*E_AUTH_FAILED/);
    await Promise.all([close(), right.close(), good.app.close()]);
  });

  it('no secret at all: the error says to set authSecret', async () => {
    const err = await failure(() =>
      startServer([handlerFor(uniqueName('auth'), [])], { nsqd: [nsqd.tcpAddress] }),
    );
    expect(err.message).toMatch(/requires AUTH: set the authSecret option/);
  });
});

describe('a connection that goes silent', () => {
  it('is detected within 2 heartbeat intervals and replaced, on both sides', async () => {
    const interval = 1000;
    const nsqd = await NsqdProcess.start();
    const topic = uniqueName('silent');
    const got: unknown[] = [];
    const consumerDown: { at: number; message?: string }[] = [];
    const consumerUp: number[] = [];
    const { app } = await startServer(
      [handlerFor(topic, got)],
      { nsqd: [nsqd.tcpAddress], heartbeatInterval: interval, maxReconnectDelay: 500 },
      (server) => {
        server.on('disconnected', (_a, _p, e) =>
          consumerDown.push({ at: Date.now(), message: e?.message }),
        );
        server.on('connected', () => consumerUp.push(Date.now()));
      },
    );
    const { client, close } = await startClient({
      nsqd: [nsqd.tcpAddress],
      heartbeatInterval: interval,
    });
    const producerDown: number[] = [];
    client.on('disconnected', () => producerDown.push(Date.now()));
    await emit(client, topic, 'before');
    await waitFor(() => got.length === 1, 'a message before');

    const pid = nsqd.pid!;
    await sleep(interval * 0.6); // not just after a heartbeat
    const stoppedAt = Date.now();
    await freeze(pid);
    let duringSilence: Awaited<ReturnType<typeof timed>>;
    try {
      duringSilence = await timed(() => emit(client, topic, 'during'));
      await waitFor(
        () => consumerDown.length > 0 && producerDown.length > 0,
        'both sides to notice',
        3 * interval,
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const resumedAt = Date.now();
    await waitFor(() => consumerUp.some((t) => t > resumedAt), 'the consumer reconnects', 5000);
    await emit(client, topic, 'after');
    await waitFor(() => got.includes('after'), 'a message after');

    const consumerDetectMs = consumerDown[0].at - stoppedAt;
    const producerDetectMs = producerDown[0] - stoppedAt;
    figure('silent connection (SIGSTOP nsqd), heartbeat 1 s', {
      consumerDetectedAfterMs: consumerDetectMs,
      producerDetectedAfterMs: producerDetectMs,
      emitDuringSilenceRejectedAfterMs: Math.round(duringSilence.ms),
      emitDuringSilenceError: duringSilence.error?.message,
      consumerReplacedAfterResumeMs: consumerUp.find((t) => t > resumedAt)! - resumedAt,
      consumerError: consumerDown[0].message,
      handled: got,
    });
    // nsqd sends a heartbeat every interval: the last byte came at most 1 interval before the
    // stop, so 2 intervals of silence are over at most 2 intervals after it (+ timer slack on
    // a loaded 2-core machine).
    for (const ms of [consumerDetectMs, producerDetectMs]) {
      expect(ms).toBeGreaterThanOrEqual(interval - 50);
      expect(ms).toBeLessThanOrEqual(2 * interval + 250);
    }
    expect(consumerDown[0].message).toMatch(
      /sent nothing for \d+ ms \(2 heartbeats of 1000 ms missed\)/,
    );
    expect(duringSilence.error?.message).toMatch(/lost before it acknowledged/);
    expect(duringSilence.ms).toBeLessThanOrEqual(2 * interval + 250);
    expect(consumerDown).toHaveLength(1);
    expect(got).toContain('after');
    await close();
    await app.close();
  }, 30_000);
});
