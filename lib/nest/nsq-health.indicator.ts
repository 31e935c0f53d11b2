import { Injectable, Optional } from '@nestjs/common';
import { ClientNsq } from './client-nsq.js';
import type { Consumer } from '../consumer/consumer.js';
import type { Producer } from '../producer/producer.js';
import type { ServerNsq } from './server-nsq.js';

export interface NsqdHealth {
  address: string;
  /** 'producer' for ClientNsq, or the 'topic/channel' a ServerNsq consumes. */
  role: string;
  connected: boolean;
  error?: string;
}

/** A terminus-shaped result: `{ [key]: { status: 'up' | 'down', nsqd: [...] } }`. */
export type NsqHealthResult<Key extends string = string> = Record<
  Key,
  { status: 'up' | 'down'; nsqd: NsqdHealth[]; message?: string }
>;

/**
 * Reports each nsqd the app uses, as @nestjs/terminus expects from a health indicator:
 * `this.health.check([() => this.nsq.isHealthy('nsq', { servers: [server] })])`.
 * Needs no import of terminus: a result with status 'down' fails the check.
 */
@Injectable()
export class NsqHealthIndicator {
  constructor(@Optional() private readonly client?: ClientNsq) {}

  async isHealthy<Key extends string = 'nsq'>(
    key: Key = 'nsq' as Key,
    sources: { servers?: ServerNsq[]; clients?: ClientNsq[] } = {},
  ): Promise<NsqHealthResult<Key>> {
    const clients = sources.clients ?? (this.client ? [this.client] : []);
    const nsqd: NsqdHealth[] = [];
    /** What makes the check fail: a consumer connection down, or a producer with none up. */
    const down: string[] = [];
    for (const client of clients) {
      const links = (await connectedProducer(client)).connections();
      for (const c of links) {
        nsqd.push({
          address: c.address,
          role: 'producer',
          connected: c.connected,
          ...(c.lastError && !c.connected ? { error: c.lastError } : {}),
        });
      }
      // A producer publishes through one nsqd at a time and fails over to the others: it is
      // healthy while one is connected, even with another one down.
      if (!links.some((c) => c.connected))
        down.push(`${links.map((c) => c.address).join(', ')} (producer)`);
    }
    for (const server of sources.servers ?? []) {
      for (const consumer of server.unwrap<Consumer[]>()) {
        for (const c of consumer.connections()) {
          const role = `${consumer.topic}/${consumer.channel}`;
          nsqd.push({ address: c.address, role, connected: c.subscribed });
          if (!c.subscribed) down.push(`${c.address} (${role})`);
        }
      }
    }
    const status = down.length ? 'down' : 'up';
    const message = down.length ? `nsqd not connected: ${down.join(', ')}` : undefined;
    return { [key]: { status, nsqd, ...(message ? { message } : {}) } } as NsqHealthResult<Key>;
  }
}

/** How long a health check waits for a producer with no live connection to connect. */
const CONNECT_CHECK_TIMEOUT = 2000;

/**
 * The client's producer, connected if it can be: a producer connects lazily, so one that has
 * no live connection is asked to connect now (bounded), and reports what that found.
 */
async function connectedProducer(client: ClientNsq): Promise<Producer> {
  const producer = client.unwrap<Producer>();
  if (producer.state !== 'open' || producer.connections().some((c) => c.connected)) {
    return producer;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    producer.connect().catch(() => undefined), // the failure shows in connections()
    new Promise((resolve) => (timer = setTimeout(resolve, CONNECT_CHECK_TIMEOUT))),
  ]);
  clearTimeout(timer);
  return producer;
}
