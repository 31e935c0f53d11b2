// Prometheus' text exposition format (version 0.0.4), written out here: the format is small and
// stable, and it spares every user a metrics library they may not use. Series of several servers
// or clients with the same labels are summed.
import type { HistogramSnapshot } from '../metrics.js';
import type { ClientNsq } from './client-nsq.js';
import type { ServerNsq } from './server-nsq.js';

/** The content type a `/metrics` route answers with. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Kind = 'counter' | 'gauge' | 'histogram';
type Labels = Record<string, string>;

class Exposition {
  private readonly families = new Map<
    string,
    { kind: Kind; help: string; series: Map<string, number> }
  >();

  add(name: string, kind: Kind, help: string, labels: Labels, value: number): void {
    let family = this.families.get(name);
    if (!family) this.families.set(name, (family = { kind, help, series: new Map() }));
    const key = formatLabels(labels);
    family.series.set(key, (family.series.get(key) ?? 0) + value);
  }

  histogram(name: string, help: string, labels: Labels, h: HistogramSnapshot): void {
    for (const [le, count] of h.buckets) {
      const bound = le === Infinity ? '+Inf' : String(le);
      this.add(name, 'histogram', help, { ...labels, le: bound }, count);
    }
    this.add(`${name}_sum`, 'histogram', help, labels, h.sum);
    this.add(`${name}_count`, 'histogram', help, labels, h.count);
  }

  text(): string {
    const lines: string[] = [];
    for (const [name, { kind, help, series }] of this.families) {
      // _sum and _count belong to their histogram's family: no HELP/TYPE lines of their own.
      if (!/_(sum|count)$/.test(name) || kind !== 'histogram') {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`);
      }
      const metric = kind === 'histogram' && !/_(sum|count)$/.test(name) ? `${name}_bucket` : name;
      for (const [labels, value] of series) lines.push(`${metric}${labels} ${value}`);
    }
    return lines.join('\n') + '\n';
  }
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
  );
  return parts.length ? `{${parts.join(',')}}` : '';
}

/**
 * The metrics of the given servers and clients in Prometheus' text format, for a `/metrics`
 * route: `res.type(PROMETHEUS_CONTENT_TYPE).send(prometheusText({ servers: [server] }))`.
 */
export function prometheusText(sources: { servers?: ServerNsq[]; clients?: ClientNsq[] }): string {
  const out = new Exposition();
  for (const server of sources.servers ?? []) {
    for (const p of server.metrics().patterns) {
      const l = { topic: p.topic, channel: p.channel };
      const counter = (name: string, help: string, value: number) =>
        out.add(`nsq_consumer_${name}`, 'counter', help, l, value);
      const gauge = (name: string, help: string, value: number) =>
        out.add(`nsq_consumer_${name}`, 'gauge', help, l, value);
      counter('messages_received_total', 'Messages nsqd delivered.', p.received);
      counter('messages_finished_total', 'Messages answered with FIN.', p.finished);
      counter('messages_requeued_total', 'Messages answered with REQ.', p.requeued);
      counter('handler_failures_total', 'Handler runs that failed.', p.failed);
      counter('messages_given_up_total', 'Messages given up after maxAttempts.', p.gaveUp);
      counter('messages_dead_lettered_total', 'Dead letters published.', p.deadLettered);
      counter('disconnects_total', 'nsqd connections lost after subscribing.', p.disconnects);
      out.histogram(
        'nsq_consumer_handler_duration_seconds',
        'Handler run time.',
        l,
        p.handlerSeconds,
      );
      gauge('in_flight', 'Messages delivered and not yet answered.', p.inFlight);
      gauge('rdy', 'RDY over all connections.', p.rdy);
      gauge('connections', 'nsqd connections subscribed.', p.connections);
      gauge('backoff_level', 'Backoff level; 0 is full speed.', p.backoffLevel);
    }
  }
  for (const client of sources.clients ?? []) {
    const m = client.metrics();
    for (const [topic, t] of Object.entries(m.topics)) {
      const l = { topic };
      out.add(
        'nsq_producer_messages_published_total',
        'counter',
        'Messages nsqd acknowledged.',
        l,
        t.published,
      );
      out.add(
        'nsq_producer_publish_failures_total',
        'counter',
        'Messages whose publish failed.',
        l,
        t.failed,
      );
    }
    out.histogram(
      'nsq_producer_batch_size',
      'Messages per command (PUB 1, MPUB n).',
      {},
      m.batchSize,
    );
    out.add('nsq_producer_pending', 'gauge', 'Publishes not yet acknowledged.', {}, m.pending);
    out.add('nsq_producer_connections', 'gauge', 'nsqd connections open.', {}, m.connections);
    out.add(
      'nsq_producer_disconnects_total',
      'counter',
      'nsqd connections lost.',
      {},
      m.disconnects,
    );
  }
  return out.text();
}
