// What a hostile or broken nsqlookupd can make a consumer do, bounded: answers capped in size
// and checked in shape (errors name the lookupd), producers without a usable address ignored,
// connections capped, repeated warnings held back.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Consumer } from '../../lib/core.js';
import { lookupTopic } from '../../lib/lookup/lookupd.js';
import { startFakeNsqd, type FakeNsqd } from '../harness/fake-nsqd.js';

let server: Server;
let address: string;
let answer: (res: import('node:http').ServerResponse) => void;

beforeAll(async () => {
  server = createServer((_req, res) => answer(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const json = (body: unknown) => (res: import('node:http').ServerResponse) =>
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));

describe('hostile nsqlookupd', () => {
  it('an answer over 1 MiB is refused without reading it whole', async () => {
    answer = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const more = () => {
        while (sent < 200 && res.write(chunk)) sent++;
        if (sent < 200) res.once('drain', more);
        else res.end();
      };
      more();
    };
    const rss = process.memoryUsage().rss;
    await expect(lookupTopic(address, 't')).rejects.toThrow(
      new RegExp(`nsqlookupd at ${address} answered more than 1048576 bytes`),
    );
    expect(process.memoryUsage().rss - rss).toBeLessThan(100 * 1024 * 1024);
  });

  it.each([
    ['not JSON', (res: import('node:http').ServerResponse) => res.writeHead(200).end('<html>')],
    ['a wrong shape', json({ producers: 'many' })],
    ['no producers at all', json({ channels: [] })],
  ])('%s is an error that names the lookupd', async (_, reply) => {
    answer = reply;
    await expect(lookupTopic(address, 't')).rejects.toThrow(
      new RegExp(`nsqlookupd at ${address} answered /lookup without a producers list`),
    );
  });

  it('producers without a valid address and port are left out and reported', async () => {
    answer = json({
      producers: [
        { broadcast_address: '127.0.0.1', tcp_port: 4150 },
        { broadcast_address: '127.0.0.1' },
        { broadcast_address: 'bad host!', tcp_port: 1 },
        { broadcast_address: '127.0.0.1', tcp_port: 70000 },
        null,
      ],
    });
    const result = await lookupTopic(address, 't');
    expect(result.addresses).toEqual(['127.0.0.1:4150']);
    expect(result.rejected).toHaveLength(4);
  });

  it('a lookupd listing 2 000 producers: connections capped, warnings held back', async () => {
    const fakes: FakeNsqd[] = await Promise.all([1, 2, 3].map(() => startFakeNsqd()));
    const ports = fakes.map((f) => Number(f.address.split(':')[1]));
    // Three that answer, then refused ports on loopback (1 000 distinct addresses in all).
    answer = json({
      producers: Array.from({ length: 2000 }, (_, i) => ({
        broadcast_address: '127.0.0.1',
        tcp_port: i < 3 ? ports[i] : 1 + (i % 1000),
      })),
    });
    const warnings: string[] = [];
    const consumer = new Consumer('t', 'c', () => undefined, {
      lookupd: [address],
      maxNsqdConnections: 10,
      maxInFlight: 10,
      lookupdPollInterval: 200,
    });
    consumer.on('warning', (e) => warnings.push(e.message));
    try {
      await consumer.start();
      await new Promise((r) => setTimeout(r, 1000));
      // Never more than 10 nsqd at once, whatever lookupd lists.
      expect(consumer.connections().length).toBeLessThanOrEqual(10);
      expect(
        warnings.some((w) => /lists 100\d nsqd for t; using 10 \(maxNsqdConnections 10\)/.test(w)),
      ).toBe(true);
      // Five polls, yet no more than one warning per address (10) and one about the cap.
      expect(warnings.length).toBeLessThanOrEqual(12);
    } finally {
      await consumer.close(0);
      await Promise.all(fakes.map((f) => f.close()));
    }
  });
});
