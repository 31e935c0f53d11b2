import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { NsqValidationError } from '../errors.js';
import {
  isBoolean,
  isInt,
  isMs,
  MAX_TIMER_MS,
  msExpected,
  isNonEmptyString,
  resolveOptions,
  spec,
  type OptionsSchema,
} from '../options.js';

/**
 * The package's own version, read from its package.json (two levels up, in lib/ and dist/);
 * a bundled app may have no package.json there, and a user agent is no reason to fail.
 */
const VERSION = ((): string => {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

/** IDENTIFY's default user_agent: nsqadmin and nsqd's /stats show it per client. */
export const USER_AGENT = `nestjs-nsq/${VERSION}`;

/** Connection settings a user may give to a consumer or a producer (all optional). */
export interface NsqConnectionSettings {
  /** Sent in IDENTIFY as client_id. Default: the short hostname. */
  clientId?: string;
  /** Sent in IDENTIFY. Default: the hostname. */
  hostname?: string;
  /** Sent in IDENTIFY. Default 'nestjs-nsq/<version>'. */
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
   * Largest message body nsqd accepts and delivers (its --max-msg-size), bytes. Default 1 MiB.
   * Larger publishes are refused before sending; a larger frame from nsqd drops the connection.
   */
  maxMessageSize?: number;
  /**
   * Bytes nsqd buffers before writing to this client. Default 4096: at 10 000 msg/s the buffer
   * fills in about 2 ms, where nsqd's default of 16 KiB holds messages about 7 ms; consume
   * throughput is the same. At low rates adaptive RDY (the default) has nsqd write each message
   * at once anyway. -1 turns buffering off (three writes per message at nsqd): consume
   * throughput falls to 0.3-0.45x (the bench's consume rows), for latency that adaptive RDY
   * mostly gives already.
   */
  outputBufferSize?: number;
  /**
   * ms nsqd may hold messages in its output buffer before flushing them to this client: the
   * latency floor of a quiet channel with adaptiveRdy false. Default 25 (nsqd's
   * --min-output-buffer-timeout; nsqd's own default is 250). -1 turns the timer off: nsqd then
   * flushes only when its buffer fills or RDY is used up, so it is refused without
   * outputBufferSize -1.
   */
  outputBufferTimeout?: number;
}

/** What one connection negotiates with nsqd (IDENTIFY and AUTH): the settings, resolved. */
export type ConnectionOptions = Required<Omit<NsqConnectionSettings, 'authSecret'>> & {
  authSecret?: Secret;
  /** A consumer's connection asks for delivery settings; a producer's does not. */
  role: 'consumer' | 'producer';
};

/** Holds a secret so that it never shows in logs, inspection or JSON. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[secret]';
  }
  toString(): string {
    return '[secret]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[secret]';
  }
}

const host = hostname();

export const connectionSchema: OptionsSchema<NsqConnectionSettings> = {
  tls: spec<boolean | TlsOptions>(
    false,
    (v) => typeof v === 'boolean' || (typeof v === 'object' && v !== null),
    'a boolean or Node TLS options',
    '`true`, or Node TLS options (`ca`, `cert`, `key`, `servername`, ...)',
  ),
  deflate: spec(false, isBoolean, 'a boolean', 'deflate stream compression'),
  deflateLevel: spec(6, isInt(1, 9), 'an integer 1..9', 'deflate level'),
  snappy: spec(
    false,
    isBoolean,
    'a boolean',
    'snappy stream compression; needs the `snappy` package',
  ),
  authSecret: spec<string>(
    undefined,
    (v) => isNonEmptyString(v) || v instanceof Secret,
    'a non-empty string',
    'sent when nsqd says `auth_required`',
    { secret: true },
  ),
  heartbeatInterval: spec(
    30_000,
    isMs(1000),
    msExpected(1000),
    'ms; a connection silent for 2 intervals is replaced',
  ),
  msgTimeout: spec(
    0,
    isMs(0),
    msExpected(0),
    "ms before nsqd redelivers an unanswered message; 0: nsqd's --msg-timeout",
  ),
  outputBufferTimeout: spec(
    25,
    isInt(-1, MAX_TIMER_MS),
    `an integer -1..${MAX_TIMER_MS} (ms)`,
    "ms nsqd may hold messages before flushing (nsqd's default 250); -1 turns the timer off, and needs outputBufferSize -1",
  ),
  outputBufferSize: spec(
    4096,
    isInt(-1),
    'an integer >= -1',
    "bytes nsqd buffers before writing (nsqd's default 16 KiB adds latency); -1 turns buffering off: 0.3-0.45x the consume throughput, for latency adaptiveRdy mostly gives already",
  ),
  sampleRate: spec(
    0,
    isInt(0, 99),
    'an integer 0..99',
    "percent of the channel's messages to receive; 0: all",
  ),
  clientId: spec(host.split('.')[0], isNonEmptyString, 'a non-empty string', 'IDENTIFY client_id', {
    defaultText: 'short hostname',
  }),
  hostname: spec(host, isNonEmptyString, 'a non-empty string', 'IDENTIFY hostname', {
    defaultText: 'hostname',
  }),
  userAgent: spec(USER_AGENT, isNonEmptyString, 'a non-empty string', 'IDENTIFY user_agent', {
    defaultText: 'nestjs-nsq/<version>',
  }),
  maxMessageSize: spec(
    1024 * 1024,
    isInt(1, 1024 ** 3),
    'an integer 1..1073741824 (bytes)',
    'nsqd `--max-msg-size`: larger publishes are refused before sending, a larger frame from nsqd drops the connection',
    { defaultText: '1 MiB' },
  ),
  connectTimeout: spec(5000, isMs(1), msExpected(1), 'ms for TCP connect plus handshake'),
};

export function resolveConnectionOptions(
  owner: string,
  settings: NsqConnectionSettings,
  role: ConnectionOptions['role'],
): ConnectionOptions {
  const o = resolveOptions(owner, connectionSchema, settings) as Omit<ConnectionOptions, 'role'>;
  assertOutputBuffering(owner, o);
  const secret = settings.authSecret as string | Secret | undefined;
  return {
    ...o,
    role,
    authSecret: typeof secret === 'string' ? new Secret(secret) : secret,
  };
}

/**
 * outputBufferTimeout -1 turns nsqd's flush timer off: with a buffer, a message that does not
 * fill it would wait for later traffic, maybe for good.
 */
export function assertOutputBuffering(
  owner: string,
  settings: Pick<NsqConnectionSettings, 'outputBufferSize' | 'outputBufferTimeout'>,
): void {
  if (settings.outputBufferTimeout === -1 && settings.outputBufferSize !== -1) {
    throw new NsqValidationError(
      `${owner}: outputBufferTimeout -1 turns nsqd's flush timer off, so a message that does not ` +
        'fill its output buffer could wait for later traffic; give outputBufferSize: -1 with it ' +
        '(no buffering), or leave outputBufferTimeout at its default',
    );
  }
}

/** The connection settings among wider options (a client's, a server's), nothing else. */
export function connectionSettingsOf(options: object): NsqConnectionSettings {
  return Object.fromEntries(Object.entries(options).filter(([key]) => key in connectionSchema));
}

/** Settings with the AUTH secret wrapped, for objects that keep the user's options. */
export function hideSecret<T extends NsqConnectionSettings>(settings: T): T {
  if (settings && typeof settings.authSecret === 'string') {
    return { ...settings, authSecret: new Secret(settings.authSecret) as unknown as string };
  }
  return settings;
}

/** Exponential reconnect delay with jitter: 250 ms doubling up to `max`. */
export function reconnectDelay(failures: number, max: number): number {
  const base = Math.min(max, 250 * 2 ** Math.min(failures, 20));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
