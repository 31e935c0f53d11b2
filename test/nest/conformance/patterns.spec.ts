// Patterns as Nest writes them: object patterns ({ cmd: 'sum' }) name topics by a documented,
// collision-free rule; a bare topic takes the server's channel; what cannot work is refused at
// listen() with an error that says how to write it.
import { Controller, type INestMicroservice } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { lastValueFrom } from 'rxjs';
import { routeOfPattern, topicOfPattern } from '../../../lib/nest/patterns.js';
import { ClientNsq, ServerNsq } from '../../../lib/index.js';
import { sharedNsq, uniqueName, waitFor } from '../../harness/nsq.js';

const { nsqd } = sharedNsq();
const P = uniqueName('pat');

describe('pattern -> topic and channel', () => {
  it.each([
    [{ cmd: 'sum' }, 'cmd_sum'],
    [{ role: 'math', cmd: 'sum' }, 'cmd_sum.role_math'],
    [{ v: 2 }, 'v_2'],
    ['orders', 'orders'],
    ['orders/billing', 'orders'],
  ])('%j publishes to %s', (pattern, topic) => {
    expect(topicOfPattern(pattern)).toBe(topic);
  });

  it('keeps distinct object patterns on distinct topics', () => {
    const topics = [{ a: 'b-c' }, { 'a-b': 'c' }, { a: 'b', c: 'd' }, { a: 'b.c' }].map((p) => {
      try {
        return topicOfPattern(p);
      } catch {
        return 'refused';
      }
    });
    expect(topics).toEqual(['a_b-c', 'a-b_c', 'a_b.c_d', 'refused']);
  });

  it.each([[{ cmd: 'has space' }], [{ cmd: { nested: 1 } }], [{}], [{ cmd: 'x'.repeat(70) }]])(
    'refuses %j with an error that says how to write it',
    (pattern) => {
      expect(() => topicOfPattern(pattern)).toThrow(
        /cannot name an NSQ topic|not a valid NSQ topic/,
      );
    },
  );

  it("a server routes Nest's key of an object pattern, and a bare topic, to the channel option", () => {
    expect(routeOfPattern('{"cmd":"sum"}', 'workers')).toEqual({
      topic: 'cmd_sum',
      channel: 'workers',
    });
    expect(routeOfPattern('orders', 'workers')).toEqual({ topic: 'orders', channel: 'workers' });
    expect(routeOfPattern('orders/billing', 'workers')).toEqual({
      topic: 'orders',
      channel: 'billing',
    });
    expect(() => routeOfPattern('orders', undefined)).toThrow(
      /names no channel: write 'topic\/channel' .* or set the ServerNsq option channel/,
    );
  });
});

const seen: unknown[] = [];

@Controller()
class BareTopicController {
  @EventPattern<string>(`${P}-orders`)
  orders(@Payload() data: unknown) {
    seen.push(data);
  }
}

@Controller()
class BadPatternController {
  @MessagePattern({ cmd: 'not valid!' })
  bad() {
    return 1;
  }
}

/** The server of the last listen(): Nest 11 has no app.getTransportServer(). */
let server: ServerNsq;

async function listen(controller: object, options: object): Promise<INestMicroservice> {
  const moduleRef = await Test.createTestingModule({
    controllers: [controller as never],
  }).compile();
  server = new ServerNsq({ nsqd: [nsqd], ...options });
  const app = moduleRef.createNestMicroservice({ strategy: server, logger: false });
  await app.listen();
  return app;
}

describe('patterns at listen()', () => {
  it('@EventPattern(topic) consumes the channel given by the server option', async () => {
    const app = await listen(BareTopicController, { channel: 'billing' });
    const client = new ClientNsq({ nsqd: [nsqd] });
    try {
      await lastValueFrom(client.emit(`${P}-orders`, { id: 1 }));
      await waitFor(() => seen.length === 1, 'the event');
      expect(server.unwrap<{ channel: string }[]>()[0].channel).toBe('billing');
    } finally {
      await client.close();
      await app.close();
    }
  });

  it('a pattern that cannot name a topic fails listen() with the rule', async () => {
    await expect(listen(BadPatternController, { channel: 'c' })).rejects.toThrow(
      /cannot name an NSQ topic: .*e\.g\. \{ cmd: 'sum' \} -> topic 'cmd_sum'/,
    );
  });

  it('a bare topic without the channel option fails listen() and says how to fix it', async () => {
    await expect(listen(BareTopicController, {})).rejects.toThrow(/names no channel/);
  });
});
