import type { ProducerDeserializer, ProducerSerializer } from '@nestjs/microservices';
import { checkAddressList } from '../connection/address.js';
import { hasMethod, isBoolean, isInt, MAX_TIMER_MS, spec, type OptionsSchema } from '../options.js';
import { producerSchema, type ProducerOptions } from '../producer/options.js';

export interface NsqClientOptions extends ProducerOptions {
  /**
   * nsqlookupd HTTP addresses: with them, a request to a topic nothing consumes fails within
   * about a second (without them, nsqd's HTTP API is asked at its TCP port + 1).
   */
  lookupd?: string[];
  /** ms a send() waits for its reply before it fails. Default 30 000. */
  requestTimeout?: number;
  /** Turns `{ pattern, data }` into a message body; default: Buffer/string as is, else JSON. */
  serializer?: ProducerSerializer;
  /** Turns a reply into `{ id, response, err, isDisposed }`; default: Nest's. */
  deserializer?: ProducerDeserializer;
  /** A PRODUCER span per emit()/send() (OpenTelemetry; needs @opentelemetry/api). Default false. */
  tracing?: boolean;
}

export const clientSchema: OptionsSchema<NsqClientOptions> = {
  ...producerSchema,
  lookupd: spec<string[]>(
    undefined,
    () => true,
    '',
    'nsqlookupd HTTP addresses; lets `send()` fail fast when nothing consumes its topic',
    { assert: (owner, _name, value) => void checkAddressList(owner, 'lookupd', value) },
  ),
  requestTimeout: spec(
    30_000,
    isInt(1, MAX_TIMER_MS),
    `an integer 1..${MAX_TIMER_MS} (ms)`,
    'ms `send()` waits for a reply; the request carries it as its deadline',
  ),
  serializer: spec<ProducerSerializer>(
    undefined,
    hasMethod('serialize'),
    'an object with serialize()',
    'turns `{ pattern, data }` into a body (events and requests); as in Nest',
    { defaultText: 'Buffer/string as is, else JSON' },
  ),
  deserializer: spec<ProducerDeserializer>(
    undefined,
    hasMethod('deserialize'),
    'an object with deserialize()',
    'turns a reply body (a Buffer) into `{ id, response, err, isDisposed }`',
    { defaultText: "Nest's" },
  ),
  tracing: spec(
    false,
    isBoolean,
    'a boolean',
    'a PRODUCER span per `emit()`/`send()`, its context sent with the message (needs `@opentelemetry/api`)',
  ),
};
