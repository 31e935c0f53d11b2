// What tests need on top of the NSQ server processes: the shared servers, nsqd's HTTP API, names.
import { readdirSync, readFileSync } from 'node:fs';
export {
  LookupdProcess,
  NsqdProcess,
  NsqadminProcess,
  freePort,
  stopAll,
} from '../../scripts/nsq-servers.mjs';

/** nsqd's HTTP API, for assertions and for publishing as a non-Nest producer would. */
export class NsqdApi {
  constructor(readonly httpUrl: string) {}

  async stats(topic?: string): Promise<NsqdStats> {
    const q = topic ? `&topic=${encodeURIComponent(topic)}` : '';
    const res = await fetch(`${this.httpUrl}/stats?format=json${q}`);
    const stats = (await res.json()) as NsqdStats;
    // nsqd answers topics: null (and channels: null) when there are none.
    stats.topics = (stats.topics ?? []).map((t) => ({ ...t, channels: t.channels ?? [] }));
    return stats;
  }

  /** Counts of one channel, or undefined if it does not exist (yet). */
  async channelStats(topic: string, channel: string): Promise<ChannelStats | undefined> {
    const stats = await this.stats(topic);
    return stats.topics
      .find((t) => t.topic_name === topic)
      ?.channels.find((c) => c.channel_name === channel);
  }

  async topicStats(topic: string): Promise<TopicStats | undefined> {
    return (await this.stats(topic)).topics.find((t) => t.topic_name === topic);
  }

  async publish(topic: string, body: string | Buffer): Promise<void> {
    const res = await fetch(`${this.httpUrl}/pub?topic=${encodeURIComponent(topic)}`, {
      method: 'POST',
      body: typeof body === 'string' ? body : new Uint8Array(body),
    });
    if (!res.ok) throw new Error(`nsqd /pub ${res.status}: ${await res.text()}`);
  }

  async createTopic(topic: string, channel?: string): Promise<void> {
    const t = encodeURIComponent(topic);
    await fetch(`${this.httpUrl}/topic/create?topic=${t}`, { method: 'POST' });
    if (channel) {
      const c = encodeURIComponent(channel);
      await fetch(`${this.httpUrl}/channel/create?topic=${t}&channel=${c}`, { method: 'POST' });
    }
  }
}

export interface ClientStats {
  client_id: string;
  user_agent: string;
  ready_count: number;
  in_flight_count: number;
  finish_count: number;
  requeue_count: number;
  message_count: number;
  tls: boolean;
  deflate: boolean;
  snappy: boolean;
  authed?: boolean;
}
export interface ChannelStats {
  channel_name: string;
  depth: number;
  in_flight_count: number;
  deferred_count: number;
  message_count: number;
  requeue_count: number;
  timeout_count: number;
  clients: ClientStats[];
}
export interface TopicStats {
  topic_name: string;
  depth: number;
  message_count: number;
  channels: ChannelStats[];
}
export interface NsqdStats {
  topics: TopicStats[];
}

/** The nsqlookupd + nsqd started once for the whole run by the global setup. */
export interface SharedNsq {
  /** nsqd TCP 'host:port' */
  nsqd: string;
  api: NsqdApi;
  /** nsqlookupd HTTP 'host:port' */
  lookupd: string;
}

export function sharedNsq(): SharedNsq {
  const { NSQ_TEST_NSQD, NSQ_TEST_NSQD_HTTP, NSQ_TEST_LOOKUPD } = process.env;
  if (!NSQ_TEST_NSQD || !NSQ_TEST_NSQD_HTTP || !NSQ_TEST_LOOKUPD) {
    throw new Error(
      'The shared nsqd is not running: run tests through `npm test` (jest globalSetup).',
    );
  }
  return { nsqd: NSQ_TEST_NSQD, api: new NsqdApi(NSQ_TEST_NSQD_HTTP), lookupd: NSQ_TEST_LOOKUPD };
}

let counter = 0;
/** A topic or channel name that no other test uses. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
}

/** Polls until `check` returns true, or fails after `timeoutMs` with `what` in the message. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * SIGSTOPs a process and waits until every one of its threads has stopped: kill() returns
 * before that, and a thread still running on the other core can answer a command meanwhile.
 */
export async function freeze(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const stopped = () =>
    readdirSync(`/proc/${pid}/task`).every((tid) =>
      /^[tT]/.test(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1] ?? ''),
    );
  await waitFor(stopped, `process ${pid} to be stopped (SIGSTOP)`, 2000);
}
