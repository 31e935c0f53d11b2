// Nest's shutdown and broadcast scenarios, ported: after app.close() no handler runs and no
// connection is left (tcp-shutdown); a request whose reply stream never completes does not hold
// close() up, its caller gets an error and it is not delivered again; one event reaches every
// service that listens on its topic (broadcast-nats), one channel each.
import { Controller, type INestMicroservice } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom, lastValueFrom, NEVER } from 'rxjs';
import { ClientNsq, ServerNsq, type NsqServerOptions } from '../../../lib/index.js';
import { sharedNsq, uniqueName, waitFor } from '../../harness/nsq.js';

const { nsqd, api } = sharedNsq();
const P = uniqueName('shut');
let pings = 0;
let stuckCalls = 0;

@Controller()
class PingController {
  @MessagePattern<string>(`${P}-ping/c`)
  ping(): string {
    pings++;
    return 'pong';
  }

  @MessagePattern<string>(`${P}-stuck/c`)
  stuck() {
    stuckCalls++;
    return NEVER; // a reply stream that never completes
  }
}

const broadcast: Record<string, unknown[]> = { a: [], b: [] };

@Controller()
class BroadcastA {
  @EventPattern<string>(`${P}-broadcast`)
  on(@Payload() data: unknown) {
    broadcast.a.push(data);
  }
}

@Controller()
class BroadcastB {
  @EventPattern<string>(`${P}-broadcast`)
  on(@Payload() data: unknown) {
    broadcast.b.push(data);
  }
}

async function start(controller: object, options: NsqServerOptions): Promise<INestMicroservice> {
  const moduleRef = await Test.createTestingModule({
    controllers: [controller as never],
  }).compile();
  const app = moduleRef.createNestMicroservice({
    strategy: new ServerNsq(options),
    logger: false,
  });
  await app.listen();
  return app;
}

describe('Nest scenario: shutdown (ported from tcp-shutdown)', () => {
  it('no handler runs after close(), and no connection of the server is left in nsqd', async () => {
    const app = await start(PingController, { nsqd: [nsqd] });
    const client = new ClientNsq({ nsqd: [nsqd] });
    await expect(firstValueFrom(client.send(`${P}-ping`, 1))).resolves.toBe('pong');
    expect(pings).toBe(1);
    await app.close();
    const stats = await api.channelStats(`${P}-ping`, 'c');
    expect(stats?.clients ?? []).toHaveLength(0);
    // What arrives later waits in nsqd for the next server instead of running here.
    await api.publish(`${P}-ping`, 'late');
    await new Promise((r) => setTimeout(r, 300));
    expect(pings).toBe(1);
    expect((await api.channelStats(`${P}-ping`, 'c'))?.depth).toBe(1);
    await client.close();
  });

  it('a request whose reply never completes: close() returns promptly, the caller gets an error, nothing is redelivered', async () => {
    const app = await start(PingController, { nsqd: [nsqd], drainTimeout: 30_000 });
    const client = new ClientNsq({ nsqd: [nsqd] });
    const reply = firstValueFrom(client.send(`${P}-stuck`, 1)).catch(
      (e: { code?: string; message?: string }) => e,
    );
    await waitFor(() => stuckCalls === 1, 'the stuck handler');
    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(reply).resolves.toMatchObject({
      code: 'ERR_NSQ_SERVER_CLOSING',
      message: expect.stringMatching(/shut down before it finished/),
    });
    // FINished: a new server gets nothing to run again.
    const next = await start(PingController, { nsqd: [nsqd] });
    await new Promise((r) => setTimeout(r, 300));
    expect(stuckCalls).toBe(1);
    const stats = await api.channelStats(`${P}-stuck`, 'c');
    expect(stats).toMatchObject({ depth: 0, in_flight_count: 0, requeue_count: 0 });
    await next.close();
    await client.close();
  });
});

describe('Nest scenario: broadcast (ported from broadcast-nats)', () => {
  it('every service listening on a topic gets the event, one channel each', async () => {
    const a = await start(BroadcastA, { nsqd: [nsqd], channel: 'service-a' });
    const b = await start(BroadcastB, { nsqd: [nsqd], channel: 'service-b' });
    const client = new ClientNsq({ nsqd: [nsqd] });
    try {
      await lastValueFrom(client.emit(`${P}-broadcast`, { n: 1 }));
      await waitFor(() => broadcast.a.length === 1 && broadcast.b.length === 1, 'both services');
      expect(broadcast).toEqual({ a: [{ n: 1 }], b: [{ n: 1 }] });
    } finally {
      await client.close();
      await a.close();
      await b.close();
    }
  });
});
