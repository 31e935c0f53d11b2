import { Controller, type INestMicroservice } from '@nestjs/common';
import { EventPattern, Payload, Transport } from '@nestjs/microservices';
import { NestFactory } from '@nestjs/core';
import { Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  ClientNsq,
  Consumer,
  NSQ_TRANSPORT,
  NsqHealthIndicator,
  Producer,
  ServerNsq,
} from '../../lib/index.js';
import {
  LookupdProcess,
  NsqdApi,
  NsqdProcess,
  stopAll,
  uniqueName,
  waitFor,
} from '../harness/nsq.js';

afterAll(stopAll);

const T = uniqueName('lc');
let started = 0;
let finished = 0;

@Controller()
class SlowController {
  @EventPattern<string>(`${T}-slow/c`)
  async slow(@Payload() _data: unknown) {
    started++;
    await new Promise((r) => setTimeout(r, 300));
    finished++;
  }
}

@Controller()
class HybridController {
  static got: unknown[] = [];
  @EventPattern<string>(`${T}-hybrid/c`, NSQ_TRANSPORT)
  nsqOnly(@Payload() data: unknown) {
    HybridController.got.push(data);
  }
  @EventPattern<string>(`${T}-tcp-only/c`, Transport.TCP)
  tcpOnly() {}
}

describe('ServerNsq lifecycle', () => {
  let nsqd: NsqdProcess;
  let api: NsqdApi;
  beforeAll(async () => {
    nsqd = await NsqdProcess.start();
    api = new NsqdApi(nsqd.httpUrl);
  });

  it('close() waits for handlers in flight and leaves nothing in flight at nsqd', async () => {
    const topic = `${T}-slow`;
    const producer = new Producer({ nsqd: [nsqd.tcpAddress] });
    const published = 200;
    await producer.publishMany(
      topic,
      Array.from({ length: published }, (_, i) => JSON.stringify(i)),
    );
    const moduleRef = await Test.createTestingModule({ controllers: [SlowController] }).compile();
    const app: INestMicroservice = moduleRef.createNestMicroservice({
      strategy: new ServerNsq({ nsqd: [nsqd.tcpAddress], maxInFlight: 20 }),
    });
    app.useLogger(false);
    await app.listen();
    await waitFor(() => started >= 20, '20 handlers in flight');
    await app.close();
    expect(finished).toBe(started);
    const ch = await api.channelStats(topic, 'c');
    expect(ch?.in_flight_count).toBe(0);
    expect(ch!.depth + finished).toBe(published);
    await producer.close();
  });

  it('status and events follow the nsqd connection; health reports it', async () => {
    const topic = `${T}-status`;
    const server = new ServerNsq({ nsqd: [nsqd.tcpAddress], maxReconnectDelay: 500 });
    @Controller()
    class C {
      @EventPattern<string>(`${topic}/c`)
      handle() {}
    }
    const moduleRef = await Test.createTestingModule({ controllers: [C] }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: server });
    app.useLogger(false);
    const states: string[] = [];
    server.status.subscribe((s) => states.push(s));
    const events: string[] = [];
    server.on('disconnected', (address) => events.push(`disconnected ${address}`));
    server.on('reconnecting', () => events.push('reconnecting'));
    await app.listen();
    const health = new NsqHealthIndicator();
    expect((await health.isHealthy('nsq', { servers: [server] })).nsq.status).toBe('up');

    await nsqd.stop();
    await waitFor(() => states.includes('disconnected'), 'disconnected status');
    const down = await health.isHealthy('nsq', { servers: [server] });
    expect(down.nsq).toMatchObject({ status: 'down' });
    expect(down.nsq.message).toContain(nsqd.tcpAddress);

    await nsqd.start();
    await waitFor(() => states.at(-1) === 'connected', 'connected again', 15_000);
    expect((await health.isHealthy('nsq', { servers: [server] })).nsq.status).toBe('up');
    await app.close();
    expect(states[0]).toBe('connected');
    expect(states).toContain('reconnecting');
    expect(states.at(-1)).toBe('disconnected');
    expect(events).toContain(`disconnected ${nsqd.tcpAddress}`);
    expect(server.unwrap<Consumer[]>()).toHaveLength(1);
  });

  it('a hybrid app routes only NSQ_TRANSPORT patterns to ServerNsq', async () => {
    const lookupd = await LookupdProcess.start();
    const extra = await NsqdProcess.start({ lookupd });
    @Module({ controllers: [HybridController] })
    class AppModule {}
    const app = await NestFactory.create(AppModule, { logger: false });
    const server = new ServerNsq({ lookupd: [lookupd.httpAddress], lookupdPollInterval: 200 });
    app.connectMicroservice({ strategy: server });
    await app.startAllMicroservices();
    await app.init();
    const consumers = server.unwrap<Consumer[]>();
    expect(consumers.map((c) => `${c.topic}/${c.channel}`)).toEqual([`${T}-hybrid/c`]);
    const client = new ClientNsq({ nsqd: [extra.tcpAddress] });
    client.emit(`${T}-hybrid`, { hello: 'hybrid' });
    await waitFor(() => HybridController.got.length === 1, 'event through lookupd discovery');
    expect(HybridController.got).toEqual([{ hello: 'hybrid' }]);
    await client.close();
    await app.close();
  });
});
