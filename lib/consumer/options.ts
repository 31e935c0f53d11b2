import { checkAddressList } from '../connection/address.js';
import { connectionSchema, type NsqConnectionSettings } from '../connection/settings.js';
import {
  invalidOption,
  isFunction,
  isBoolean,
  isInt,
  isMs,
  msExpected,
  spec,
  type OptionsSchema,
} from '../options.js';
import { DEFAULT_BACKOFF, type BackoffSettings } from './backoff.js';
import type { NsqMessage } from './nsq-message.js';

/** ms to wait before delivering again after failed attempt number `attempts`. */
export type RequeueDelay = number | ((attempts: number, error: unknown) => number);

export interface ConsumerOptions extends NsqConnectionSettings {
  /** nsqd TCP addresses ('host:port') to consume from directly. */
  nsqd?: string[];
  /** nsqlookupd HTTP addresses ('host:port' or 'http(s)://host:port') to discover nsqd. */
  lookupd?: string[];
  /** Most messages in flight at once over all connections. Default 100. */
  maxInFlight?: number;
  /**
   * RDY follows the messages actually in flight, so that nsqd writes each message at once at
   * low rates instead of holding it up to outputBufferTimeout; a backlog still gets all of
   * maxInFlight within a few round trips (nsqd's `ready_count` is below maxInFlight while the
   * consumer is lightly loaded). false: RDY stays at maxInFlight. Default true.
   */
  adaptiveRdy?: boolean;
  /** Deliveries before a message is given up (0: never). Default 5. */
  maxAttempts?: number;
  /** Delay before a failed message is delivered again. Default attempts x 90 s, at most 15 min. */
  requeueDelay?: RequeueDelay;
  /**
   * Pause intake while failures are frequent (false: off). Default { multiplier: 1000,
   * maxDelay: 120000, window: 20, failureRate: 0.5 }: half of the last 20 results failed.
   */
  backoff?: false | Partial<BackoffSettings>;
  /** ms between nsqlookupd polls. Default 60 000. */
  lookupdPollInterval?: number;
  /** Fraction of the poll interval used as random jitter, 0..1. Default 0.3. */
  lookupdPollJitter?: number;
  /** Most nsqd connections at once (lookupd can list any number). Default 100. */
  maxNsqdConnections?: number;
  /** Longest wait between reconnect attempts to one nsqd, ms. Default 30 000. */
  maxReconnectDelay?: number;
  /** How long close() waits for handlers in flight before requeueing them, ms. Default 30 000. */
  drainTimeout?: number;
  /**
   * Called with a message that will not be tried again (maxAttempts reached, or the handler
   * said so); the message is FINished once it resolves, requeued if it throws.
   */
  onGiveUp?: (message: NsqMessage, reason: unknown) => unknown;
}

const MAX_DEFAULT_DELAY = 15 * 60_000;
const DEFAULT_REQUEUE_STEP = 90_000;
/** nsqd's default --max-req-timeout: a longer REQ delay makes nsqd drop the connection. */
export const MAX_REQUEUE_DELAY = 3_600_000;

/** The default requeue delay: attempts x 90 s, at most 15 min (as go-nsq). */
export function defaultRequeueDelay(attempts: number): number {
  return Math.min(attempts * DEFAULT_REQUEUE_STEP, MAX_DEFAULT_DELAY);
}

function assertBackoff(owner: string, name: string, value: unknown): void {
  if (value === false) return;
  if (typeof value !== 'object' || value === null) {
    throw invalidOption(
      owner,
      name,
      'false or { multiplier, maxDelay, window, failureRate }',
      value,
    );
  }
  const settings = { ...DEFAULT_BACKOFF, ...value };
  if (!isMs(1)(settings.multiplier)) {
    throw invalidOption(owner, `${name}.multiplier`, msExpected(1), settings.multiplier);
  }
  if (!isMs(settings.multiplier)(settings.maxDelay)) {
    throw invalidOption(
      owner,
      `${name}.maxDelay`,
      'an integer >= multiplier (ms)',
      settings.maxDelay,
    );
  }
}

const addresses = (kind: 'nsqd' | 'lookupd') => (owner: string, _name: string, value: unknown) =>
  void checkAddressList(owner, kind, value);

/** The options of one topic/channel's intake: shared by Consumer and ServerNsq. */
export const intakeSchema = {
  nsqd: spec<string[]>(
    undefined,
    () => true,
    '',
    "nsqd TCP addresses ('host:port') to consume from",
    {
      defaultText: '',
      assert: addresses('nsqd'),
    },
  ),
  lookupd: spec<string[]>(
    undefined,
    () => true,
    '',
    "nsqlookupd HTTP addresses ('host:port' or 'http(s)://host:port'); give nsqd, lookupd or both",
    { defaultText: '', assert: addresses('lookupd') },
  ),
  maxInFlight: spec(
    100,
    isInt(1),
    'an integer >= 1',
    'messages in flight over all connections of one pattern',
  ),
  adaptiveRdy: spec(
    true,
    isBoolean,
    'true or false',
    'RDY follows the messages in flight, so nsqd writes each at once at low rates instead of holding it up to outputBufferTimeout; false keeps RDY at maxInFlight',
  ),
  maxAttempts: spec(
    5,
    isInt(0, 65535),
    'an integer 0..65535',
    'deliveries before a message is given up; 0: never',
  ),
  requeueDelay: spec<RequeueDelay>(
    defaultRequeueDelay,
    (v) => isFunction(v) || isInt(0, MAX_REQUEUE_DELAY)(v),
    `an integer 0..${MAX_REQUEUE_DELAY} (ms) or a function of attempts`,
    'ms, or `(attempts, error) => ms`',
    { defaultText: 'attempts x 90 s, max 15 min' },
  ),
  backoff: spec<false | Partial<BackoffSettings>>(
    {},
    () => true,
    'false or { multiplier, maxDelay, window, failureRate }',
    'pauses intake while at least `failureRate` of the last `window` results fail; `false` turns it off',
    {
      defaultText: '`{ multiplier: 1000, maxDelay: 120000, window: 20, failureRate: 0.5 }`',
      assert: assertBackoff,
    },
  ),
  drainTimeout: spec(
    30_000,
    isMs(0),
    msExpected(0),
    'ms `close()` waits for handlers before requeueing them',
  ),
  lookupdPollInterval: spec(
    60_000,
    isMs(10),
    msExpected(10),
    'ms between nsqlookupd polls (every second instead while no nsqd has the topic yet)',
  ),
  lookupdPollJitter: spec(
    0.3,
    (v) => typeof v === 'number' && v >= 0 && v <= 1,
    'a number 0..1',
    'fraction of the poll interval used as random jitter',
  ),
  maxNsqdConnections: spec(
    100,
    isInt(1, 10_000),
    'an integer 1..10000',
    'most nsqd connections at once; nsqd beyond it that lookupd lists are left out',
  ),
  maxReconnectDelay: spec(
    30_000,
    isMs(1),
    msExpected(1),
    'ms at most between reconnects to one nsqd; they start at 250 ms and double',
  ),
};

export const consumerSchema: OptionsSchema<ConsumerOptions> = {
  ...intakeSchema,
  ...connectionSchema,
  onGiveUp: spec<(message: NsqMessage, reason: unknown) => unknown>(
    undefined,
    isFunction,
    'a function',
    'called with a message that will not be tried again, before its FIN',
  ),
};
