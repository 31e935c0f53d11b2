// Fault suite: a frozen nsqd (SIGSTOP: alive to TCP, silent to the protocol) under a producer
// with a healthy nsqd beside it; dead and black-hole addresses listed by nsqlookupd.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { jest } from '@jest/globals';
import { NsqConnection } from '../../lib/connection/connection.js';
import { Consumer, Producer } from '../../lib/core.js';
import { freeze, NsqdApi, NsqdProcess, stopAll, uniqueName } from '../harness/nsq.js';
import { figure, sleep } from './helpers.js';

afterAll(stopAll);

describe('a frozen nsqd', () => {
  it('emits fail over to the healthy nsqd within publishTimeout, and the frozen one is tried last', async () => {
    const first = await NsqdProcess.start();
    const second = await NsqdProcess.start();
    const producer = new Producer({
      nsqd: [first.tcpAddress, second.tcpAddress],
      publishTimeout: 2000,
    });
    const topic = uniqueName('frozen');
    // The topic made beforehand, so that the first publish is quick even on a busy machine.
    await new NsqdApi(first.httpUrl).createTopic(topic);
    await new NsqdApi(second.httpUrl).createTopic(topic);
    await producer.publish(topic, 'before');
    // The nsqd the producer is connected to (whichever answered first) is the one frozen.
    const tookIt = await new NsqdApi(first.httpUrl).topicStats(topic);
    const [frozen, healthy] = tookIt?.message_count === 1 ? [first, second] : [second, first];
    try {
      await freeze(frozen.pid!);
      const stoppedAt = Date.now();
      const during = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          producer.publish(topic, `m${i}`).then(
            () => 'ok',
            (e: Error & { code?: string }) => e.code ?? e.message,
          ),
        ),
      );
      const failedAfterMs = Date.now() - stoppedAt;
      const next = Date.now();
      await producer.publish(topic, 'after');
      const nextMs = Date.now() - next;
      figure('frozen nsqd (SIGSTOP), publishTimeout 2 s', {
        emitsWhileFrozen: during.length,
        outcomes: [...new Set(during)],
        allSettledAfterMs: failedAfterMs,
        nextEmitMs: nextMs,
      });
      // None waits past publishTimeout (plus the tick it is checked in); none hangs.
      expect(failedAfterMs).toBeLessThan(3500);
      expect(new Set(during)).toEqual(new Set(['ETIMEDOUT']));
      // The next publish goes to the healthy nsqd at once, not to the frozen one first.
      expect(nextMs).toBeLessThan(500);
      expect((await new NsqdApi(healthy.httpUrl).topicStats(topic))?.message_count).toBe(1);
    } finally {
      process.kill(frozen.pid!, 'SIGCONT');
      await producer.close(100);
    }
  });
});

describe('addresses nsqlookupd lists that do not work', () => {
  let lookupd: HttpServer;
  let lookupdAddress: string;
  let producers: { broadcast_address: string; tcp_port: number }[] = [];
  let blackHole: Server;
  const held: Socket[] = [];

  beforeAll(async () => {
    lookupd = createHttpServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ producers })),
    );
    await new Promise<void>((r) => lookupd.listen(0, '127.0.0.1', r));
    lookupdAddress = `127.0.0.1:${(lookupd.address() as AddressInfo).port}`;
    // Accepts connections and never answers: an nsqd hung before IDENTIFY.
    blackHole = createServer((socket) => void held.push(socket));
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    held.forEach((s) => s.destroy());
    await new Promise((r) => blackHole.close(r));
    lookupd.closeAllConnections();
    await new Promise((r) => lookupd.close(r));
  });

  it('a refused address is retried with backoff, not at every poll; a black hole does not hold listen() up', async () => {
    const nsqd = await NsqdProcess.start();
    const port = (a: string) => Number(a.split(':')[1]);
    producers = [
      { broadcast_address: '127.0.0.1', tcp_port: 1 }, // refused
      { broadcast_address: '127.0.0.1', tcp_port: (blackHole.address() as AddressInfo).port },
      { broadcast_address: '127.0.0.1', tcp_port: port(nsqd.tcpAddress) },
    ];
    const attempts = new Map<string, number>();
    const connect = NsqConnection.prototype.connect;
    const spy = jest.spyOn(NsqConnection.prototype, 'connect').mockImplementation(function (
      this: NsqConnection,
    ) {
      attempts.set(this.address, (attempts.get(this.address) ?? 0) + 1);
      return connect.call(this);
    });
    const consumer = new Consumer(uniqueName('dead'), 'c', () => undefined, {
      lookupd: [lookupdAddress],
      lookupdPollInterval: 100,
      connectTimeout: 2000,
      maxReconnectDelay: 60_000,
    });
    try {
      const started = Date.now();
      await consumer.start();
      const listenMs = Date.now() - started;
      await sleep(3000); // 30 polls
      const refused = attempts.get('127.0.0.1:1') ?? 0;
      figure('dead addresses from nsqlookupd, 100 ms polls for 3 s', {
        listenMs,
        refusedAttempts: refused,
        blackHoleAttempts: attempts.get(`127.0.0.1:${producers[1].tcp_port}`),
      });
      expect(listenMs).toBeLessThan(1000);
      // Backoff from 250 ms doubling: about 4 tries in 3 s, not 30.
      expect(refused).toBeLessThanOrEqual(6);
    } finally {
      spy.mockRestore();
      await consumer.close(0);
    }
  });
});
