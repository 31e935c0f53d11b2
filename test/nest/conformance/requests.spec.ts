// Requests never wait forever: a pattern nothing consumes fails fast (Nest's pattern-not-found),
// a channel without a request handler answers at once, a request carries its deadline and a
// server does not run one whose caller has given up.
import { Controller, type INestMicroservice } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import { ClientNsq, ServerNsq } from '../../../lib/index.js';
import { sharedNsq, uniqueName } from '../../harness/nsq.js';

const { nsqd, lookupd } = sharedNsq();
const P = uniqueName('req');
const eventPayloads: unknown[] = [];
let slowCalls = 0;

@Controller()
class RequestsController {
  @EventPattern<string>(`${P}-events/audit`)
  audit(@Payload() data: unknown) {
    eventPayloads.push(data);
  }

  @MessagePattern<string>(`${P}-late/c`)
  late(@Payload() data: unknown) {
    slowCalls++;
    return data;
  }
}

async function startServer(): Promise<INestMicroservice> {
  const moduleRef = await Test.createTestingModule({ controllers: [RequestsController] }).compile();
  const app = moduleRef.createNestMicroservice({
    strategy: new ServerNsq({ nsqd: [nsqd] }),
    logger: false,
  });
  await app.listen();
  return app;
}

const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (e: Error & { code?: string; topic?: string }) => e,
  );

describe('requests that nothing can answer', () => {
  let client: ClientNsq;
  beforeAll(() => {
    client = new ClientNsq({ nsqd: [nsqd], lookupd: [lookupd] });
  });
  afterAll(() => client.close());

  it('a pattern nothing consumes fails within a few seconds, naming the topic', async () => {
    const started = Date.now();
    const error = await failureOf(firstValueFrom(client.send(`${P}-nobody`, [1, 2])));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error.code).toBe('ERR_NSQ_NO_CONSUMER');
    expect(error.message).toContain(`Nothing consumes topic "${P}-nobody"`);
  });

  it('a channel with only an @EventPattern answers at once with an error; its handler never sees the request', async () => {
    const app = await startServer();
    try {
      const started = Date.now();
      const error = await failureOf(firstValueFrom(client.send(`${P}-events`, { q: 1 })));
      expect(Date.now() - started).toBeLessThan(2000);
      expect(error.code).toBe('ERR_NSQ_NO_HANDLER');
      expect(error.message).toMatch(
        /events\/audit has an @EventPattern handler, no @MessagePattern/,
      );
      expect(eventPayloads).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('requestTimeout is the last resort, and the error says so', async () => {
    // No lookupd, and nsqd's HTTP API not at TCP port + 1 here: only the timeout can tell.
    const blind = new ClientNsq({ nsqd: [nsqd], requestTimeout: 800 });
    try {
      const error = await failureOf(firstValueFrom(blind.send(`${P}-void`, 1)));
      expect(error.code).toBe('ERR_NSQ_REQUEST_TIMEOUT');
      expect(error.message).toMatch(/within requestTimeout 800 ms/);
    } finally {
      await blind.close();
    }
  });

  it('a server does not run a request whose caller has already given up', async () => {
    const impatient = new ClientNsq({ nsqd: [nsqd], requestTimeout: 300 });
    try {
      // Sent while no server consumes the topic; nsqd keeps it.
      const error = await failureOf(firstValueFrom(impatient.send(`${P}-late`, 'stale')));
      expect(error.code).toBe('ERR_NSQ_REQUEST_TIMEOUT');
      const app = await startServer();
      try {
        await new Promise((r) => setTimeout(r, 500));
        expect(slowCalls).toBe(0);
        // A request in time is served.
        const patient = new ClientNsq({ nsqd: [nsqd] });
        await expect(firstValueFrom(patient.send(`${P}-late`, 'fresh'))).resolves.toBe('fresh');
        await patient.close();
        expect(slowCalls).toBe(1);
      } finally {
        await app.close();
      }
    } finally {
      await impatient.close();
    }
  });
});
