import type { SnappyBlockCodec } from '../protocol/snappy-framing.js';
import { NsqError } from '../protocol/errors.js';

let loaded: Promise<SnappyBlockCodec> | undefined;

/** Loads the optional `snappy` package the first time a connection negotiates snappy. */
export function loadSnappy(): Promise<SnappyBlockCodec> {
  loaded ??= import('snappy').then(
    (m) => (m.default ?? m) as SnappyBlockCodec,
    (err: unknown) => {
      loaded = undefined;
      throw new NsqError(
        'snappy: true needs the optional package "snappy" (npm install snappy): ' + String(err),
      );
    },
  );
  return loaded;
}
