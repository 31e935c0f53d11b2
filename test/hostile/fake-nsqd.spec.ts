// What only a hostile or broken nsqd does, scripted: oversized frames, a compression bomb,
// features nobody asked for, garbage IDENTIFY answers, ignoring RDY, never acknowledging, odd
// answers. Each must end with a clear error and bounded memory, never a hang or a crash.
import { deflateRawSync } from 'node:zlib';
import { Consumer, NsqBackpressureError, Producer } from '../../lib/core.js';
import {
  FRAME,
  IDENTITY,
  frame,
  messageFrame,
  startFakeNsqd,
  type FakeNsqd,
} from '../harness/fake-nsqd.js';
import { NsqdProcess, stopAll, uniqueName, waitFor } from '../harness/nsq.js';

const fakes: FakeNsqd[] = [];
async function fake(script: Parameters<typeof startFakeNsqd>[0]): Promise<FakeNsqd> {
  const f = await startFakeNsqd(script);
  fakes.push(f);
  return f;
}
afterAll(async () => {
  await Promise.all(fakes.map((f) => f.close()));
  await stopAll();
});

/** Starts a consumer on `address`; resolves with the first warning or disconnect error. */
async function firstConsumerError(
  address: string,
  options: object = {},
  handler: () => unknown = () => undefined,
): Promise<{ error: Error; consumer: Consumer }> {
  const consumer = new Consumer('t', 'c', handler, {
    nsqd: [address],
    maxReconnectDelay: 60_000,
    ...options,
  });
  const error = new Promise<Error>((resolve) => {
    consumer.on('warning', resolve);
    consumer.on('disconnected', (_a, e) => e && resolve(e));
    consumer.start().catch(resolve);
  });
  const first = await error;
  await consumer.close(0);
  return { error: first, consumer };
}

