import fc from 'fast-check';
import { NsqError } from '../../lib/errors.js';
import {
  NsqDecodeError,
  decodeBody,
  encodeBody,
  encodeDeadLetter,
  encodeFrame,
  parseDeadLetter,
  type NsqDeadLetter,
} from '../../lib/nest/payload.js';
import { thrownBy } from '../harness/thrown.js';

/** What encodeBody produced, as the bytes that would be published. */
const toBytes = (body: Buffer | string): Buffer =>
  typeof body === 'string' ? Buffer.from(body) : body;

function letter(
  overrides: Partial<NsqDeadLetter> = {},
): Omit<NsqDeadLetter, 'payload'> & { payload?: Buffer } {
  return {
    topic: 'orders',
    channel: 'billing',
    id: '0a1b2c3d4e5f6789',
    attempts: 5,
    error: 'Error: payment service down',
    reason: 'maxAttempts',
    failedAt: '2024-01-02T03:04:05.678Z',
    body: Buffer.from('{"order":42}'),
    ...overrides,
  };
}

describe('encodeBody', () => {
  it('passes a Buffer through as the same object', () => {
    const buf = Buffer.from([0, 1, 0xff, 0x0a]);
    expect(encodeBody(buf)).toBe(buf);
  });

  it('passes a string of plain text through untouched', () => {
    expect(encodeBody('plain text')).toBe('plain text');
    expect(encodeBody('héllo ✓\nsecond line')).toBe('héllo ✓\nsecond line');
  });

  it('turns a Uint8Array into a Buffer view of the same memory, respecting its offset', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const view = backing.subarray(2, 5);
    const body = encodeBody(view);
    expect(Buffer.isBuffer(body)).toBe(true);
    const buf = body as Buffer;
    expect([...buf]).toEqual([1, 2, 3]);
    expect(buf.buffer).toBe(backing.buffer);
    expect(buf.byteOffset).toBe(2);
    backing[2] = 7;
    expect(buf[0]).toBe(7);
  });

  it('serializes objects, arrays, numbers, booleans and null as JSON', () => {
    expect(encodeBody({ a: 1, b: [true, null, 'x'] })).toBe('{"a":1,"b":[true,null,"x"]}');
    expect(encodeBody([1, 2])).toBe('[1,2]');
    expect(encodeBody(42)).toBe('42');
    expect(encodeBody(false)).toBe('false');
    expect(encodeBody(null)).toBe('null');
    expect(encodeBody({ toJSON: () => ({ via: 'toJSON' }) })).toBe('{"via":"toJSON"}');
    expect(encodeBody(new Date(0))).toBe('"1970-01-01T00:00:00.000Z"');
  });

  it.each([
    ['undefined', undefined],
    ['function', () => 1],
    ['symbol', Symbol('s')],
  ])('throws an NsqError for %s, which has no JSON form', (kind, value) => {
    const err = thrownBy(() => encodeBody(value));
    expect(err).toBeInstanceOf(NsqError);
    expect((err as NsqError).code).toBe('ERR_NSQ');
    expect((err as NsqError).message).toBe(`Cannot serialize ${kind} as a message body`);
  });

  it('round-trips any JSON value through decodeBody', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        // Strings pass through as text, so only non-strings are JSON on the wire.
        fc.pre(typeof value !== 'string');
        const decoded = decodeBody(toBytes(encodeBody(value)));
        expect(decoded).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });
});

describe('decodeBody', () => {
  it.each([
    ['{"a":1,"b":[2]}', { a: 1, b: [2] }],
    ['[1,"x",null]', [1, 'x', null]],
    ['"quoted"', 'quoted'],
    ['true', true],
    ['false', false],
    ['null', null],
    ['-1.5', -1.5],
    ['0', 0],
    ['123', 123],
  ])('parses the JSON body %s', (text, value) => {
    expect(decodeBody(Buffer.from(text))).toEqual(value);
  });

  it.each([
    'hello world',
    'not JSON {',
    '{broken',
    '[1,',
    'nothing', // starts like null
    'tr', // starts like true
    'fish', // starts like false
    '-dash',
    '12 monkeys',
    'héllo ✓ 日本',
    '',
  ])('returns the UTF-8 text %j when it is not JSON', (text) => {
    expect(decodeBody(Buffer.from(text))).toBe(text);
  });

  it.each([
    [[0xff]],
    [[0x68, 0x69, 0xc3]], // truncated 2-byte sequence
    [[0xc0, 0x80]], // overlong NUL
    [[0xed, 0xa0, 0x80]], // UTF-16 surrogate
    [[0x80, 0x7b]],
    [[0x7b, 0xff, 0x7d]], // starts like JSON, is neither
    [[0x31, 0xfe]], // starts like a number, is neither
  ])('throws NsqDecodeError for invalid UTF-8 %j', (bytes) => {
    const body = Buffer.from(bytes);
    const err = thrownBy(() => decodeBody(body));
    expect(err).toBeInstanceOf(NsqDecodeError);
    expect(err).toBeInstanceOf(NsqError);
    const e = err as NsqDecodeError;
    expect(e.code).toBe('ERR_NSQ_DECODE');
    expect(e.nsqGiveUp).toBe(true);
    expect(e.name).toBe('NsqDecodeError');
    expect(e.message).toContain(`body of ${body.length} bytes`);
    expect(e.message).toContain('UTF-8');
    expect(e.message).toContain('raw: true');
  });

  it('decodes a JSON body that is a view into a larger buffer', () => {
    const backing = Buffer.from('xx{"a":1}yy');
    expect(decodeBody(backing.subarray(2, 9))).toEqual({ a: 1 });
  });
});

