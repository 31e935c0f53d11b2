// How data becomes an NSQ message body and back. A plain event is its data alone (a Buffer as
// is, a string as is unless it would read back as JSON, anything else JSON), so producers and
// consumers in other languages interoperate. What needs more (a request, metadata, headers) is
// framed: the line `#nsq/1 <JSON header>\n`, then the payload bytes.
import { isUtf8 } from 'node:buffer';
import { NsqError } from '../errors.js';

/** Thrown when a body cannot be decoded: the message is dead-lettered at once, never retried. */
export class NsqDecodeError extends NsqError {
  override readonly code = 'ERR_NSQ_DECODE';
  readonly nsqGiveUp = true;
}

/** Where JSON can start (after whitespace): { [ " t f n - 0-9. */
const JSON_START = new Uint8Array(256);
for (const c of '{["tfn-0123456789') JSON_START[c.charCodeAt(0)] = 1;

/** The first character that is not JSON whitespace or a BOM, as a code; -1 if none. */
function firstSignificant(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09 && c !== 0xfeff) return c;
  }
  return -1;
}

/** True when decodeBody would read this text back as something other than itself. */
function readsAsJson(text: string): boolean {
  if (text.length === 0) return true; // nsqd refuses empty bodies: sent as ""
  if (text.startsWith(FRAME_MARK)) return true;
  const c = firstSignificant(text);
  if (c < 0) return true; // whitespace only
  return c <= 255 && JSON_START[c] === 1 && parseJson(text) !== NOT_JSON;
}

const NOT_JSON = Symbol('not JSON');

/** JSON.parse, with a leading BOM skipped (JSON.parse rejects it); NOT_JSON if it is not. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return NOT_JSON;
  }
}

/**
 * The body for `data`: Buffer and Uint8Array as raw bytes; a string as its text, or as a JSON
 * string when the text would otherwise read back as JSON ('42', 'true', '{"a":1}', '');
 * anything else JSON.
 */
export function encodeBody(data: unknown): Buffer | string {
  if (Buffer.isBuffer(data)) return data;
  if (typeof data === 'string') return readsAsJson(data) ? JSON.stringify(data) : data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const json = JSON.stringify(data);
  if (json === undefined) throw new NsqError(`Cannot serialize ${typeof data} as a message body`);
  return json;
}

/**
 * JSON when the body is JSON (leading whitespace and a BOM allowed), else the text when it is
 * valid UTF-8; anything else cannot be decoded (consume it with `raw: true` to get the Buffer).
 */
export function decodeBody(body: Buffer): unknown {
  const text = body.toString();
  // Bad UTF-8 decodes to U+FFFD: only a text with one needs the (costlier) check.
  if (text.includes('\ufffd') && !isUtf8(body)) {
    throw new NsqDecodeError(
      `body of ${body.length} bytes is not valid UTF-8 (so neither JSON nor text); consume it with raw: true or a custom deserializer`,
    );
  }
  const c = firstSignificant(text);
  // Only try JSON where it can start, so plain text costs no exception.
  if (c >= 0 && c <= 255 && JSON_START[c]) {
    const value = parseJson(text);
    if (value !== NOT_JSON) return value;
  }
  return text;
}

/** The header of a framed body. `id` makes it a request from ClientNsq.send(). */
export interface FrameHeader {
  /** Request id; replies carry it back. */
  id?: string;
  /** The caller's reply topic. */
  replyTo?: string;
  /** ms since the epoch after which the caller no longer waits. */
  deadline?: number;
  /** What the client's dispatch hook attached (Nest packet metadata). */
  metadata?: Record<string, string>;
  /** What NsqRecordBuilder.setHeaders() attached. */
  headers?: Record<string, string>;
  /** The sender's trace context (W3C traceparent, tracestate), with tracing on. */
  trace?: Record<string, string>;
}

const FRAME_MARK = '#nsq/1 ';
const FRAME_MARK_BYTES = Buffer.from(FRAME_MARK);
const REPLY_TOPIC = /^reply\.[0-9a-f]{16}#ephemeral$/;

/** Frames a payload with a header: `#nsq/1 {header}\n` + payload. */
export function encodeFrame(header: FrameHeader, payload: Buffer | string): Buffer {
  return Buffer.concat([
    Buffer.from(`${FRAME_MARK}${JSON.stringify(header)}\n`),
    typeof payload === 'string' ? Buffer.from(payload) : payload,
  ]);
}

