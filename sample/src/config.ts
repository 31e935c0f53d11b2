import { ConfigService } from '@nestjs/config';

/** Everything the sample reads from the environment, with the defaults of a local NSQ. */
export interface SampleConfig {
  /** NSQD_ADDRESS: nsqd TCP 'host:port' list (comma separated). Default 127.0.0.1:4150. */
  nsqd: string[];
  /** NSQLOOKUPD_ADDRESS: nsqlookupd HTTP 'host:port' list, optional: discovers more nsqd. */
  lookupd: string[];
  /** PORT and HOST of the HTTP API. Default 127.0.0.1:3000 (HOST=0.0.0.0 in a container). */
  port: number;
  host: string;
  /** FLAKY_PERCENT: share of orders whose first billing attempt fails. Default 10. */
  flakyPercent: number;
  /** MAX_IN_FLIGHT: messages in flight per channel. Default 200. */
  maxInFlight: number;
  /** LOOKUPD_POLL_INTERVAL (ms). Default 15 000. */
  lookupdPollInterval: number;
  /** TRACING=1: OpenTelemetry spans for every emit and handler run (see tracing.ts). */
  tracing: boolean;
  /** CHARGE_DELAY_MS: how long the stand-in payment call of billing takes. Default 0. */
  chargeDelayMs: number;
}

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function int(config: ConfigService, key: string, fallback: number): number {
  const raw = config.get<string>(key);
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${key} must be an integer >= 0, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function sampleConfig(config: ConfigService): SampleConfig {
  const nsqd = list(config.get<string>('NSQD_ADDRESS'));
  return {
    nsqd: nsqd.length ? nsqd : ['127.0.0.1:4150'],
    lookupd: list(config.get<string>('NSQLOOKUPD_ADDRESS')),
    port: int(config, 'PORT', 3000),
    host: config.get<string>('HOST') || '127.0.0.1',
    flakyPercent: int(config, 'FLAKY_PERCENT', 10),
    maxInFlight: int(config, 'MAX_IN_FLIGHT', 200) || 200,
    lookupdPollInterval: int(config, 'LOOKUPD_POLL_INTERVAL', 15_000) || 15_000,
    tracing: config.get<string>('TRACING') === '1',
    chargeDelayMs: int(config, 'CHARGE_DELAY_MS', 0),
  };
}

/** The injection token of the resolved SampleConfig. */
export const SAMPLE_CONFIG = Symbol('SAMPLE_CONFIG');