describe('hostile nsqd', () => {
  it('a frame header declaring 2 GiB drops the connection at the header, naming the address', async () => {
    const nsqd = await fake({
      command: (line, conn) => {
        if (!line.startsWith('SUB')) return;
        conn.send(frame(FRAME.response, 'OK'));
        const huge = Buffer.alloc(8);
        huge.writeInt32BE(2 ** 31 - 1, 0);
        huge.writeInt32BE(FRAME.message, 4);
        conn.send(Buffer.concat([huge, Buffer.alloc(64 * 1024)]));
      },
    });
    const heapBefore = process.memoryUsage().heapUsed;
    const { error } = await firstConsumerError(nsqd.address);
    expect(error.message).toMatch(
      new RegExp(`from nsqd at ${nsqd.address}: NSQ frame of \\d+ bytes is over the limit`),
    );
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('a huge handshake frame fails at its header, without buffering or spinning', async () => {
    const nsqd = await fake({
      identify: (conn) => {
        const head = Buffer.alloc(8);
        head.writeInt32BE(1024 ** 3, 0);
        head.writeInt32BE(FRAME.response, 4);
        conn.send(head);
        // Then a slow trickle that the old parser regrew its buffer for, chunk by chunk.
        const timer = setInterval(() => conn.socket.writable && conn.send(Buffer.alloc(1024)), 1);
        conn.socket.on('close', () => clearInterval(timer));
      },
    });
    const started = Date.now();
    const { error } = await firstConsumerError(nsqd.address);
    expect(error.message).toMatch(/NSQ frame of 1073741828 bytes is over the limit/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a deflate bomb is cut off at the frame limit, not inflated whole', async () => {
    // 256 MiB of zeros inside one declared frame: 0.25 MiB on the wire.
    const body = Buffer.alloc(256 * 1024 * 1024);
    const bombFrame = Buffer.alloc(8);
    bombFrame.writeInt32BE(body.length + 4, 0);
    bombFrame.writeInt32BE(FRAME.message, 4);
    // After the IDENTIFY answer everything is compressed: the deflate OK, then the bomb.
    const compressed = deflateRawSync(
      Buffer.concat([frame(FRAME.response, 'OK'), bombFrame, body]),
    );
    const nsqd = await fake({
      identify: (conn) => {
        conn.send(frame(FRAME.response, JSON.stringify({ ...IDENTITY, deflate: true })));
        conn.send(compressed);
      },
    });
    const rssBefore = process.memoryUsage().rss;
    const { error } = await firstConsumerError(nsqd.address, { deflate: true });
    expect(error.message).toMatch(/over the limit of \d+ bytes/);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(128 * 1024 * 1024);
  });

  it.each([
    ['tls_v1', { tls_v1: true }],
    ['deflate', { deflate: true }],
    ['snappy', { snappy: true }],
  ])('refuses %s turned on without being asked for', async (feature, answer) => {
    const nsqd = await fake({
      identify: (conn) =>
        conn.send(frame(FRAME.response, JSON.stringify({ ...IDENTITY, ...answer }))),
    });
    const { error } = await firstConsumerError(nsqd.address);
    expect(error.message).toContain(
      `nsqd at ${nsqd.address} turned on ${feature}, which this client did not ask for`,
    );
    const producer = new Producer({ nsqd: [nsqd.address] });
    await expect(producer.publish('t', 'x')).rejects.toThrow(/did not ask for/);
    await producer.close();
  });

  it.each([
    ['garbage', 'not json at all'],
    ['null', 'null'],
    ['an empty object', '{}'],
    ['a string max_rdy_count', '{"max_rdy_count":"many"}'],
  ])('an IDENTIFY answer of %s is a protocol error naming the address', async (_, answer) => {
    const nsqd = await fake({ identify: (conn) => conn.send(frame(FRAME.response, answer)) });
    const { error } = await firstConsumerError(nsqd.address);
    expect(error.message).toMatch(new RegExp(`nsqd at ${nsqd.address} answered IDENTIFY with`));
    // No RDY NaN or anything else was sent.
    expect(nsqd.connections.flatMap((c) => c.commands)).toEqual([]);
  });

  it('an nsqd that ignores RDY cannot flood the consumer: the connection is dropped', async () => {
    let pushed = 0;
    const nsqd = await fake({
      command: (line, conn) => {
        if (line.startsWith('SUB')) conn.send(frame(FRAME.response, 'OK'));
        if (line.startsWith('RDY') && pushed === 0) {
          const burst = Array.from({ length: 20_000 }, () => messageFrame('flood'));
          pushed = burst.length;
          conn.send(Buffer.concat(burst));
        }
      },
    });
    const handled: unknown[] = [];
    const { error } = await firstConsumerError(
      nsqd.address,
      { maxInFlight: 5 },
      () => new Promise((r) => setTimeout(() => r(handled.push(1)), 50)),
    );
    expect(error.message).toMatch(/far beyond RDY 5: dropping the connection/);
    // At most twice RDY plus slack were ever taken in, of 20 000 pushed.
    expect(handled.length).toBeLessThanOrEqual(2 * 5 + 16);
  });

  it('a producer facing an nsqd that never acknowledges: backpressure at once, then publishTimeout and failover', async () => {
    const hung = await fake({ command: () => undefined }); // heartbeats aside, silence
    const good = await NsqdProcess.start();
    const producer = new Producer({
      nsqd: [hung.address, good.tcpAddress],
      maxPendingMessages: 1000,
      publishTimeout: 500,
    });
    try {
      const first = Array.from({ length: 1000 }, (_, i) =>
        producer.publish('hung', `m${i}`).then(
          () => 'ok',
          (e: Error & { code?: string }) => e.code,
        ),
      );
      const started = Date.now();
      const refused = await producer.publish('hung', 'one too many').catch((e: Error) => e);
      expect(refused).toBeInstanceOf(NsqBackpressureError);
      expect((refused as Error).message).toMatch(/maxPendingMessages 1000/);
      expect(Date.now() - started).toBeLessThan(50);
      // The hung connection is dropped after publishTimeout; those publishes fail as ambiguous.
      const outcomes = await Promise.all(first);
      expect(new Set(outcomes)).toEqual(new Set(['ETIMEDOUT']));
      expect(Date.now() - started).toBeLessThan(3000);
      // The next publishes go to the healthy nsqd, not back to the hung one first.
      const next = Date.now();
      await producer.publish('hung', 'after');
      expect(Date.now() - next).toBeLessThan(1000);
      expect(producer.connections().find((c) => c.address === good.tcpAddress)?.connected).toBe(
        true,
      );
    } finally {
      await producer.close(100);
    }
  });

  it('an answer other than OK to a publish drops the connection with a protocol error', async () => {
    const nsqd = await fake({
      command: (line, conn) => {
        if (line.startsWith('PUB')) conn.send(frame(FRAME.response, 'WHATEVER'));
      },
    });
    const producer = new Producer({ nsqd: [nsqd.address] });
    await expect(producer.publish('t', 'x')).rejects.toThrow(
      /answered "WHATEVER" to a publish, not OK|may or may not have been published/,
    );
    await producer.close();
  });
});

describe('nsqd with --min-output-buffer-timeout above 25 ms', () => {
  it("a consumer and a producer still connect; the consumer falls back to nsqd's timeout", async () => {
    const nsqd = await NsqdProcess.start({ args: ['--min-output-buffer-timeout=100ms'] });
    const topic = uniqueName('obt');
    const got: string[] = [];
    const warnings: string[] = [];
    const consumer = new Consumer(topic, 'c', (m) => void got.push(m.body.toString()), {
      nsqd: [nsqd.tcpAddress],
    });
    consumer.on('warning', (e) => warnings.push(e.message));
    await consumer.start();
    const producer = new Producer({ nsqd: [nsqd.tcpAddress] });
    await producer.publish(topic, 'through');
    await waitFor(() => got.length === 1, 'the message');
    expect(warnings.join('\n')).toMatch(/refused outputBufferTimeout 25 ms .* using nsqd's \d+ ms/);
    await producer.close();
    await consumer.close();
  });

  it("a msgTimeout nsqd refuses fails with nsqd's reason, naming the value", async () => {
    const nsqd = await NsqdProcess.start({ args: ['--max-msg-timeout=10s'] });
    const consumer = new Consumer(uniqueName('mt'), 'c', () => undefined, {
      nsqd: [nsqd.tcpAddress],
      msgTimeout: 60_000,
    });
    await expect(consumer.start()).rejects.toThrow(
      /IDENTIFY failed: nsqd .* answered E_BAD_BODY: IDENTIFY msg timeout \(60000\) is invalid/,
    );
  });
});
