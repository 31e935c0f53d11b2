import fc from 'fast-check';
import { DecodedMessage, MESSAGE_ID_LENGTH } from '../../lib/protocol/message-frame.js';

const decodeMessage = (data: Buffer) => new DecodedMessage(data);

/** Message frame data by hand: int64 timestamp, uint16 attempts, 16-byte id, body. */
function encodeMessage(timestamp: bigint, attempts: number, id: string, body: Buffer): Buffer {
  const head = Buffer.alloc(26);
  head.writeBigInt64BE(timestamp, 0);
  head.writeUInt16BE(attempts, 8);
  head.write(id, 10, 'latin1');
  return Buffer.concat([head, body]);
}

describe('DecodedMessage', () => {
  it('reads a known byte layout', () => {
    const data = Buffer.from(
      '0102030405060708' + // timestamp
        '0203' + // attempts
        Buffer.from('0a1b2c3d4e5f6789').toString('hex') + // id
        Buffer.from('hello').toString('hex'),
      'hex',
    );
    const msg = decodeMessage(data);
    expect(msg.timestamp).toBe(0x0102030405060708n);
    expect(typeof msg.timestamp).toBe('bigint');
    expect(msg.attempts).toBe(0x0203);
    expect(msg.id).toBe('0a1b2c3d4e5f6789');
    expect(msg.body.toString()).toBe('hello');
  });

  it('reads a real nanosecond timestamp beyond 2^53 exactly', () => {
    const ts = 1_700_000_000_123_456_789n;
    const msg = decodeMessage(encodeMessage(ts, 1, 'abcdefabcdef0001', Buffer.from('x')));
    expect(msg.timestamp).toBe(ts);
  });

  it('reads attempts as unsigned 16-bit', () => {
    const msg = decodeMessage(encodeMessage(0n, 0xffff, '0000000000000000', Buffer.alloc(0)));
    expect(msg.attempts).toBe(65535);
  });

  it('decodes an empty body', () => {
    const msg = decodeMessage(encodeMessage(5n, 1, 'ffffffffffffffff', Buffer.alloc(0)));
    expect(msg.body).toHaveLength(0);
    expect(msg.id).toBe('ffffffffffffffff');
  });

  it('returns the body as a view of the frame data', () => {
    const data = encodeMessage(1n, 1, '0123456789abcdef', Buffer.from('body'));
    const msg = decodeMessage(data);
    expect(msg.body.buffer).toBe(data.buffer);
    expect(msg.body.byteOffset).toBe(data.byteOffset + 26);
  });

  it('round-trips any timestamp, attempts, id and body', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.string({
          unit: fc.constantFrom(...'0123456789abcdefghijklmnopqrstuvwxyz'),
          minLength: MESSAGE_ID_LENGTH,
          maxLength: MESSAGE_ID_LENGTH,
        }),
        fc.uint8Array({ maxLength: 200 }),
        (timestamp, attempts, id, body) => {
          const msg = decodeMessage(encodeMessage(timestamp, attempts, id, Buffer.from(body)));
          const { timestamp: ts, attempts: at, id: i, body: b } = msg;
          expect({ timestamp: ts, attempts: at, id: i, body: b }).toEqual({
            timestamp,
            attempts,
            id,
            body: Buffer.from(body),
          });
        },
      ),
    );
  });

  it('has a 16-character id', () => {
    expect(MESSAGE_ID_LENGTH).toBe(16);
    const msg = decodeMessage(Buffer.alloc(26 + 3, 0x41));
    expect(msg.id).toHaveLength(16);
    expect(msg.body).toHaveLength(3);
  });

  it('throws a RangeError on data shorter than the 26-byte header', () => {
    for (let length = 0; length < 26; length++) {
      expect(() => decodeMessage(Buffer.alloc(length))).toThrow(RangeError);
      expect(() => decodeMessage(Buffer.alloc(length))).toThrow(`${length} bytes`);
    }
    expect(() => decodeMessage(Buffer.alloc(26))).not.toThrow();
  });
});
