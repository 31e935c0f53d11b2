import fc from 'fast-check';
import { Compressor, Decompressor, compressSync, uncompressSync } from 'snappy';
import {
  SnappyFrameDecoder,
  SnappyFrameEncoder,
  crc32c,
  maskedCrc32c,
  type SnappyBlockCodec,
} from '../../lib/protocol/snappy-framing.js';

/** The real snappy block codec, as the connection loads it. */
const codec: SnappyBlockCodec = {
  compressSync: (data) => compressSync(data),
  uncompressSync: (data) => uncompressSync(data),
};

const STREAM_IDENTIFIER = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]);
const MAX_BLOCK = 65536;

interface Chunk {
  type: number;
  body: Buffer;
}

/** Splits a framed stream into its chunks by hand: [type][3-byte LE length][body]. */
function splitChunks(stream: Buffer): Chunk[] {
  const chunks: Chunk[] = [];
  let at = 0;
  while (at < stream.length) {
    const length = stream.readUIntLE(at + 1, 3);
    chunks.push({ type: stream[at], body: stream.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  expect(at).toBe(stream.length);
  return chunks;
}

/**
 * One chunk by hand. Data chunks (0x00, 0x01) get a CRC field: `crc`, else the masked CRC of the
 * payload (right for an uncompressed chunk); other types carry the payload alone.
 */
function chunk(type: number, payload: Buffer, crc?: number): Buffer {
  const crcField = Buffer.alloc(type <= 0x01 ? 4 : 0);
  if (type <= 0x01) crcField.writeUInt32LE(crc ?? maskedCrc32c(payload), 0);
  const head = Buffer.alloc(4);
  head[0] = type;
  head.writeUIntLE(crcField.length + payload.length, 1, 3);
  return Buffer.concat([head, crcField, payload]);
}

/** Compressible bytes: a short repeating pattern. */
function pattern(length: number, seed = 0): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = 0x61 + ((seed + i) % 7);
  return out;
}

/** Incompressible bytes: a seeded xorshift32 sequence, the same on every run. */
function noise(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Feeds `stream` to a new decoder cut at the given positions; returns all output joined. */
function decodeCut(stream: Buffer, cuts: readonly number[]): Buffer {
  const decoder = new SnappyFrameDecoder(codec);
  const points = [...new Set([0, ...cuts, stream.length])].sort((a, b) => a - b);
  const out: Buffer[] = [];
  for (let i = 1; i < points.length; i++) {
    out.push(...decoder.decode(Buffer.from(stream.subarray(points[i - 1], points[i]))));
  }
  return Buffer.concat(out);
}

describe('crc32c', () => {
  it('matches the standard check value: crc32c("123456789") = 0xE3069283', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('matches the RFC 3720 (iSCSI) test vectors', () => {
    const ascending = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    expect(crc32c(Buffer.alloc(32, 0x00))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(ascending)).toBe(0x46dd794e);
    expect(crc32c(Buffer.from(ascending).reverse())).toBe(0x113fdb5c);
  });

  it('is 0 for no data and an unsigned 32-bit number otherwise', () => {
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.from('a'))).toBe(0xc1d04330);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
        const c = crc32c(data);
        expect(Number.isInteger(c)).toBe(true);
        expect(c).toBeGreaterThanOrEqual(0);
        expect(c).toBeLessThanOrEqual(0xffffffff);
      }),
    );
  });

  it('accepts a Uint8Array view the same as a Buffer of the same bytes', () => {
    const backing = new Uint8Array([9, 9, 0x31, 0x32, 0x33, 9]);
    expect(crc32c(backing.subarray(2, 5))).toBe(crc32c(Buffer.from('123')));
  });
});

describe('maskedCrc32c', () => {
  it("is the framing format's mask: rotate right by 15, plus 0xa282ead8", () => {
    expect(maskedCrc32c(Buffer.alloc(0))).toBe(0xa282ead8);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
        const c = crc32c(data);
        const rotated = ((c >>> 15) | (c << 17)) >>> 0;
        expect(maskedCrc32c(data)).toBe((rotated + 0xa282ead8) % 2 ** 32);
      }),
    );
  });
});

