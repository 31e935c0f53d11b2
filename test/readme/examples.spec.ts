// Runs every README example (test/readme/examples, held word for word to the README by
// test/docs/readme-examples.spec.ts) against its own nsqd and nsqlookupd, and checks that it
// did what the README says.
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { jest } from '@jest/globals';
import { ServerNsq } from '../../lib/index.js';
import { LookupdProcess, NsqdApi, NsqdProcess, waitFor } from '../harness/nsq.js';

let lookupd: LookupdProcess;
let nsqd: NsqdProcess;
let api: NsqdApi;
const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
const logged = (text: string) => log.mock.calls.some((args) => args.join(' ').includes(text));

beforeAll(async () => {
  Logger.overrideLogger(false);
  lookupd = await LookupdProcess.start();
  nsqd = await NsqdProcess.start({ lookupd });
  api = new NsqdApi(nsqd.httpUrl);
  process.env.README_NSQD = nsqd.tcpAddress;
  process.env.README_LOOKUPD = lookupd.httpAddress;
});
afterAll(async () => {
  log.mockRestore();
  await nsqd.stop();
  await lookupd.stop();
});

describe('README examples, run', () => {
  it('Consumer: the billing handler takes messages of orders/billing', async () => {
    const { app } = await import('./examples/consumer.js');
    try {
      await api.publish('orders', JSON.stringify({ id: 1 }));
      await waitFor(async () => {
        const c = await api.channelStats('orders', 'billing');
        return c?.message_count === 1 && c.depth === 0 && c.in_flight_count === 0;
      }, 'the message FINished on orders/billing');
      expect(logged('charging order 1 attempt 1')).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('Producer: place() publishes one message now and one 5 s later, and the app closes', async () => {
    await api.createTopic('orders', 'producer-check');
    await import('./examples/producer.js');
    const stats = await api.channelStats('orders', 'producer-check');
    expect(stats).toMatchObject({ depth: 1, deferred_count: 1 });
  });

  it('Request/response: the quote and the object-pattern sum come back', async () => {
    const { server, client, quote, sum } = await import('./examples/request-response.js');
    expect(quote).toEqual({ total: 3 });
    expect(sum).toBe(6);
    await client.close();
    await server.close();
  });

  it('Metadata and headers: the handler reads the trace id, the version and the pattern', async () => {
    const { AuditController, client } = await import('./examples/metadata.js');
    const { Module } = await import('@nestjs/common');
    class AuditModule {}
    Module({ controllers: [AuditController] })(AuditModule);
    const server = await NestFactory.createMicroservice(AuditModule, {
      strategy: new ServerNsq({ nsqd: [nsqd.tcpAddress] }),
      logger: false,
    });
    await server.listen();
    try {
      await waitFor(() => logged('login trace-1 2 audit/log'), 'the audit line');
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('Hybrid apps: the shipping handler runs in an HTTP app', async () => {
    const { app } = await import('./examples/hybrid.js');
    try {
      await api.publish('orders', JSON.stringify({ id: 42 }));
      await waitFor(() => logged('shipping order 42'), 'the shipping line');
    } finally {
      await app.close();
    }
  });

  it('Health: GET /health is up with the nsqd the server and client use; GET /metrics is Prometheus text', async () => {
    const { app } = await import('./examples/health.js');
    try {
      const res = await fetch(`${await app.getUrl()}/health`);
      const body = (await res.json()) as { status: string; info: { nsq: { status: string } } };
      expect(res.status).toBe(200);
      expect(body).toMatchObject({ status: 'ok', info: { nsq: { status: 'up' } } });
      const metrics = await fetch(`${await app.getUrl()}/metrics`);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
      // The health check connected the client, so the producer's series are there.
      expect(await metrics.text()).toMatch(/^nsq_producer_connections 1$/m);
    } finally {
      await app.close();
    }
  });

  it('The NSQ client without Nest: consumer and producer start, publish and close', async () => {
    const { consumer, producer } = await import('./examples/client-core.js');
    expect(consumer.state).toBe('closed');
    expect(producer.state).toBe('closed');
    const stats = await api.channelStats('orders', 'billing');
    expect(stats?.message_count).toBeGreaterThanOrEqual(4);
  });
});
