// Stream compression negotiated in IDENTIFY: deflate (zlib, raw) or snappy (framing format).
import { constants as zlibConstants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import { NsqError } from '../errors.js';
import {
  SnappyFrameDecoder,
  SnappyFrameEncoder,
  type SnappyBlockCodec,
} from '../protocol/snappy-framing.js';

/**
 * A stream codec: decode() feeds the connection's frame decoder through `onDecoded`, encode()
 * writes the socket; written() resolves once everything encoded so far reached the socket.
 */
export interface StreamCodec {
  decode(chunk: Buffer): void;
  encode(data: Buffer): void;
  written(): Promise<void>;
  /** Stops decoding at once: the connection is gone. */
  destroy(): void;
}

export interface CodecIo {
  onDecoded(data: Buffer): void;
  writeSocket(data: Buffer): void;
  /** The compressed stream is corrupt: the connection must end. */
  onError(error: Error): void;
}

export function deflateCodec(level: number, io: CodecIo): StreamCodec {
  const inflate = createInflateRaw();
  const deflate = createDeflateRaw({ level });
  inflate.on('data', (b: Buffer) => io.onDecoded(b));
  inflate.on('error', (err) => io.onError(err));
  deflate.on('data', (b: Buffer) => io.writeSocket(b));
  deflate.on('error', (err) => io.onError(err));
  let written = Promise.resolve();
  return {
    decode: (chunk) => inflate.write(chunk),
    encode: (b) => {
      deflate.write(b);
      // zlib emits its output (and so writes the socket) before it calls this back.
      written = new Promise((resolve) => deflate.flush(zlibConstants.Z_SYNC_FLUSH, resolve));
    },
    written: () => written,
    destroy: () => {
      inflate.destroy();
      deflate.destroy();
    },
  };
}

export async function snappyCodec(io: CodecIo): Promise<StreamCodec> {
  const snappy = await loadSnappy();
  const decoder = new SnappyFrameDecoder(snappy);
  const encoder = new SnappyFrameEncoder(snappy);
  return {
    decode: (chunk) => {
      for (const b of decoder.decode(chunk)) io.onDecoded(b);
    },
    encode: (b) => io.writeSocket(encoder.encode(b)),
    written: () => Promise.resolve(),
    destroy: () => undefined,
  };
}

let loaded: Promise<SnappyBlockCodec> | undefined;

/** Loads the optional `snappy` package the first time a connection negotiates snappy. */
function loadSnappy(): Promise<SnappyBlockCodec> {
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