describe('SnappyFrameEncoder', () => {
  it('starts the stream with the stream identifier, only on the first call', () => {
    const encoder = new SnappyFrameEncoder(codec);
    const first = encoder.encode(Buffer.from('hello'));
    expect(first.subarray(0, STREAM_IDENTIFIER.length)).toEqual(STREAM_IDENTIFIER);
    const second = encoder.encode(Buffer.from('hello'));
    expect(second[0]).not.toBe(0xff);
    expect(second).toEqual(first.subarray(STREAM_IDENTIFIER.length));
  });

  it('emits just the stream identifier for empty data first, then nothing for empty data', () => {
    const encoder = new SnappyFrameEncoder(codec);
    expect(encoder.encode(Buffer.alloc(0))).toEqual(STREAM_IDENTIFIER);
    expect(encoder.encode(Buffer.alloc(0))).toHaveLength(0);
  });

  it('writes compressible data as a compressed chunk with the CRC of the uncompressed data', () => {
    const data = pattern(4000);
    const chunks = splitChunks(new SnappyFrameEncoder(codec).encode(data));
    expect(chunks).toHaveLength(2);
    expect(chunks[0].type).toBe(0xff);
    expect(chunks[0].body.toString('latin1')).toBe('sNaPpY');
    const { type, body } = chunks[1];
    expect(type).toBe(0x00);
    expect(body.length).toBeLessThan(data.length);
    expect(body.readUInt32LE(0)).toBe(maskedCrc32c(data));
    expect(Buffer.from(uncompressSync(body.subarray(4)))).toEqual(data);
  });

  it('writes incompressible data as an uncompressed chunk holding the data as is', () => {
    const data = noise(3000, 1);
    const chunks = splitChunks(new SnappyFrameEncoder(codec).encode(data));
    expect(chunks.map((c) => c.type)).toEqual([0xff, 0x01]);
    expect(chunks[1].body.readUInt32LE(0)).toBe(maskedCrc32c(data));
    expect(chunks[1].body.subarray(4)).toEqual(data);
  });

  it.each([
    [1, 1],
    [MAX_BLOCK - 1, 1],
    [MAX_BLOCK, 1],
    [MAX_BLOCK + 1, 2],
    [2 * MAX_BLOCK, 2],
    [3 * MAX_BLOCK + 100, 4],
  ])('splits %i bytes into %i chunks of at most 64 KiB each', (length, count) => {
    const data = Buffer.concat([pattern(length >> 1), noise(length - (length >> 1), 2)]);
    const chunks = splitChunks(new SnappyFrameEncoder(codec).encode(data)).slice(1);
    expect(chunks).toHaveLength(count);
    const blocks = chunks.map(({ type, body }) => {
      expect([0x00, 0x01]).toContain(type);
      const block =
        type === 0x00 ? Buffer.from(uncompressSync(body.subarray(4))) : body.subarray(4);
      expect(block.length).toBeLessThanOrEqual(MAX_BLOCK);
      expect(body.readUInt32LE(0)).toBe(maskedCrc32c(block));
      return block;
    });
    expect(blocks.slice(0, -1).every((b) => b.length === MAX_BLOCK)).toBe(true);
    expect(Buffer.concat(blocks).equals(data)).toBe(true);
  });
});

