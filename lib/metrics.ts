// Counters and a histogram the consumer and producer keep as they work: plain numbers, so that
// keeping them costs an increment; snapshots are taken only when somebody asks.

/** Upper bounds, in seconds, of the handler-duration buckets (Prometheus' default set). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
/** Upper bounds of the messages-per-command buckets of a producer (PUB is 1, MPUB more). */
export const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500] as const;

/** A histogram as Prometheus reads one: cumulative counts per upper bound, plus sum and count. */
export interface HistogramSnapshot {
  /** [upper bound, observations <= it]; the last bound is +Infinity. */
  buckets: [le: number, count: number][];
  sum: number;
  count: number;
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    let running = 0;
    const buckets = this.counts.map((c, i): [number, number] => {
      running += c;
      return [i < this.bounds.length ? this.bounds[i] : Infinity, running];
    });
    return { buckets, sum: this.sum, count: this.count };
  }
}

/** What a consumer (one topic/channel) has done since it was made. */
export interface ConsumerMetrics {
  topic: string;
  channel: string;
  /** Messages delivered by nsqd. */
  received: number;
  /** Answered with FIN (handled, or given up). */
  finished: number;
  /** Answered with REQ (a failed attempt, or handed back at close). */
  requeued: number;
  /** Handler runs that failed. */
  failed: number;
  /** Messages given up after maxAttempts (or at once: undecodable, or asked by the error). */
  gaveUp: number;
  /** Handler run time, seconds. */
  handlerSeconds: HistogramSnapshot;
  /** Messages delivered and not yet answered, now. */
  inFlight: number;
  /** RDY over all connections, now. */
  rdy: number;
  /** nsqd connections subscribed, now. */
  connections: number;
  /** Connections that dropped after they were subscribed. */
  disconnects: number;
  /** Backoff level now: 0 is full speed. */
  backoffLevel: number;
}

/** What a producer has done since it was made. */
export interface ProducerMetrics {
  /** Per topic: messages nsqd acknowledged, and messages whose publish failed. */
  topics: Record<string, { published: number; failed: number }>;
  /** Messages per command sent (PUB 1, MPUB n, DPUB 1). */
  batchSize: HistogramSnapshot;
  /** Publishes sent and not yet acknowledged, now. */
  pending: number;
  /** nsqd connections open, now. */
  connections: number;
  /** Connections that dropped after they were ready. */
  disconnects: number;
}

/** Topics counted one by one; publishes to further topics are counted under OTHER_TOPICS. */
export const MAX_COUNTED_TOPICS = 1000;
export const OTHER_TOPICS = '(other)';
/** Every reply topic (`reply.<16 hex>#ephemeral`, one per client) is counted under this. */
export const EPHEMERAL_TOPICS = '(ephemeral)';

/** The counters of one producer: per topic outcomes and the command sizes. */
export class PublishCounters {
  private readonly topics = new Map<string, { published: number; failed: number }>();
  readonly batchSize = new Histogram(BATCH_BUCKETS);
  disconnects = 0;

  settled(name: string, messages: number, failed: boolean): void {
    // Bounded: topic names can come from data, and every client has its own reply topic.
    let topic = name.endsWith('#ephemeral') ? EPHEMERAL_TOPICS : name;
    if (!this.topics.has(topic) && this.topics.size >= MAX_COUNTED_TOPICS) topic = OTHER_TOPICS;
    let t = this.topics.get(topic);
    if (!t) this.topics.set(topic, (t = { published: 0, failed: 0 }));
    if (failed) t.failed += messages;
    else t.published += messages;
  }

  topicsSnapshot(): ProducerMetrics['topics'] {
    return Object.fromEntries([...this.topics].map(([k, v]) => [k, { ...v }]));
  }
}
