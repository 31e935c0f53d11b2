import type { NsqMessage } from '../consumer/nsq-message.js';
import type { BackoffChange } from '../consumer/rdy-controller.js';
import type { ConsumerMetrics } from '../metrics.js';
import type { ConsumerDeserializer, ConsumerSerializer } from '@nestjs/microservices';
import type { BackoffSettings } from '../consumer/backoff.js';
import type { ConsumerOptions } from '../consumer/options.js';
import { intakeSchema } from '../consumer/options.js';
import { connectionSchema } from '../connection/settings.js';
import { hasMethod, isBoolean, isFunction, spec, type OptionsSchema } from '../options.js';
import { assertChannelName, assertTopicName } from '../protocol/names.js';
import type { NsqDeadLetter } from './payload.js';

/** Per-handler options, given as `@EventPattern` / `@MessagePattern` extras. */
export interface NsqHandlerOptions {
  maxInFlight?: number;
  maxAttempts?: number;
  /** ms, or a function of the attempt number. */
  requeueDelay?: ConsumerOptions['requeueDelay'];
  backoff?: false | Partial<BackoffSettings>;
  /** Topic that receives messages given up (see NsqDeadLetter for the format). */
  deadLetterTopic?: string;
  /** The handler answers with ctx.finish() / ctx.requeue(); nothing is FINished for it. */
  manualAck?: boolean;
  /** The handler gets the body as a Buffer, untouched. */
  raw?: boolean;
}

/** The handler extras that override the server's options for one pattern. */
export const HANDLER_OVERRIDES = [
  'maxInFlight',
  'maxAttempts',
  'requeueDelay',
  'backoff',
  'deadLetterTopic',
] as const;

/** Every handler extra ServerNsq reads, for the unknown-key check. */
export const HANDLER_EXTRAS = Object.fromEntries(
  [...HANDLER_OVERRIDES, 'manualAck', 'raw'].map((key) => [key, true]),
);

export interface NsqServerOptions
  extends
    Omit<ConsumerOptions, 'onGiveUp' | 'maxInFlight' | 'maxAttempts' | 'requeueDelay' | 'backoff'>,
    Omit<NsqHandlerOptions, 'manualAck' | 'raw'> {
  /** The channel of a handler whose pattern names only a topic (`'orders'`, `{ cmd: 'sum' }`). */
  channel?: string;
  /** Called with every message given up, after it went to the dead-letter topic (if any). */
  onDiscard?: (letter: NsqDeadLetter) => unknown;
  /** Turns a raw body into `{ pattern, data }`; default: JSON, else UTF-8 text. */
  deserializer?: ConsumerDeserializer;
  /** Turns a reply packet into a body; default: JSON. */
  serializer?: ConsumerSerializer;
  /** A CONSUMER span per handler run (OpenTelemetry; needs @opentelemetry/api). Default false. */
  tracing?: boolean;
}

export const serverSchema: OptionsSchema<NsqServerOptions> = {
  ...intakeSchema,
  channel: spec<string>(
    undefined,
    () => true,
    'a valid NSQ channel name',
    "channel of handlers whose pattern names only a topic (`'orders'`, `{ cmd: 'sum' }`)",
    { assert: (_owner, _name, value) => assertChannelName(value) },
  ),
  deadLetterTopic: spec<string>(
    undefined,
    () => true,
    'a valid NSQ topic name',
    'where given-up messages go (see `NsqDeadLetter`)',
    { assert: (_owner, _name, value) => assertTopicName(value) },
  ),
  onDiscard: spec<(letter: NsqDeadLetter) => unknown>(
    undefined,
    isFunction,
    'a function',
    '`(letter: NsqDeadLetter) => unknown`, called for every message given up',
  ),
  serializer: spec<ConsumerSerializer>(
    undefined,
    hasMethod('serialize'),
    'an object with serialize()',
    'turns a reply into a body; as in Nest',
    { defaultText: 'JSON' },
  ),
  deserializer: spec<ConsumerDeserializer>(
    undefined,
    hasMethod('deserialize'),
    'an object with deserialize()',
    'turns a body into `{ pattern, data }`; as in Nest',
    { defaultText: 'JSON, else text' },
  ),
  tracing: spec(
    false,
    isBoolean,
    'a boolean',
    "a CONSUMER span per handler run, continuing the sender's trace (needs `@opentelemetry/api`)",
  ),
  ...connectionSchema,
};

export type NsqServerEvents = {
  connected: (address: string, pattern: string) => void;
  disconnected: (address: string, pattern: string, error: Error | undefined) => void;
  reconnecting: (address: string, pattern: string, delayMs: number) => void;
  error: (error: Error) => void;
  /** A handler failed on a message; it is requeued, or given up after maxAttempts. */
  failed: (message: NsqMessage, pattern: string, error: unknown) => void;
  /** A message was given up (dead-lettered, handed to onDiscard, or dropped). */
  gaveUp: (message: NsqMessage, pattern: string, reason: unknown) => void;
  /** The pattern's consumer changed its backoff (see the consumer's 'backoff' event). */
  backoff: (change: BackoffChange, pattern: string) => void;
  /** nsqlookupd lists a new nsqd for the pattern's topic. */
  discovered: (address: string, pattern: string) => void;
};

/** What each pattern's consumer has done, plus the dead letters it published. */
export interface NsqServerMetrics {
  patterns: (ConsumerMetrics & { pattern: string; deadLettered: number })[];
}
