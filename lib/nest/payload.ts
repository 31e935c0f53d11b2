// How data becomes an NSQ message body and back: events carry the serialized data alone, so
// producers and consumers in other languages interoperate; requests, replies and dead letters
// use the small envelopes defined here.
import { NsqError } from '../errors.js';

/** Buffer and string pass through untouched; anything else is JSON. */
export function encodeBody(data: unknown): Buffer | string {
  if (Buffer.isBuffer(data) || typeof data === 'string') return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const json = JSON.stringify(data);
  if (json === undefined) throw new NsqError(`Cannot serialize ${typeof data} as a message body`);
  return json;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Thrown when a body cannot be decoded: the message is dead-lettered at once, never retried. */
export class NsqDecodeError extends NsqError {
  override readonly code = 'ERR_NSQ_DECODE';
  readonly nsqGiveUp = true;
}

/**
 * JSON when the body is JSON, else the text when it is valid UTF-8; anything else cannot be
 * decoded (consume it with `raw: true` to get the Buffer).
 */
export function decodeBody(body: Buffer): unknown {
  const first = body[0];
  // Only try JSON where it can start, so plain text costs no exception.
  if (
    first === 0x7b ||
    first === 0x5b ||
    first === 0x22 ||
    first === 0x74 ||
    first === 0x66 ||
    first === 0x6e ||
    first === 0x2d ||
    (first >= 0x30 && first <= 0x39)
  ) {
    try {
      return JSON.parse(body.toString());
    } catch {
      // not JSON: fall through to text
    }
  }
  try {
    return utf8.decode(body);
  } catch {
    throw new NsqDecodeError(
      `body of ${body.length} bytes is neither JSON nor UTF-8 text; consume it with raw: true or a custom deserializer`,
    );
  }
}

/** A request sent by ClientNsq.send(): the server answers on `replyTo`. */
export interface RequestEnvelope {
  id: string;
  replyTo: string;
  data: unknown;
}

export function encodeRequest(id: string, replyTo: string, data: unknown): string {
  return JSON.stringify({ id, replyTo, data });
}

export function decodeRequest(body: Buffer): RequestEnvelope {
  let parsed: Partial<RequestEnvelope> | undefined;
  try {
    parsed = JSON.parse(body.toString());
  } catch {
    parsed = undefined;
  }
  if (!parsed || typeof parsed.id !== 'string' || typeof parsed.replyTo !== 'string') {
    throw new NsqDecodeError(
      'not a request envelope {"id","replyTo","data"}: @MessagePattern handlers answer ClientNsq.send(); use @EventPattern for plain messages',
    );
  }
  return parsed as RequestEnvelope;
}

/** A reply to a request, as Nest's WritePacket. */
export interface ReplyEnvelope {
  id: string;
  response?: unknown;
  err?: unknown;
  isDisposed?: boolean;
}

/** A message given up after maxAttempts, or one that could not be decoded. */
export interface NsqDeadLetter {
  topic: string;
  channel: string;
  /** The message id at the source nsqd. */
  id: string;
  attempts: number;
  /** Why it was given up: the last handler error, or the decode error. */
  error: string;
  reason: 'maxAttempts' | 'undecodable' | 'gaveUp';
  /** ISO time it was given up. */
  failedAt: string;
  /** The original message body, byte for byte. */
  body: Buffer;
}

const DEAD_LETTER_MARK = '{"nsqDeadLetter":1,';

/**
 * Dead-letter message format: one line of JSON with where and why, a newline, then the
 * original body byte for byte. `parseDeadLetter` reads it back.
 */
export function encodeDeadLetter(letter: NsqDeadLetter): Buffer {
  const { body, ...meta } = letter;
  const head = DEAD_LETTER_MARK + JSON.stringify(meta).slice(1) + '\n';
  return Buffer.concat([Buffer.from(head), body]);
}

/** Reads a message published to a dead-letter topic; undefined if it is not one. */
export function parseDeadLetter(message: Buffer): NsqDeadLetter | undefined {
  if (!message.subarray(0, DEAD_LETTER_MARK.length).equals(Buffer.from(DEAD_LETTER_MARK)))
    return undefined;
  const newline = message.indexOf(0x0a);
  if (newline < 0) return undefined;
  const meta = JSON.parse(message.toString('utf8', 0, newline));
  delete meta.nsqDeadLetter;
  return { ...meta, body: message.subarray(newline + 1) };
}
