import { NsqConnectionError } from '../errors.js';

/** 'host:port' or 'http(s)://host:port' -> the base URL of nsqlookupd's HTTP API. */
export function lookupdUrl(address: string): string {
  const base = /^https?:\/\//.test(address) ? address : `http://${address}`;
  return base.replace(/\/+$/, '');
}

interface LookupProducer {
  broadcast_address: string;
  tcp_port: number;
}

/**
 * Asks one nsqlookupd which nsqd hold `topic`; returns their TCP 'host:port' addresses.
 * A topic nsqlookupd does not know yet is an empty list, not an error.
 */
export async function lookupTopic(
  address: string,
  topic: string,
  timeoutMs = 5000,
): Promise<string[]> {
  const url = `${lookupdUrl(address)}/lookup?topic=${encodeURIComponent(topic)}`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { accept: 'application/vnd.nsq; version=1.0' },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const code = ((err as Error).cause as { code?: string } | undefined)?.code;
    throw new NsqConnectionError(
      `nsqlookupd at ${address} did not answer: ${(err as Error).message}${code ? ` (${code})` : ''}`,
      address,
      { cause: err },
    );
  }
  if (res.status === 404) {
    const text = await res.text();
    // nsqlookupd says TOPIC_NOT_FOUND; any other 404 means this is not an nsqlookupd.
    if (text.includes('TOPIC_NOT_FOUND')) return [];
    throw new NsqConnectionError(
      `${address} answered /lookup with HTTP 404 ${text.trim()}: is it nsqlookupd's HTTP address (port 4161 by default)?`,
      address,
    );
  }
  if (!res.ok) {
    throw new NsqConnectionError(
      `nsqlookupd at ${address} answered HTTP ${res.status}: ${await res.text()}`,
      address,
    );
  }
  const json = (await res.json()) as {
    producers?: LookupProducer[];
    data?: { producers?: LookupProducer[] };
  };
  const producers = json.producers ?? json.data?.producers ?? [];
  return producers.map((p) =>
    p.broadcast_address.includes(':')
      ? `[${p.broadcast_address}]:${p.tcp_port}`
      : `${p.broadcast_address}:${p.tcp_port}`,
  );
}
