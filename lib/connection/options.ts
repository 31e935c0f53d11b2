import { hostname } from 'node:os';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { NsqValidationError } from '../protocol/errors.js';
import { parseAddress, type ConnectionOptions } from './connection.js';

export const USER_AGENT = 'nestjs-nsq/0.1';

/** Connection settings a user may give to a consumer or a producer (all optional). */
export interface NsqConnectionSettings {
  /** Sent in IDENTIFY as client_id. Default: the short hostname. */
  clientId?: string;
  hostname?: string;
  userAgent?: string;
  /** ms between nsqd heartbeats; two missed and the connection is replaced. Default 30 000. */
  heartbeatInterval?: number;
  /** ms nsqd waits for FIN/REQ/TOUCH before redelivering (0: nsqd's --msg-timeout). Default 0. */
  msgTimeout?: number;
  /** Percentage of the channel's messages this client receives (0: all). Default 0. */
  sampleRate?: number;
  /** Negotiate TLS: true, or Node TLS options (ca, cert, key, servername...). Default false. */
  tls?: boolean | TlsOptions;
  /** Negotiate deflate stream compression. Default false. */
  deflate?: boolean;
  /** 1..9. Default 6. */
  deflateLevel?: number;
  /** Negotiate snappy stream compression (needs the optional `snappy` package). Default false. */
  snappy?: boolean;
  /** Sent with AUTH when nsqd says auth_required. */
  authSecret?: string;
  /** ms for TCP connect plus handshake. Default 5 000. */
  connectTimeout?: number;
  /**
   * Bytes nsqd buffers before writing to this client. Default 4096: at 10 000 msg/s the buffer
   * fills in about 2 ms, where nsqd's default of 16 KiB holds messages about 7 ms; consume
   * throughput is the same. -1 turns buffering off (lowest latency, far lower throughput).
   */
  outputBufferSize?: number;
  /**
   * ms nsqd may hold messages in its output buffer before flushing them to this client: the
   * latency floor of a quiet channel. Default 25 (nsqd's --min-output-buffer-timeout; nsqd's
   * own default is 250). -1 turns the timer off; see also outputBufferSize -1 (no buffering).
   */
  outputBufferTimeout?: number;
}

type Check = (value: unknown) => boolean;
const isInt: Check = (v) => Number.isInteger(v);

/** Returns `value ?? fallback` after checking it, or throws an error that names the option. */
export function option<T>(
  owner: string,
  name: string,
  value: T | undefined,
  fallback: T,
  check: (v: T) => boolean,
  expected: string,
): T {
  if (value === undefined) return fallback;
  if (!check(value)) {
    throw new NsqValidationError(
      `${owner}: option ${name} must be ${expected}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export const intInRange =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (v: unknown): boolean =>
    isInt(v) && (v as number) >= min && (v as number) <= max;

/** Validates 'host:port' addresses; throws an error naming the option and the bad entry. */
/**
 * Checks nsqd TCP addresses ('host:port') or nsqlookupd HTTP addresses (also 'http(s)://host:port');
 * throws an error naming the option and the bad entry.
 */
export function addressList(owner: string, name: 'nsqd' | 'lookupd', value: unknown): string[] {
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

export function resolveConnectionOptions(
  owner: string,
  s: NsqConnectionSettings,
): ConnectionOptions {
  const host = hostname();
  const str = (v: unknown) => typeof v === 'string' && v.length > 0;
  return {
    clientId: option(owner, 'clientId', s.clientId, host.split('.')[0], str, 'a non-empty string'),
    hostname: option(owner, 'hostname', s.hostname, host, str, 'a non-empty string'),
    userAgent: option(owner, 'userAgent', s.userAgent, USER_AGENT, str, 'a non-empty string'),
    heartbeatInterval: option(
      owner,
      'heartbeatInterval',
      s.heartbeatInterval,
      30_000,
      intInRange(1000),
      'an integer >= 1000 (ms)',
    ),
    msgTimeout: option(owner, 'msgTimeout', s.msgTimeout, 0, intInRange(0), 'an integer >= 0 (ms)'),
    sampleRate: option(owner, 'sampleRate', s.sampleRate, 0, intInRange(0, 99), 'an integer 0..99'),
    tls: option(
      owner,
      'tls',
      s.tls,
      false,
      (v) => typeof v === 'boolean' || (typeof v === 'object' && v !== null),
      'a boolean or Node TLS options',
    ),
    deflate: option(owner, 'deflate', s.deflate, false, (v) => typeof v === 'boolean', 'a boolean'),
    deflateLevel: option(
      owner,
      'deflateLevel',
      s.deflateLevel,
      6,
      intInRange(1, 9),
      'an integer 1..9',
    ),
    snappy: option(owner, 'snappy', s.snappy, false, (v) => typeof v === 'boolean', 'a boolean'),
    authSecret: option(owner, 'authSecret', s.authSecret, undefined, str, 'a non-empty string'),
    connectTimeout: option(
      owner,
      'connectTimeout',
      s.connectTimeout,
      5000,
      intInRange(1),
      'a positive integer (ms)',
    ),
    outputBufferSize: option(
      owner,
      'outputBufferSize',
      s.outputBufferSize,
      4096,
      intInRange(-1),
      'an integer >= -1',
    ),
    outputBufferTimeout: option(
      owner,
      'outputBufferTimeout',
      s.outputBufferTimeout,
      25,
      intInRange(-1),
      'an integer >= -1 (ms)',
    ),
  };
}

/** Exponential reconnect delay with jitter: 250 ms doubling up to `max`. */
export function reconnectDelay(failures: number, max: number): number {
  const base = Math.min(max, 250 * 2 ** Math.min(failures, 20));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
