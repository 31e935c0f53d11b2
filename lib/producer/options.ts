import { checkAddressList } from '../connection/address.js';
import { connectionSchema, type NsqConnectionSettings } from '../connection/settings.js';
import { NsqValidationError } from '../errors.js';
import {
  invalidOption,
  isBoolean,
  isInt,
  isMs,
  msExpected,
  spec,
  type OptionsSchema,
} from '../options.js';

export interface ProducerOptions extends NsqConnectionSettings {
  /** nsqd TCP addresses ('host:port'); the first reachable one is used, the others on failure. */
  nsqd: string[];
  /** Coalesce publishes to one topic made in the same tick into MPUB. Default true. */
  batching?: boolean;
  /**
   * Most messages in one automatic MPUB. Default 200: a burst of emits goes out as several MPUBs
   * whose acknowledgements come back in turn, so callers refill the pipeline while nsqd works.
   */
  maxBatchCount?: number;
  /** Most bytes in one automatic MPUB. Default 512 KiB. */
  maxBatchBytes?: number;
  /** Largest MPUB body nsqd accepts (its --max-body-size). Default 5 MiB. */
  maxBodySize?: number;
  /** Longest DPUB delay nsqd accepts (its --max-req-timeout), ms. Default 3 600 000. */
  maxDeferDelay?: number;
  /** Most publishes not yet acknowledged by nsqd; more are refused at once. Default 50 000. */
  maxPendingMessages?: number;
  /** Most bytes of publishes not yet acknowledged by nsqd; more are refused at once. Default 64 MiB. */
  maxPendingBytes?: number;
  /**
   * ms nsqd has to acknowledge a publish; past it the connection counts as hung: its publishes
   * fail ("may or may not have been published") and the next nsqd is used. Default 10 000.
   */
  publishTimeout?: number;
  /**
   * Longest time a failed nsqd is skipped before it is tried again, ms; while every nsqd is
   * skipped, publishes fail at once instead of waiting on a connect. Default 1 000.
   */
  maxRetryDelay?: number;
}

const MiB = 1024 * 1024;

export const producerSchema: OptionsSchema<ProducerOptions> = {
  nsqd: spec<string[]>(
    undefined,
    () => true,
    '',
    'required; the first reachable one is used, the next on failure',
    {
      defaultText: '',
      assert: (owner, _name, value) => void checkAddressList(owner, 'nsqd', value),
    },
  ),
  batching: spec(true, isBoolean, 'a boolean', 'coalesce same-tick publishes to a topic into MPUB'),
  maxBatchCount: spec(
    200,
    isInt(1),
    'an integer >= 1',
    'messages per automatic MPUB (a larger burst goes out as several pipelined MPUBs)',
  ),
  maxBatchBytes: spec(
    512 * 1024,
    isInt(1),
    'an integer 1..maxBodySize',
    'bytes per automatic MPUB, at most `maxBodySize`',
    { defaultText: '512 KiB' },
  ),
  maxBodySize: spec(
    5 * MiB,
    isInt(1),
    'a positive integer (bytes)',
    'nsqd `--max-body-size`, for MPUB',
    {
      defaultText: '5 MiB',
    },
  ),
  maxDeferDelay: spec(3_600_000, isMs(0), msExpected(0), 'nsqd `--max-req-timeout`, for DPUB'),
  maxPendingMessages: spec(
    50_000,
    isInt(1),
    'an integer >= 1',
    'publishes not yet acknowledged that a producer holds; more are refused at once (`ERR_NSQ_BACKPRESSURE`)',
  ),
  maxPendingBytes: spec(
    64 * MiB,
    isInt(1),
    'an integer >= 1 (bytes)',
    'bytes of publishes not yet acknowledged that a producer holds; more are refused at once',
    { defaultText: '64 MiB' },
  ),
  publishTimeout: spec(
    10_000,
    isMs(1),
    msExpected(1),
    'ms nsqd has to acknowledge a publish; past it the connection counts as hung and the next nsqd is used',
  ),
  maxRetryDelay: spec(
    1000,
    isMs(1),
    msExpected(1),
    'ms at most a failed nsqd is skipped before it is tried again; publishes meanwhile fail at once',
  ),
  ...connectionSchema,
};

/** Options of 0.1.0 that have a new name: an error that names it, before the unknown-key check. */
export function rejectRenamedOptions(owner: string, given: object): void {
  if ('maxReconnectDelay' in given) {
    throw invalidOption(
      owner,
      'maxReconnectDelay',
      'renamed: use maxRetryDelay (how long a failed nsqd is skipped)',
      (given as { maxReconnectDelay: unknown }).maxReconnectDelay,
    );
  }
}

/** Checks that depend on more than one option. */
export function checkProducerOptions(
  owner: string,
  given: object,
  o: { maxBatchBytes?: number; maxBodySize?: number },
): void {
  if (!(given as ProducerOptions).nsqd?.length) {
    throw new NsqValidationError(
      `${owner}: option nsqd must list at least one nsqd TCP address ('host:port')`,
    );
  }
  if ((given as ProducerOptions).maxBatchBytes === undefined) {
    o.maxBatchBytes = Math.min(o.maxBatchBytes!, o.maxBodySize!);
  } else if (o.maxBatchBytes! > o.maxBodySize!) {
    throw invalidOption(
      owner,
      'maxBatchBytes',
      `an integer 1..maxBodySize (${o.maxBodySize})`,
      o.maxBatchBytes,
    );
  }
}
