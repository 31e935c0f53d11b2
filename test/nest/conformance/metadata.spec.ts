// Nest's packet-metadata scenario (packet-metadata-tcp), ported: what a client's dispatch hook
// attaches reaches the handler's context, for requests and events; plus record headers, the
// pattern, and a context that can be logged as JSON.
import { Controller, type INestMicroservice } from '@nestjs/common';
import { ClientProxy, Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import {
  ClientNsq,
  Consumer,
  NsqContext,
  NsqRecordBuilder,
  ServerNsq,
} from '../../../lib/index.js';
import { sharedNsq, uniqueName, waitFor } from '../../harness/nsq.js';

const { nsqd } = sharedNsq();
const P = uniqueName('meta');

/**
 * client.setOnDispatchHook() is Nest 12's (ClientProxy). On Nest 11 each of its tests checks
 * instead that the method is absent, the limitation the README states.
 */
const hasDispatchHook =
  typeof (ClientProxy.prototype as { setOnDispatchHook?: unknown }).setOnDispatchHook ===
  'function';
const withDispatchHook = (name: string, test: () => Promise<void>) =>
  hasDispatchHook
    ? it(name, test)
    : it(`${name}: not on Nest 11, which has no setOnDispatchHook`, () => {
        expect(ClientProxy.prototype).not.toHaveProperty('setOnDispatchHook');
      });

const received: { metadata?: Record<string, string>; headers?: unknown; json?: string }[] = [];

@Controller()
class MetadataController {
  @MessagePattern<string>(`${P}-echo-metadata/c`)
  echo(@Payload() data: unknown, @Ctx() context: NsqContext) {
    return { data, metadata: context.getMetadata() ?? null, pattern: context.getPattern() };
  }

  @EventPattern<string>(`${P}-record-metadata/c`)
  record(@Payload() _data: unknown, @Ctx() context: NsqContext) {
    received.push({
      metadata: context.getMetadata(),
      headers: context.getHeaders(),
      json: JSON.stringify(context.getMessage()),
    });
  }
}

describe('Nest scenario: packet metadata (ported from packet-metadata-tcp)', () => {
  let app: INestMicroservice;
  let client: ClientNsq;

  beforeEach(async () => {
    const moduleRef = await Test.createTestingModule({
      controllers: [MetadataController],
    }).compile();
    app = moduleRef.createNestMicroservice({
      strategy: new ServerNsq({ nsqd: [nsqd] }),
      logger: false,
    });
    await app.listen();
    client = new ClientNsq({ nsqd: [nsqd] });
    await client.connect();
  });
  afterEach(async () => {
    await client.close();
    await app.close();
  });

  withDispatchHook(
    'delivers what the dispatch hook attached to a request, beside the payload',
    async () => {
      client.setOnDispatchHook((packet) => {
        packet.metadata = { 'x-request-id': 'trace-1' };
      });
      const reply = await firstValueFrom(client.send(`${P}-echo-metadata`, { orderId: 7 }));
      expect(reply).toEqual({
        data: { orderId: 7 },
        metadata: { 'x-request-id': 'trace-1' },
        pattern: `${P}-echo-metadata/c`,
      });
    },
  );

  withDispatchHook('delivers it with an event as well, with record headers beside it', async () => {
    client.setOnDispatchHook((packet) => {
      packet.metadata = { 'x-request-id': 'trace-2' };
    });
    const record = new NsqRecordBuilder({}).setHeaders({ 'x-version': '2' }).build();
    await lastValueFrom(client.emit(`${P}-record-metadata`, record));
    await waitFor(() => received.length === 1, 'the event');
    expect(received[0].metadata).toEqual({ 'x-request-id': 'trace-2' });
    expect(received[0].headers).toEqual({ 'x-version': '2' });
    // The bigint timestamp does not break JSON.stringify of the context's message.
    expect(JSON.parse(received[0].json!).timestamp).toMatch(/^\d{19}$/);
  });

  it('leaves the context without metadata when no hook is set, and the body plain', async () => {
    const reply = await firstValueFrom(client.send(`${P}-echo-metadata`, 'plain'));
    expect(reply).toMatchObject({ data: 'plain', metadata: null });
    // An event without metadata or headers is its data alone on the wire.
    const topic = `${P}-plain`;
    const bodies: string[] = [];
    const peek = new Consumer(topic, 'peek', (m) => void bodies.push(m.body.toString()), {
      nsqd: [nsqd],
    });
    await peek.start();
    await lastValueFrom(client.emit(topic, { a: 1 }));
    await waitFor(() => bodies.length === 1, 'the event');
    await peek.close();
    expect(bodies).toEqual(['{"a":1}']);
  });

  withDispatchHook('calls the hook once per packet, with the pattern and the data', async () => {
    const seen: unknown[] = [];
    client.setOnDispatchHook((packet) => {
      seen.push({ pattern: packet.pattern, data: packet.data });
    });
    await firstValueFrom(client.send(`${P}-echo-metadata`, 1));
    await firstValueFrom(client.send(`${P}-echo-metadata`, 2));
    expect(seen).toEqual([
      { pattern: `${P}-echo-metadata`, data: 1 },
      { pattern: `${P}-echo-metadata`, data: 2 },
    ]);
  });
});
