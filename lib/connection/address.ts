import { NsqConnectionError, NsqValidationError } from '../errors.js';

/** Splits 'host:port' (or '[v6]:port'); throws a clear error for anything else. */
export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]\s]+)\]|([^:/\s[\]]+)):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new NsqConnectionError(
      `Invalid nsqd address ${JSON.stringify(address)}: expected 'host:port' ('[v6]:port'), e.g. '127.0.0.1:4150'`,
      address,
    );
  }
  return { host: match[1] ?? match[2], port };
}

/** True for an IPv4 or IPv6 literal (TLS then verifies an IP SAN, not a DNS name). */
export const isIp = (host: string): boolean => /^[\d.]+$/.test(host) || host.includes(':');

/** 'host:port' of an nsqd; an IPv6 host gets brackets. */
export const joinHostPort = (host: string, port: number): string =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

/**
 * Checks nsqd TCP addresses ('host:port') or nsqlookupd HTTP addresses (also
 * 'http(s)://host:port'); throws an error naming the option and the bad entry.
 */
export function checkAddressList(
  owner: string,
  name: 'nsqd' | 'lookupd',
  value: unknown,
): string[] {
  if (value === undefined) return [];
  const expected = name === 'lookupd' ? "'host:port' or 'http(s)://host:port'" : "'host:port'";
  if (!Array.isArray(value)) {
    throw new NsqValidationError(
      `${owner}: option ${name} must be an array of ${expected} strings`,
    );
  }
  for (const a of value) {
    const hostPort =
      typeof a === 'string' && name === 'lookupd' ? a.replace(/^https?:\/\/|\/$/g, '') : a;
    try {
      parseAddress(hostPort);
    } catch {
      throw new NsqValidationError(
        `${owner}: option ${name} has an invalid address ${JSON.stringify(a)}; expected ${expected}` +
          (name === 'nsqd' ? " (nsqd's TCP address, port 4150 by default)" : ''),
      );
    }
  }
  return value as string[];
}
