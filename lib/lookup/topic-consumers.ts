import { parseAddress, joinHostPort } from '../connection/address.js';
import { fetchJson, lookupdUrl } from './lookupd.js';

const TIMEOUT = 2000;

interface Producer {
  broadcast_address: string;
  http_port: number;
}

async function getJson(url: string, what: string): Promise<unknown> {
  const { status, json } = await fetchJson(url, what, TIMEOUT);
  if (status === 404) return undefined;
  if (status < 200 || status > 299) throw new Error(`${what}: HTTP ${status}`);
  return json;
}

/** The nsqd HTTP addresses that hold `topic`, by nsqlookupd; [] if it knows none. */
async function nsqdHoldingTopic(lookupd: string, topic: string): Promise<string[]> {
  const url = `${lookupdUrl(lookupd)}/lookup?topic=${encodeURIComponent(topic)}`;
  const json = (await getJson(url, `nsqlookupd at ${lookupd}`)) as
    { producers?: Producer[]; data?: { producers?: Producer[] } } | undefined;
  const producers = json?.producers ?? json?.data?.producers ?? [];
  return producers
    .filter((p) => typeof p?.broadcast_address === 'string' && Number.isInteger(p?.http_port))
    .map((p) => joinHostPort(p.broadcast_address, p.http_port));
}

/** The channels of `topic` on one nsqd (its HTTP address). */
async function channelsOn(nsqdHttp: string, topic: string): Promise<number> {
  const url = `http://${nsqdHttp}/stats?format=json&topic=${encodeURIComponent(topic)}`;
  const json = (await getJson(url, `nsqd at ${nsqdHttp}`)) as
    { topics?: { topic_name: string; channels?: unknown[] }[] } | undefined;
  const t = json?.topics?.find((x) => x.topic_name === topic);
  return t?.channels?.length ?? 0;
}

/**
 * How many channels `topic` has over the nsqd that hold it: 0 means nothing consumes it, nor
 * ever did since those nsqd started (a channel outlives its consumers, who may come back).
 * Asked of nsqlookupd (which nsqd hold it) and those nsqd's HTTP APIs; without lookupd, each
 * nsqd's HTTP API is assumed at its TCP port + 1 (4150 -> 4151, nsqd's default layout).
 * Undefined when nothing answered.
 */
export async function countTopicChannels(
  topic: string,
  sources: { lookupd: string[]; nsqd: string[] },
  /** Told when no lookupd answered; the nsqd given are asked instead. */
  onLookupdFailed: (error: Error) => void = () => undefined,
): Promise<number | undefined> {
  let nsqdHttp: string[] | undefined;
  if (sources.lookupd.length) {
    const lists = await Promise.allSettled(sources.lookupd.map((l) => nsqdHoldingTopic(l, topic)));
    const answered = lists.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (answered.length) nsqdHttp = [...new Set(answered.flat())];
    else onLookupdFailed((lists[0] as PromiseRejectedResult).reason as Error);
  }
  nsqdHttp ??= sources.nsqd.map((a) => {
    const { host, port } = parseAddress(a);
    return joinHostPort(host, port + 1);
  });
  if (!nsqdHttp.length) return 0;
  const counts = await Promise.allSettled(nsqdHttp.map((n) => channelsOn(n, topic)));
  const known = counts.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  return known.length ? known.reduce((a, b) => a + b, 0) : undefined;
}
