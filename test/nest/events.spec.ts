import { Controller, type INestMicroservice } from '@nestjs/common';
import { Ctx, EventPattern, Payload, RpcException } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { lastValueFrom, throwError, of } from 'rxjs';
import {
  ClientNsq,
  NsqContext,
  NsqRecordBuilder,
  ServerNsq,
  parseDeadLetter,
} from '../../lib/index.js';
import { sharedNsq, uniqueName, waitFor } from '../harness/nsq.js';

const { nsqd, api } = sharedNsq();
const T = uniqueName('ev');

/** What the handlers saw, per topic. */
const seen: Record<string, { data: unknown; attempts: number }[]> = {};
const record = (key: string, data: unknown, ctx: NsqContext) =>
  (seen[key] ??= []).push({ data, attempts: ctx.getMessage().attempts });

@Controller()
class EventsController {
  @EventPattern<string>(`${T}-ok/c`)
  ok(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    record('ok', data, ctx);
  }

  @EventPattern<string>(`${T}-truthy/c`)
  truthy(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    record('truthy', data, ctx);
    return { some: 'value' };
  }

  @EventPattern<string>(`${T}-throw/c`, { requeueDelay: 0, backoff: false })
  throwing(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    record('throw', data, ctx);
    if (ctx.getMessage().attempts < 3) throw new Error('sync failure');
  }

  @EventPattern<string>(`${T}-reject/c`, { requeueDelay: 0, backoff: false })
  async rejecting(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    record('reject', data, ctx);
    if (ctx.getMessage().attempts < 3) throw new Error('async failure');
  }

  @EventPattern<string>(`${T}-obs/c`, { requeueDelay: 0, backoff: false })
  observable(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    record('obs', data, ctx);
    return ctx.getMessage().attempts < 3 ? throwError(() => new Error('stream failure')) : of(1);
  }

  @EventPattern<string>(`${T}-dead/c`, {
    maxAttempts: 3,
    requeueDelay: 0,
    backoff: false,
    deadLetterTopic: `${T}-dlq`,
  })
  dead(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    record('dead', data, ctx);
    throw new RpcException('always fails');
  }

  @EventPattern<string>(`${T}-dlq/inspect`, { raw: true })
  dlq(@Payload() data: Buffer, @Ctx() ctx: NsqContext) {
    record('dlq', parseDeadLetter(data), ctx);
  }

  @EventPattern<string>(`${T}-orders/billing`)
  billing(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    record('billing', data, ctx);
  }

  @EventPattern<string>(`${T}-orders/shipping`)
  shipping(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    record('shipping', data, ctx);
  }

  @EventPattern<string>(`${T}-manual/c`, { manualAck: true })
  manual(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    record('manual', data, ctx);
    setTimeout(() => (ctx.getMessage().attempts === 1 ? ctx.requeue(0, false) : ctx.finish()), 20);
  }

  @EventPattern<string>(`${T}-delay/c`)
  delayed(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    record('delay', { data, at: Date.now() }, ctx);
  }
}