describe('encodeDeadLetter / parseDeadLetter', () => {
  it('writes one line of JSON marked nsqDeadLetter, a newline, then the body', () => {
    const encoded = encodeDeadLetter(letter());
    const newline = encoded.indexOf(0x0a);
    expect(encoded.subarray(0, 19).toString()).toBe('{"nsqDeadLetter":1,');
    expect(JSON.parse(encoded.toString('utf8', 0, newline))).toEqual({
      nsqDeadLetter: 1,
      topic: 'orders',
      channel: 'billing',
      id: '0a1b2c3d4e5f6789',
      attempts: 5,
      error: 'Error: payment service down',
      reason: 'maxAttempts',
      failedAt: '2024-01-02T03:04:05.678Z',
    });
    expect(encoded.subarray(newline + 1).toString()).toBe('{"order":42}');
  });

  it('round-trips every field and the body byte for byte', () => {
    const original = letter({ reason: 'undecodable', attempts: 1 });
    // A plain body is its own payload.
    expect(parseDeadLetter(encodeDeadLetter(original))).toEqual({
      ...original,
      payload: original.body,
    });
  });

  it('gives the payload of a body the transport framed (metadata, headers, trace context)', () => {
    const body = encodeFrame({ headers: { tenant: 'a' } }, '{"order":42}');
    const parsed = parseDeadLetter(encodeDeadLetter(letter({ body })))!;
    expect(parsed.body.equals(body)).toBe(true); // byte for byte, frame included
    expect(parsed.payload.toString()).toBe('{"order":42}');
    // The payload is not encoded: a letter written again reads back the same.
    expect(encodeDeadLetter(parsed).equals(encodeDeadLetter(letter({ body })))).toBe(true);
  });

  it('keeps a binary body with newlines, NULs and invalid UTF-8 intact', () => {
    const body = Buffer.from([0x0a, 0x00, 0xff, 0x0a, 0x0d, 0x0a, 0xc3, 0x7b, 0x0a]);
    const parsed = parseDeadLetter(encodeDeadLetter(letter({ body })));
    expect(parsed).toBeDefined();
    expect(parsed!.body.equals(body)).toBe(true);
  });

  it('keeps an empty body', () => {
    const parsed = parseDeadLetter(encodeDeadLetter(letter({ body: Buffer.alloc(0) })));
    expect(parsed!.body).toHaveLength(0);
    expect(parsed!.topic).toBe('orders');
  });

  it('keeps an error text with newlines, quotes and non-ASCII on the one head line', () => {
    const error = 'Error: "boom"\n    at handler (x.ts:1:2)\r\n\u2028 ünïcode ✓';
    const encoded = encodeDeadLetter(letter({ error, body: Buffer.from('b\nody') }));
    const parsed = parseDeadLetter(encoded)!;
    expect(parsed.error).toBe(error);
    expect(parsed.body.toString()).toBe('b\nody');
  });

  it('round-trips random metadata and binary bodies', () => {
    fc.assert(
      fc.property(
        fc.record({
          topic: fc.string(),
          channel: fc.string(),
          id: fc.string(),
          attempts: fc.nat(),
          error: fc.string({ unit: 'grapheme' }),
          reason: fc.constantFrom(
            'maxAttempts' as const,
            'undecodable' as const,
            'gaveUp' as const,
          ),
          failedAt: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          body: fc.uint8Array({ maxLength: 100 }).map((u) => Buffer.from(u)),
        }),
        (original) => {
          const parsed = parseDeadLetter(encodeDeadLetter(original));
          expect(parsed).toBeDefined();
          const { body, payload: _payload, ...meta } = parsed!;
          const { body: originalBody, ...originalMeta } = original;
          expect(meta).toEqual(originalMeta);
          expect(body.equals(originalBody)).toBe(true);
        },
      ),
    );
  });

  it('does not leave the nsqDeadLetter mark in the parsed letter', () => {
    const parsed = parseDeadLetter(encodeDeadLetter(letter()))!;
    expect(Object.keys(parsed)).not.toContain('nsqDeadLetter');
  });

  it.each([
    ['an empty message', ''],
    ['plain text', 'hello\nworld'],
    ['ordinary JSON', '{"topic":"orders","body":"x"}\n'],
    ['JSON with the key but not first', '{"topic":"t","nsqDeadLetter":1}\nbody'],
    ['the mark with a different value', '{"nsqDeadLetter":2,"topic":"t"}\nbody'],
    ['the mark with spaces', '{ "nsqDeadLetter": 1, "topic":"t"}\nbody'],
    ['the mark cut short', '{"nsqDeadLetter":1'],
    ['the mark but no newline', '{"nsqDeadLetter":1,"topic":"t"}'],
  ])('returns undefined for %s', (_what, text) => {
    expect(parseDeadLetter(Buffer.from(text))).toBeUndefined();
  });

  it('returns undefined for a binary message', () => {
    expect(parseDeadLetter(Buffer.from([0xff, 0x00, 0x0a, 0x7b]))).toBeUndefined();
  });
});
