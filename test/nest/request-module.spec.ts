import { Controller, Inject, Injectable, Module, type INestMicroservice } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { ClientsModule, Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom, lastValueFrom, from, timeout, toArray } from 'rxjs';
import {
  ClientNsq,
  NsqContext,
  NsqHealthIndicator,
  NsqModule,
  type NsqOptionsFactory,
  ServerNsq,
} from '../../lib/index.js';
import { sharedNsq, uniqueName } from '../harness/nsq.js';

const { nsqd, api } = sharedNsq();
const T = uniqueName('rr');

@Controller()
class QuoteController {
  @MessagePattern<string>(`${T}-quote/pricing`)
  quote(@Payload() data: { items: number[] }, @Ctx() ctx: NsqContext) {
    if (!Array.isArray(data.items)) throw new RpcException('items must be an array');
    return { total: data.items.reduce((a, b) => a + b, 0), topic: ctx.getTopic() };
  }

  @MessagePattern<string>(`${T}-stream/c`)
  stream(@Payload() n: number) {
    return from(Array.from({ length: n }, (_, i) => i));
  }
}

@Injectable()
class OrdersService {
  constructor(readonly client: ClientNsq) {}
}

describe('request/response and NsqModule', () => {
  let server: INestMicroservice;
  let client: ClientNsq;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ controllers: [QuoteController] }).compile();
    server = moduleRef.createNestMicroservice({ strategy: new ServerNsq({ nsqd: [nsqd] }) });
    server.useLogger(false);
    await server.listen();
    client = new ClientNsq({ nsqd: [nsqd] });
  });
  afterAll(async () => {
    await client.close();
    await server.close();
  });

  it('send() gets the reply of a @MessagePattern handler', async () => {
    const reply = await firstValueFrom(
      client.send(`${T}-quote`, { items: [1, 2, 3] }).pipe(timeout(10_000)),
    );
    expect(reply).toEqual({ total: 6, topic: `${T}-quote` });
  });

  it('send() errors with the handler error', async () => {
    await expect(
      firstValueFrom(client.send(`${T}-quote`, { items: 'no' }).pipe(timeout(10_000))),
    ).rejects.toEqual({
      status: 'error',
      message: 'items must be an array',
    });
  });

  it('many concurrent requests are routed to their own callers', async () => {
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        firstValueFrom(client.send(`${T}-quote`, { items: [i, 1] }).pipe(timeout(10_000))),
      ),
    );
    expect(replies.map((r) => r.total)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it('an Observable reply streams every value', async () => {
    const values = await lastValueFrom(
      client.send(`${T}-stream`, 5).pipe(toArray(), timeout(10_000)),
    );
    expect(values).toEqual([0, 1, 2, 3, 4]);
  });

  it('status reports connected, then disconnected on close', async () => {
    const c = new ClientNsq({ nsqd: [nsqd] });
    const states: string[] = [];
    c.status.subscribe((s) => states.push(s));
    await c.connect();
    await lastValueFrom(c.emit(`${T}-status`, 1));
    await c.close();
    expect(states).toEqual(['connected', 'disconnected']);
  });

  it('NsqModule.forRoot provides an injectable ClientNsq that emits', async () => {
    @Module({ imports: [NsqModule.forRoot({ nsqd: [nsqd] })], providers: [OrdersService] })
    class AppModule {}
    const app = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const svc = app.get(OrdersService);
    expect(svc.client).toBeInstanceOf(ClientNsq);
    const topic = `${T}-forroot`;
    await lastValueFrom(svc.client.emit(topic, { ok: true }));
    await app.close();
    expect((await api.topicStats(topic))?.message_count).toBe(1);
  });

  it('NsqModule.forRootAsync takes its options from injected config', async () => {
    @Module({
      imports: [
        ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ NSQD: nsqd })] }),
        NsqModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => ({ nsqd: [config.getOrThrow<string>('NSQD')] }),
        }),
      ],
      providers: [OrdersService],
    })
    class AppModule {}
    const app = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const topic = `${T}-forrootasync`;
    await lastValueFrom(app.get(OrdersService).client.emit(topic, 'x'));
    const health = await app.get(NsqHealthIndicator).isHealthy('nsq');
    expect(health.nsq.status).toBe('up');
    expect(health.nsq.nsqd).toEqual([{ address: nsqd, role: 'producer', connected: true }]);
    await app.close();
    expect((await api.topicStats(topic))?.message_count).toBe(1);
  });

  it('NsqModule.forRootAsync takes a useClass or useExisting options factory', async () => {
    @Injectable()
    class NsqConfig implements NsqOptionsFactory {
      createNsqOptions() {
        return { nsqd: [nsqd] };
      }
    }
    @Module({ providers: [NsqConfig], exports: [NsqConfig] })
    class ConfigHolder {}

    for (const [kind, async] of [
      ['useClass', NsqModule.forRootAsync({ useClass: NsqConfig })],
      ['useExisting', NsqModule.forRootAsync({ imports: [ConfigHolder], useExisting: NsqConfig })],
    ] as const) {
      @Module({ imports: [async], providers: [OrdersService] })
      class AppModule {}
      const app = await Test.createTestingModule({ imports: [AppModule] }).compile();
      const topic = `${T}-${kind}`;
      await lastValueFrom(app.get(OrdersService).client.emit(topic, kind));
      await app.close();
      expect((await api.topicStats(topic))?.message_count).toBe(1);
    }
  });

  it('NsqModule.forRoot({ isGlobal: true }) lets every module inject ClientNsq', async () => {
    @Module({ providers: [OrdersService], exports: [OrdersService] })
    class FeatureModule {}
    @Module({ imports: [NsqModule.forRoot({ nsqd: [nsqd], isGlobal: true }), FeatureModule] })
    class AppModule {}
    const app = await Test.createTestingModule({ imports: [AppModule] }).compile();
    expect(app.get(OrdersService).client).toBeInstanceOf(ClientNsq);
    await app.close();
  });

  it('ClientsModule.register with customClass ClientNsq works', async () => {
    @Injectable()
    class Uses {
      constructor(@Inject('NSQ') readonly client: ClientNsq) {}
    }
    @Module({
      imports: [
        ClientsModule.register([
          { name: 'NSQ', customClass: ClientNsq, options: { nsqd: [nsqd] } },
        ]),
      ],
      providers: [Uses],
    })
    class AppModule {}
    const app = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const topic = `${T}-clientsmodule`;
    await lastValueFrom(app.get(Uses).client.emit(topic, 'x'));
    await app.close();
    expect((await api.topicStats(topic))?.message_count).toBe(1);
  });
});