describe('ServerNsq events through a real Nest microservice', () => {
  let app: INestMicroservice;
  let client: ClientNsq;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ controllers: [EventsController] }).compile();
    app = moduleRef.createNestMicroservice({
      strategy: new ServerNsq({ nsqd: [nsqd], maxInFlight: 50 }),
    });
    app.useLogger(false);
    await app.listen();
    client = new ClientNsq({ nsqd: [nsqd] });
  });
  afterAll(async () => {
    await client.close();
    await app.close();
  });

  it('FINs 1 000 events', async () => {
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) => lastValueFrom(client.emit(`${T}-ok`, { i }))),
    );
    await waitFor(() => seen.ok?.length === 1000, '1000 events');
    await waitFor(
      async () => (await api.channelStats(`${T}-ok`, 'c'))?.in_flight_count === 0,
      'nothing in flight',
    );
    expect(new Set(seen.ok.map((s) => (s.data as { i: number }).i)).size).toBe(1000);
    const ch = await api.channelStats(`${T}-ok`, 'c');
    expect(ch).toMatchObject({ depth: 0, requeue_count: 0, message_count: 1000 });
  });

  it('FINs a handler that returns a truthy plain value', async () => {
    await lastValueFrom(client.emit(`${T}-truthy`, 'x'));
    await waitFor(() => seen.truthy?.length === 1, 'one event');
    await waitFor(
      async () => (await api.channelStats(`${T}-truthy`, 'c'))?.in_flight_count === 0,
      'FIN',
    );
    expect((await api.channelStats(`${T}-truthy`, 'c'))?.requeue_count).toBe(0);
  });

  it.each(['throw', 'reject', 'obs'])(
    'REQs on failure (%s) and redelivers with attempts counting up',
    async (kind) => {
      await lastValueFrom(client.emit(`${T}-${kind}`, { kind }));
      await waitFor(() => seen[kind]?.length === 3, `3 deliveries of ${kind}`);
      expect(seen[kind].map((s) => s.attempts)).toEqual([1, 2, 3]);
      await waitFor(
        async () => (await api.channelStats(`${T}-${kind}`, 'c'))?.in_flight_count === 0,
        'FIN',
      );
      expect((await api.channelStats(`${T}-${kind}`, 'c'))?.requeue_count).toBe(2);
    },
  );

  it('dead-letters after maxAttempts with the body unchanged', async () => {
    await lastValueFrom(client.emit(`${T}-dead`, { order: 42 }));
    await waitFor(() => seen.dlq?.length === 1, 'dead letter');
    expect(seen.dead.map((s) => s.attempts)).toEqual([1, 2, 3]);
    const letter = seen.dlq[0].data as ReturnType<typeof parseDeadLetter>;
    expect(letter).toMatchObject({
      topic: `${T}-dead`,
      channel: 'c',
      attempts: 3,
      reason: 'maxAttempts',
      error: 'always fails',
    });
    expect(letter!.body.toString()).toBe('{"order":42}');
  });

  it('dead-letters an undecodable payload without calling the handler', async () => {
    const before = seen.dead?.length ?? 0;
    const garbage = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
    await api.publish(`${T}-dead`, garbage);
    await waitFor(() => seen.dlq?.length === 2, 'second dead letter');
    const letter = seen.dlq[1].data as ReturnType<typeof parseDeadLetter>;
    expect(letter).toMatchObject({ reason: 'undecodable', attempts: 1 });
    expect(letter!.body.equals(garbage)).toBe(true);
    expect(seen.dead.length).toBe(before);
  });

  it('gives every channel of a topic every message', async () => {
    for (let i = 0; i < 20; i++) client.emit(`${T}-orders`, { i });
    await waitFor(
      () => seen.billing?.length === 20 && seen.shipping?.length === 20,
      'both channels',
    );
  });

  it('lets a manualAck handler requeue and finish', async () => {
    await lastValueFrom(client.emit(`${T}-manual`, 'm'));
    await waitFor(() => seen.manual?.length === 2, 'redelivery after manual requeue');
    await waitFor(
      async () => (await api.channelStats(`${T}-manual`, 'c'))?.in_flight_count === 0,
      'FIN',
    );
    const ch = await api.channelStats(`${T}-manual`, 'c');
    expect(ch).toMatchObject({ requeue_count: 1, depth: 0 });
  });

  it('publishes with DPUB through NsqRecordBuilder', async () => {
    const sent = Date.now();
    await lastValueFrom(
      client.emit(`${T}-delay`, new NsqRecordBuilder({ late: true }).setDelay(1000).build()),
    );
    await waitFor(() => seen.delay?.length === 1, 'deferred event');
    const got = seen.delay[0].data as { data: unknown; at: number };
    expect(got.data).toEqual({ late: true });
    expect(got.at - sent).toBeGreaterThanOrEqual(1000);
  });
});