describe('SnappyFrameDecoder', () => {
  it('round-trips compressible and incompressible data larger than 64 KiB', () => {
    const data = Buffer.concat([pattern(100_000), noise(150_000, 3), pattern(70_000, 3)]);
    const encoded = new SnappyFrameEncoder(codec).encode(data);
    expect(encoded.length).toBeLessThan(data.length);
    const out = new SnappyFrameDecoder(codec).decode(encoded);
    expect(out.length).toBeGreaterThanOrEqual(5); // one buffer per chunk
    expect(Buffer.concat(out).equals(data)).toBe(true);
  });

  it('round-trips random data written in several calls and read in random cuts', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 2000 }),
            fc.integer({ min: 0, max: 3000 }).map((n) => new Uint8Array(pattern(n))),
          ),
          { maxLength: 6 },
        ),
        fc.array(fc.nat(), { maxLength: 20 }),
        (writes, rawCuts) => {
          const encoder = new SnappyFrameEncoder(codec);
          const stream = Buffer.concat(writes.map((w) => encoder.encode(Buffer.from(w))));
          const cuts = rawCuts.map((c) => c % (stream.length + 1));
          const expected = Buffer.concat(writes.map((w) => Buffer.from(w)));
          expect(decodeCut(stream, cuts).equals(expected)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('round-trips a stream of more than 64 KiB cut at random points', () => {
    const data = Buffer.concat([noise(70_000, 4), pattern(80_000)]);
    const stream = new SnappyFrameEncoder(codec).encode(data);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }),
        (cuts) => {
          expect(decodeCut(stream, cuts).equals(data)).toBe(true);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('decodes a stream fed one byte at a time, output appearing as each chunk completes', () => {
    const encoder = new SnappyFrameEncoder(codec);
    const stream = Buffer.concat([
      encoder.encode(pattern(300)),
      encoder.encode(noise(50, 5)),
      encoder.encode(Buffer.from('x')),
    ]);
    const ends: number[] = [];
    let at = 0;
    for (const c of splitChunks(stream)) {
      at += 4 + c.body.length;
      if (c.type !== 0xff) ends.push(at);
    }
    const decoder = new SnappyFrameDecoder(codec);
    const out: Buffer[] = [];
    const outputAt: number[] = [];
    for (let i = 0; i < stream.length; i++) {
      const got = decoder.decode(stream.subarray(i, i + 1));
      if (got.length) outputAt.push(i + 1);
      out.push(...got);
    }
    expect(outputAt).toEqual(ends);
    expect(out.map((b) => b.length)).toEqual([300, 50, 1]);
    expect(out[2].toString()).toBe('x');
  });

  it('decodes a stream cut into two at every byte offset', () => {
    const encoder = new SnappyFrameEncoder(codec);
    const data = Buffer.concat([pattern(200), noise(40, 6)]);
    const stream = Buffer.concat([
      encoder.encode(data.subarray(0, 200)),
      encoder.encode(data.subarray(200)),
    ]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const out = decodeCut(stream, [cut]);
      if (!out.equals(data)) throw new Error(`cut at ${cut}: ${out.length} bytes out`);
    }
  });

  it('returns nothing for the stream identifier alone, and nothing while a chunk is incomplete', () => {
    const decoder = new SnappyFrameDecoder(codec);
    expect(decoder.decode(STREAM_IDENTIFIER)).toEqual([]);
    const c = chunk(0x01, Buffer.from('abcdef'));
    expect(decoder.decode(c.subarray(0, 3))).toEqual([]);
    expect(decoder.decode(c.subarray(3, c.length - 1))).toEqual([]);
    expect(decoder.decode(c.subarray(c.length - 1)).map(String)).toEqual(['abcdef']);
  });

  it('skips a stream identifier repeated in the middle of the stream', () => {
    const stream = Buffer.concat([
      STREAM_IDENTIFIER,
      chunk(0x01, Buffer.from('one')),
      STREAM_IDENTIFIER,
      chunk(0x01, Buffer.from('two')),
    ]);
    expect(new SnappyFrameDecoder(codec).decode(stream).map(String)).toEqual(['one', 'two']);
  });

  it('decodes hand-made uncompressed and compressed chunks', () => {
    const plain = Buffer.from('uncompressed chunk');
    const packed = pattern(500);
    const stream = Buffer.concat([
      STREAM_IDENTIFIER,
      chunk(0x01, plain),
      chunk(0x01, Buffer.alloc(0)),
      chunk(0x00, compressSync(packed), maskedCrc32c(packed)),
    ]);
    const out = new SnappyFrameDecoder(codec).decode(stream);
    expect(out).toHaveLength(3);
    expect(out[0]).toEqual(plain);
    expect(out[1]).toHaveLength(0);
    expect(out[2]).toEqual(packed);
  });

  it('accepts a block codec whose uncompressSync returns a string', () => {
    const stringCodec: SnappyBlockCodec = {
      compressSync: codec.compressSync,
      uncompressSync: (data) => uncompressSync(data, { asBuffer: false }),
    };
    const data = Buffer.from('text '.repeat(100));
    const stream = new SnappyFrameEncoder(codec).encode(data);
    const out = new SnappyFrameDecoder(stringCodec).decode(stream);
    expect(out.every((b) => Buffer.isBuffer(b))).toBe(true);
    expect(Buffer.concat(out)).toEqual(data);
  });

  it.each([
    ['compressed', pattern(1000)],
    ['uncompressed', noise(1000, 7)],
  ])('rejects a %s chunk whose CRC field is corrupted', (_kind, data) => {
    const stream = new SnappyFrameEncoder(codec).encode(data);
    const crcAt = STREAM_IDENTIFIER.length + 4;
    for (let bit = 0; bit < 32; bit += 7) {
      const bad = Buffer.from(stream);
      bad[crcAt + (bit >> 3)] ^= 1 << (bit & 7);
      expect(() => new SnappyFrameDecoder(codec).decode(bad)).toThrow(
        'snappy stream checksum mismatch',
      );
    }
  });

  it('rejects an uncompressed chunk whose data was altered', () => {
    const stream = Buffer.concat([STREAM_IDENTIFIER, chunk(0x01, Buffer.from('payload'))]);
    stream[stream.length - 1] ^= 0x20;
    expect(() => new SnappyFrameDecoder(codec).decode(stream)).toThrow(
      'snappy stream checksum mismatch',
    );
  });

  it('rejects a chunk carrying the CRC of other data', () => {
    const wrong = maskedCrc32c(Buffer.from('other'));
    const stream = Buffer.concat([STREAM_IDENTIFIER, chunk(0x01, Buffer.from('payload'), wrong)]);
    expect(() => new SnappyFrameDecoder(codec).decode(stream)).toThrow(
      'snappy stream checksum mismatch',
    );
  });

  it('rejects the corrupted chunk fed byte by byte, after handing out the good ones', () => {
    const encoder = new SnappyFrameEncoder(codec);
    const stream = Buffer.concat([
      encoder.encode(Buffer.from('good')),
      encoder.encode(Buffer.from('bad!')),
    ]);
    stream[stream.length - 1] ^= 1; // 4-byte data is stored uncompressed
    const decoder = new SnappyFrameDecoder(codec);
    const out: Buffer[] = [];
    let thrown: unknown;
    for (let i = 0; i < stream.length && thrown === undefined; i++) {
      try {
        out.push(...decoder.decode(stream.subarray(i, i + 1)));
      } catch (err) {
        thrown = err;
        expect(i).toBe(stream.length - 1); // only once the chunk is complete
      }
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toBe('snappy stream checksum mismatch');
    expect(out.map(String)).toEqual(['good']);
  });

  it.each([0x02, 0x03, 0x10, 0x7f])(
    'throws on the reserved unskippable chunk type %i (0x02-0x7f)',
    (type) => {
      const stream = Buffer.concat([
        STREAM_IDENTIFIER,
        chunk(type, Buffer.from([1, 2, 3, 4, 5])),
        chunk(0x01, Buffer.from('after')),
      ]);
      expect(() => new SnappyFrameDecoder(codec).decode(stream)).toThrow(
        `unknown unskippable snappy chunk type 0x${type.toString(16)}`,
      );
    },
  );

  it.each([0x80, 0x81, 0xc0, 0xfd, 0xfe])(
    'skips the reserved skippable chunk type %i (0x80-0xfe, padding included)',
    (type) => {
      const stream = Buffer.concat([
        STREAM_IDENTIFIER,
        chunk(0x01, Buffer.from('before')),
        chunk(type, Buffer.from('ignored bytes, even\x00binary')),
        chunk(type, Buffer.alloc(0)),
        chunk(0x01, Buffer.from('after')),
      ]);
      expect(new SnappyFrameDecoder(codec).decode(stream).map(String)).toEqual(['before', 'after']);
      // and when that chunk arrives split
      expect(decodeCut(stream, [13, 30, 31, 40]).toString()).toBe('beforeafter');
    },
  );
});

describe('snappy framing interop with the snappy package', () => {
  it("decodes the snappy package's own framed output", async () => {
    const data = Buffer.concat([pattern(90_000), noise(80_000, 8), Buffer.from('end')]);
    const compressor = new Compressor();
    const stream = Buffer.concat([compressor.update(data), await compressor.finish()]);
    expect(decodeCut(stream, [1, 10, 11, 5000, 70_000]).equals(data)).toBe(true);
  });

  it('produces output the snappy package decodes', async () => {
    const data = Buffer.concat([noise(70_000, 9), pattern(90_000), Buffer.from('end')]);
    const encoder = new SnappyFrameEncoder(codec);
    const stream = Buffer.concat([
      encoder.encode(data.subarray(0, 100)),
      encoder.encode(data.subarray(100)),
    ]);
    const decompressor = new Decompressor();
    const out = Buffer.concat([decompressor.update(stream), await decompressor.finish()]);
    expect(out.equals(data)).toBe(true);
  });
});
