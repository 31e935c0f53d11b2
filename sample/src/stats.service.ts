import {
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { NsqDeadLetter } from 'nestjs-nsq';

/** Latency samples kept per channel; past this, reservoir sampling keeps a fair subset. */
const MAX_SAMPLES = 100_000;
/** Dead letters kept for GET /stats. */
const MAX_DEAD_LETTERS = 20;

class ChannelCounters {
  /** Distinct orders handled successfully. */
  readonly orders = new Set<string>();
  /** Successful deliveries, redeliveries of an already handled order included. */
  deliveries = 0;
  /** Failures answered with REQ (the order comes back later). */
  retried = 0;
  /** Failures on the last attempt (the order goes to the dead-letter topic). */
  gaveUp = 0;
  /** Successful deliveries by attempt number. */
  readonly attempts: Record<number, number> = {};
  readonly latencies: number[] = [];
  private seen = 0;
  firstHandledAt?: number;
  lastHandledAt?: number;

  handled(orderId: string, attempts: number, latencyMs: number, now: number): void {
    this.orders.add(orderId);
    this.deliveries++;
    this.attempts[attempts] = (this.attempts[attempts] ?? 0) + 1;
    this.firstHandledAt ??= now;
    this.lastHandledAt = now;
    this.seen++;
    if (this.latencies.length < MAX_SAMPLES) this.latencies.push(latencyMs);
    else {
      const slot = Math.floor(Math.random() * this.seen);
      if (slot < MAX_SAMPLES) this.latencies[slot] = latencyMs;
    }
  }
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface DeadLetterView {
  orderId?: string;
  topic: string;
  channel: string;
  attempts: number;
  reason: string;
  error: string;
  failedAt: string;
  /** The original message body, as it was published. */
  body: string;
}

function summarize(samples: number[]): LatencySummary {
  if (samples.length === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return {
    count: sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted[sorted.length - 1],
  };
}

/** Counters of the order flow, read by GET /stats (and by `npm run demo`). */
@Injectable()
export class StatsService implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Shutdown');
  private readonly startedAt = Date.now();
  private readonly channels = new Map<string, ChannelCounters>();
  private accepted = 0;
  private poisonAccepted = 0;
  private firstAcceptedAt?: number;
  private lastAcceptedAt?: number;
  private quotes = 0;
  private deadLetterCount = 0;
  private unreadableDeadLetters = 0;
  private readonly deadLetters: DeadLetterView[] = [];

  private channel(name: string): ChannelCounters {
    let counters = this.channels.get(name);
    if (!counters) this.channels.set(name, (counters = new ChannelCounters()));
    return counters;
  }

  orderAccepted(poison: boolean): void {
    const now = Date.now();
    this.firstAcceptedAt ??= now;
    this.lastAcceptedAt = now;
    if (poison) this.poisonAccepted++;
    else this.accepted++;
  }

  handled(channel: string, orderId: string, attempts: number, createdAt: number): void {
    const now = Date.now();
    this.channel(channel).handled(orderId, attempts, Math.max(0, now - createdAt), now);
  }

  /** Per channel, the ids of `orderIds` it has not handled (successfully) yet. */
  missing(orderIds: string[]): Record<string, string[]> {
    return Object.fromEntries(
      [...this.channels].map(([name, c]) => [name, orderIds.filter((id) => !c.orders.has(id))]),
    );
  }

  failed(channel: string, lastAttempt: boolean): void {
    const counters = this.channel(channel);
    if (lastAttempt) counters.gaveUp++;
    else counters.retried++;
  }

  quoted(): void {
    this.quotes++;
  }

  deadLettered(letter: NsqDeadLetter | undefined): void {
    if (!letter) {
      this.unreadableDeadLetters++;
      return;
    }
    this.deadLetterCount++;
    // The payload: with tracing on, the body on the wire starts with the transport's frame.
    const body = (letter.payload ?? letter.body).toString('utf8');
    let orderId: string | undefined;
    try {
      orderId = (JSON.parse(body) as { id?: string }).id;
    } catch {
      orderId = undefined;
    }
    this.deadLetters.push({
      orderId,
      topic: letter.topic,
      channel: letter.channel,
      attempts: letter.attempts,
      reason: letter.reason,
      error: letter.error,
      failedAt: letter.failedAt,
      body,
    });
    if (this.deadLetters.length > MAX_DEAD_LETTERS) this.deadLetters.shift();
  }

  /** Before Nest closes the NSQ server (SIGTERM with enableShutdownHooks): what is handled so far. */
  beforeApplicationShutdown(signal?: string): void {
    this.logger.log(
      `${signal ?? 'close'}: draining the consumers; handled so far ${this.handledLine()}`,
    );
  }

  /** After the drain: handlers in flight have finished and their FIN/REQ reached nsqd. */
  onApplicationShutdown(signal?: string): void {
    this.logger.log(`${signal ?? 'close'}: drained and closed; handled ${this.handledLine()}`);
  }

  private handledLine(): string {
    const parts = [...this.channels]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, c]) => `${name}=${c.orders.size}`);
    return parts.length ? parts.join(' ') : 'nothing';
  }

  snapshot() {
    const channels: Record<string, unknown> = {};
    const all: number[] = [];
    let lastHandledAt: number | undefined;
    for (const [name, c] of [...this.channels].sort(([a], [b]) => a.localeCompare(b))) {
      channels[name] = {
        handled: c.orders.size,
        deliveries: c.deliveries,
        duplicates: c.deliveries - c.orders.size,
        retried: c.retried,
        gaveUp: c.gaveUp,
        attempts: c.attempts,
        latencyMs: summarize(c.latencies),
        firstHandledAt: c.firstHandledAt,
        lastHandledAt: c.lastHandledAt,
      };
      for (const l of c.latencies) all.push(l);
      if (c.lastHandledAt && (!lastHandledAt || c.lastHandledAt > lastHandledAt))
        lastHandledAt = c.lastHandledAt;
    }
    return {
      uptimeMs: Date.now() - this.startedAt,
      orders: {
        accepted: this.accepted,
        poison: this.poisonAccepted,
        firstAcceptedAt: this.firstAcceptedAt,
        lastAcceptedAt: this.lastAcceptedAt,
      },
      channels,
      latencyMs: summarize(all),
      lastHandledAt,
      deadLetters: {
        count: this.deadLetterCount,
        unreadable: this.unreadableDeadLetters,
        recent: this.deadLetters,
      },
      quotes: this.quotes,
    };
  }
}

export type StatsSnapshot = ReturnType<StatsService['snapshot']>;