/** The header and payload of a framed body; a plain body has no header. */
export function decodeFrame(body: Buffer): { header?: FrameHeader; payload: Buffer } {
  // The first byte rules out nearly every plain body without a call into C++.
  if (
    body.length < FRAME_MARK.length ||
    body[0] !== FRAME_MARK_BYTES[0] ||
    body.compare(FRAME_MARK_BYTES, 0, FRAME_MARK.length, 0, FRAME_MARK.length) !== 0
  ) {
    return { payload: body };
  }
  const newline = body.indexOf(0x0a);
  let header: unknown;
  try {
    header =
      newline < 0 ? undefined : JSON.parse(body.toString('utf8', FRAME_MARK.length, newline));
  } catch {
    header = undefined;
  }
  if (!isHeader(header)) {
    throw new NsqDecodeError(`a framed body (${FRAME_MARK.trim()}) with a malformed header line`);
  }
  if (header.trace !== undefined) header.trace = traceCarrier(header.trace);
  return { header, payload: body.subarray(newline + 1) };
}

const isStringMap = (v: unknown) =>
  v === undefined ||
  (typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((s) => typeof s === 'string'));

function isHeader(h: unknown): h is FrameHeader {
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return false;
  const { id, replyTo, deadline, metadata, headers } = h as FrameHeader;
  if (id !== undefined) {
    // A request: replies may only go to a reply topic of the form ClientNsq creates.
    if (typeof id !== 'string' || typeof replyTo !== 'string' || !REPLY_TOPIC.test(replyTo))
      return false;
    if (deadline !== undefined && !Number.isFinite(deadline)) return false;
  }
  return isStringMap(metadata) && isStringMap(headers);
}

/** Propagated fields a frame header may carry, as the propagator wrote them. */
const MAX_TRACE_FIELDS = 8;
const MAX_TRACE_FIELD = 64;
const MAX_TRACE_VALUE = 1024;

/**
 * The frame header's `trace` if it is a small map of strings (untrusted input: anything else is
 * dropped, never fatal to the message); copied into an object with no prototype.
 */
export function traceCarrier(value: unknown): Record<string, string> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entries = Object.entries(value);
  if (entries.length > MAX_TRACE_FIELDS) return undefined;
  const carrier: Record<string, string> = Object.create(null);
  for (const [key, v] of entries) {
    if (key.length > MAX_TRACE_FIELD || typeof v !== 'string' || v.length > MAX_TRACE_VALUE)
      return undefined;
    carrier[key] = v;
  }
  return carrier;
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
  /** The original message body, byte for byte (its first bytes when `truncated`). */
  body: Buffer;
  /**
   * The data in the body: the body itself, or, for a body the transport framed (metadata,
   * headers, trace context), the part after the frame's header line. Not part of the encoding:
   * parseDeadLetter and onDiscard derive it from `body`.
   */
  payload: Buffer;
  /** The body was cut to fit nsqd's message size; `bodyBytes` is its whole length. */
  truncated?: true;
  bodyBytes?: number;
}

const DEAD_LETTER_MARK = '{"nsqDeadLetter":1,';

/**
 * Dead-letter message format: one line of JSON with where and why, a newline, then the
 * original body byte for byte. `parseDeadLetter` reads it back.
 */
export function encodeDeadLetter(
  letter: Omit<NsqDeadLetter, 'payload'> & { payload?: Buffer },
): Buffer {
  const { body, payload: _payload, ...meta } = letter;
  const head = DEAD_LETTER_MARK + JSON.stringify(meta).slice(1) + '\n';
  return Buffer.concat([Buffer.from(head), body]);
}

/**
 * The dead letter encoded, then in smaller forms for when it is over `maxSize`: the body cut to
 * fit, then no body at all. A letter near nsqd's limit is never refused for its header.
 */
export function* deadLetterForms(
  letter: Omit<NsqDeadLetter, 'payload'>,
  maxSize: number,
): Generator<Buffer> {
  const whole = encodeDeadLetter(letter);
  if (whole.length <= maxSize) yield whole;
  const cut = { ...letter, truncated: true as const, bodyBytes: letter.body.length };
  const head = encodeDeadLetter({ ...cut, body: Buffer.alloc(0) }).length;
  if (head < maxSize)
    yield encodeDeadLetter({ ...cut, body: letter.body.subarray(0, maxSize - head) });
  yield encodeDeadLetter({ ...cut, body: Buffer.alloc(0) });
}

/** Reads a message published to a dead-letter topic; undefined if it is not one. */
export function parseDeadLetter(message: Buffer): NsqDeadLetter | undefined {
  if (!message.subarray(0, DEAD_LETTER_MARK.length).equals(Buffer.from(DEAD_LETTER_MARK)))
    return undefined;
  const newline = message.indexOf(0x0a);
  if (newline < 0) return undefined;
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(message.toString('utf8', 0, newline));
  } catch {
    return undefined;
  }
  delete meta.nsqDeadLetter;
  const body = message.subarray(newline + 1);
  return { ...(meta as Omit<NsqDeadLetter, 'body' | 'payload'>), body, payload: payloadOf(body) };
}

/** The data of a body: after the frame's header line if the transport framed it. */
export function payloadOf(body: Buffer): Buffer {
  try {
    return decodeFrame(body).payload;
  } catch {
    return body; // a frame cut short (a truncated letter): the bytes as they are
  }
}
