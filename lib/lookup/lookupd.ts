import { joinHostPort } from '../connection/address.js';
import { NsqConnectionError, NsqProtocolError } from '../errors.js';

/** 'host:port' or 'http(s)://host:port' -> the base URL of nsqlookupd's HTTP API. */
export function lookupdUrl(address: string): string {
  const base = /^https?:\/\//.test(address) ? address : `http://${address}`;
  return base.replace(/\/+$/, '');
}

/** The most a lookupd answer may weigh: thousands of producers fit in far less. */
export const MAX_LOOKUP_BYTES = 1024 * 1024;
/** A host name or an IP literal, as nsqd's --broadcast-address can be. */
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*|[0-9a-fA-F:.]+)$/;

export interface LookupResult {
  /** nsqd TCP 'host:port' addresses. */
  addresses: string[];
  /** Entries that were not a usable producer, described. */
  rejected: string[];
}

/** GETs a JSON document from nsqd or nsqlookupd, bounded in time and size. */
export async function fetchJson(
  url: string,
  what: string,
  timeoutMs: number,
): Promise<{ status: number; json: unknown; text: string }> {
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { accept: 'application/vnd.nsq; version=1.0' },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const code = ((err as Error).cause as { code?: string } | undefined)?.code;
    // An HTTP parser error means something that is not HTTP answered: a TCP port.
    const hint = code?.startsWith('HPE_')
      ? ": it does not speak HTTP; is this nsqlookupd's TCP port (4160) instead of its HTTP port (4161)?"
      : '';
    throw new NsqConnectionError(
      `${what} did not answer: ${(err as Error).message}${code ? ` (${code})` : ''}${hint}`,
      undefined,
      { cause: err },
    );
  }
  const text = await readBounded(res, what);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

async function readBounded(res: Response, what: string): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > MAX_LOOKUP_BYTES) {
    await res.body?.cancel();
    throw new NsqProtocolError(`${what} answered ${declared} bytes, over ${MAX_LOOKUP_BYTES}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  for (let part = await reader?.read(); part && !part.done; part = await reader!.read()) {
    size += part.value.length;
    if (size > MAX_LOOKUP_BYTES) {
      await reader!.cancel();
      throw new NsqProtocolError(`${what} answered more than ${MAX_LOOKUP_BYTES} bytes`);
    }
    chunks.push(part.value);
  }
  return Buffer.concat(chunks).toString();
}

/**
 * Asks one nsqlookupd which nsqd hold `topic`: their TCP addresses, and the entries that are
 * not a valid producer. A topic nsqlookupd does not know yet is an empty list, not an error.
 */
export async function lookupTopic(
  address: string,
  topic: string,
  timeoutMs = 5000,
): Promise<LookupResult> {
  const what = `nsqlookupd at ${address}`;
  const url = `${lookupdUrl(address)}/lookup?topic=${encodeURIComponent(topic)}`;
  const { status, json, text } = await fetchJson(url, what, timeoutMs);
  if (status === 404) {
    // nsqlookupd says TOPIC_NOT_FOUND; any other 404 means this is not an nsqlookupd.
    if (text.includes('TOPIC_NOT_FOUND')) return { addresses: [], rejected: [] };
    throw new NsqConnectionError(
      `${address} answered /lookup with HTTP 404 ${text.trim().slice(0, 200)}: is it nsqlookupd's HTTP address (port 4161 by default)?`,
      address,
    );
  }
  if (status < 200 || status > 299) {
    throw new NsqConnectionError(`${what} answered HTTP ${status}: ${text.slice(0, 200)}`, address);
  }
  const body = json as { producers?: unknown; data?: { producers?: unknown } } | undefined;
  const producers = body?.producers ?? body?.data?.producers;
  if (!Array.isArray(producers)) {
    throw new NsqProtocolError(
      `${what} answered /lookup without a producers list: ${text.slice(0, 200)}`,
    );
  }
  const addresses: string[] = [];
  const rejected: string[] = [];
  for (const p of producers as { broadcast_address?: unknown; tcp_port?: unknown }[]) {
    const host = p?.broadcast_address;
    const port = p?.tcp_port;
    if (
      typeof host === 'string' &&
      host.length <= 253 &&
      HOST.test(host) &&
      Number.isInteger(port) &&
      (port as number) >= 1 &&
      (port as number) <= 65535
    ) {
      addresses.push(joinHostPort(host, port as number));
    } else {
      rejected.push(JSON.stringify(p)?.slice(0, 100) ?? String(p));
    }
  }
  return { addresses: [...new Set(addresses)], rejected };
}
