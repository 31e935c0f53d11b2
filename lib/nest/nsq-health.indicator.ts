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

  isHealthy<Key extends string = 'nsq'>(
    key: Key = 'nsq' as Key,
    sources: { servers?: ServerNsq[]; clients?: ClientNsq[] } = {},
  ): Promise<NsqHealthResult<Key>> {
    const clients = sources.clients ?? (this.client ? [this.client] : []);
    const nsqd: NsqdHealth[] = [];
    for (const client of clients) {
      for (const c of client.unwrap<Producer>().connections()) {
        // A producer connects lazily: an address not tried yet (no error) is not a failure.
        nsqd.push({
          address: c.address,
          role: 'producer',
          connected: c.connected || !c.lastError,
          error: c.lastError,
        });
      }
    }
    for (const server of sources.servers ?? []) {
      for (const consumer of server.unwrap<Consumer[]>()) {
        for (const c of consumer.connections()) {
          nsqd.push({
            address: c.address,
            role: `${consumer.topic}/${consumer.channel}`,
            connected: c.subscribed,
          });
        }
      }
    }
    const down = nsqd.filter((n) => !n.connected);
    const status = down.length ? 'down' : 'up';
    const message = down.length
      ? `nsqd not connected: ${down.map((d) => `${d.address} (${d.role})`).join(', ')}`
      : undefined;
    return Promise.resolve({
      [key]: { status, nsqd, ...(message ? { message } : {}) },
    } as NsqHealthResult<Key>);
  }
}
