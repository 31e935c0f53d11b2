// The sample app end to end (the flow of `npm run demo`, smaller): the real AppModule as a hybrid
// app through NestFactory, HTTP on a free port, NSQ on the shared nsqd + nsqlookupd.
import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../sample/src/app.js';
import type { Order } from '../../sample/src/orders.js';
import type { Quote } from '../../sample/src/pricing.controller.js';
import type { StatsSnapshot } from '../../sample/src/stats.service.js';
import { sharedNsq, waitFor } from '../harness/nsq.js';

const { nsqd, lookupd, api } = sharedNsq();
const ORDERS = 50;
const ENV = {
  NSQD_ADDRESS: nsqd,
  NSQLOOKUPD_ADDRESS: lookupd,
  FLAKY_PERCENT: '10',
};

interface ChannelView {
  handled: number;
  deliveries: number;
  retried: number;
  gaveUp: number;
  attempts: Record<string, number>;
}
type Stats = Omit<StatsSnapshot, 'channels'> & { channels: Record<string, ChannelView> };

describe('sample app: orders, dead letters, quotes and health', () => {
  let app: INestApplication;
  let url: string;
  const saved: Record<string, string | undefined> = {};

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(url + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  beforeAll(async () => {
    for (const [key, value] of Object.entries(ENV)) {
      saved[key] = process.env[key];
      process.env[key] = value;
    }
    app = await createApp({ logger: false });
    await app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  }, 15_000);

  afterAll(async () => {
    await app?.close();
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('is healthy: the producer and every consumer are connected to nsqd', async () => {
    const health = await call<{ status: string; details: { nsq: { nsqd: { role: string }[] } } }>(
      'GET',
      '/health',
    );
    expect(health.status).toBe('ok');
    expect(health.details.nsq.nsqd.map((n) => n.role).sort()).toEqual([
      'orders.dead/inspect',
      'orders/billing',
      'orders/shipping',
      'producer',
      'quotes/pricing',
    ]);
  });

  it('both channels handle every order; the poison order is dead-lettered unchanged', async () => {
    const poison = await call<Order>('POST', '/orders', { customer: 'mallory', poison: true });
    expect(poison).toMatchObject({ customer: 'mallory', poison: true });
    const orders = await Promise.all(
      Array.from({ length: ORDERS }, (_, i) =>
        call<Order>('POST', '/orders', { customer: `c${i}`, items: [{ sku: 'mug', qty: i + 1 }] }),
      ),
    );
    expect(new Set(orders.map((o) => o.id)).size).toBe(ORDERS);

    let stats!: Stats;
    await waitFor(
      async () => {
        stats = await call<Stats>('GET', '/stats');
        const billing = stats.channels['orders/billing'];
        const shipping = stats.channels['orders/shipping'];
        return (
          billing?.handled === ORDERS &&
          shipping?.handled === ORDERS &&
          stats.deadLetters.count === 2
        );
      },
      'every order handled by billing and shipping, and 2 dead letters',
      20_000,
    );

    expect(stats.orders).toMatchObject({ accepted: ORDERS, poison: 1 });
    const billing = stats.channels['orders/billing'];
    const shipping = stats.channels['orders/shipping'];
    // The poison order failed 5 times per channel: 4 REQs, then it was given up.
    expect(shipping).toMatchObject({ retried: 4, gaveUp: 1, attempts: { 1: ORDERS } });
    expect(billing.gaveUp).toBe(1);
    // Flaky first billing attempts were requeued and succeeded on the second one.
    const secondAttempts = billing.attempts['2'] ?? 0;
    expect(billing.retried).toBe(4 + secondAttempts);
    expect((billing.attempts['1'] ?? 0) + secondAttempts).toBe(ORDERS);

    const letters = stats.deadLetters.recent;
    expect(letters.map((l) => l.channel).sort()).toEqual(['billing', 'shipping']);
    for (const letter of letters) {
      expect(letter).toMatchObject({
        orderId: poison.id,
        topic: 'orders',
        attempts: 5,
        reason: 'maxAttempts',
      });
      expect(letter.error).toContain(`poison order ${poison.id}`);
      // Byte for byte what POST /orders published.
      expect(letter.body).toBe(JSON.stringify(poison));
    }
    expect((await api.topicStats('orders.dead'))?.message_count).toBe(2);
    const nsqdBilling = await api.channelStats('orders', 'billing');
    expect(nsqdBilling).toMatchObject({ depth: 0, in_flight_count: 0 });

    // The same flow in the transport's own metrics, as Prometheus would scrape them.
    const res = await fetch(`${url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const metrics = await res.text();
    const series = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    const shippingLabels = '{topic="orders",channel="shipping"}';
    expect(series(`nsq_consumer_messages_given_up_total${shippingLabels}`)).toBe(1);
    expect(series(`nsq_consumer_messages_dead_lettered_total${shippingLabels}`)).toBe(1);
    expect(series(`nsq_consumer_messages_requeued_total${shippingLabels}`)).toBe(4);
    expect(series(`nsq_consumer_messages_finished_total${shippingLabels}`)).toBe(ORDERS + 1);
    expect(series('nsq_producer_messages_published_total\\{topic="orders"\\}')).toBe(ORDERS + 1);
  }, 30_000);

  it('answers a quote over NSQ request/response', async () => {
    const quote = await call<Quote>('GET', '/quote?items=tea:2,mug');
    expect(quote).toEqual({
      lines: [
        { sku: 'tea', qty: 2, unitCents: 450, cents: 900 },
        { sku: 'mug', qty: 1, unitCents: 990, cents: 990 },
      ],
      subtotalCents: 1890,
      shippingCents: 495,
      totalCents: 2385,
      currency: 'EUR',
      quotedBy: 'quotes/pricing',
    });
    const res = await fetch(`${url}/quote?items=beer`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toContain('unknown item "beer"');
  });
});
