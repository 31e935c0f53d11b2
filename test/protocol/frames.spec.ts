import fc from 'fast-check';
import { FrameDecoder, FrameType } from '../../lib/protocol/frames.js';

interface Frame {
  type: number;
  data: Buffer;
}

/** Encodes one frame by hand: int32 size (type + data), int32 type, data; big-endian. */
function encodeFrame({ type, data }: Frame): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(4 + data.length, 0);
  head.writeInt32BE(type, 4);
  return Buffer.concat([head, data]);
}

function encodeStream(frames: readonly Frame[]): Buffer {
  return Buffer.concat(frames.map(encodeFrame));
}

/** A decoder that records copies of what it is given (so later pushes cannot alter them). */
function recorder() {
  const frames: Frame[] = [];
  const views: Buffer[] = [];
  const decoder = new FrameDecoder((type, data) => {
    views.push(data);
    frames.push({ type, data: Buffer.from(data) });
  });
  return { decoder, frames, views };
}

/** Pushes `stream` cut at the given positions (any order, duplicates allowed). */
function pushCut(decoder: FrameDecoder, stream: Buffer, cuts: readonly number[]): void {
  const points = [...new Set([0, ...cuts, stream.length])].sort((a, b) => a - b);
  for (let i = 1; i < points.length; i++) {
    // Each chunk is its own buffer, as a socket would hand it out.
    decoder.push(Buffer.from(stream.subarray(points[i - 1], points[i])));
  }
}

/** Describes the first difference between two frame lists (fast, unlike deep equality on
 * large buffers), or returns undefined if they are equal. */
function frameDiff(actual: readonly Frame[], expected: readonly Frame[]): string | undefined {
  if (actual.length !== expected.length) {
    return `${actual.length} frames, expected ${expected.length}`;
  }
  for (let i = 0; i < actual.length; i++) {
    if (actual[i].type !== expected[i].type) {
      return `frame ${i}: type ${actual[i].type}, expected ${expected[i].type}`;
    }
    if (!actual[i].data.equals(expected[i].data)) {
      return `frame ${i}: data differs (${actual[i].data.length} vs ${expected[i].data.length} bytes)`;
    }
  }
  return undefined;
}

function bytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (seed + i * 31) & 0xff;
  return out;
}

// Types 0, 1, 2 with data sizes around every boundary of the 8-byte header, plus one frame larger
// than Node's 4 KiB buffer pool.
const FIXTURE: Frame[] = [
  { type: FrameType.Response, data: Buffer.from('OK') },
  { type: FrameType.Message, data: bytes(0, 1) },
  { type: FrameType.Error, data: Buffer.from('E_INVALID bad thing') },
  { type: FrameType.Message, data: bytes(1, 2) },
  { type: FrameType.Response, data: bytes(3, 3) },
  { type: FrameType.Message, data: bytes(4, 4) },
  { type: FrameType.Error, data: bytes(0, 5) },
  { type: FrameType.Message, data: bytes(7, 6) },
  { type: FrameType.Response, data: bytes(8, 7) },
  { type: FrameType.Message, data: bytes(9, 8) },
  { type: FrameType.Message, data: bytes(4500, 9) },
  { type: FrameType.Response, data: Buffer.from('_heartbeat_') },
];
const FIXTURE_STREAM = encodeStream(FIXTURE);

const SMALL: Frame[] = [
  { type: FrameType.Response, data: Buffer.from('OK') },
  { type: FrameType.Message, data: bytes(0, 1) },
  { type: FrameType.Error, data: bytes(5, 2) },
  { type: FrameType.Message, data: bytes(9, 3) },
];
const SMALL_STREAM = encodeStream(SMALL);

const frameArb: fc.Arbitrary<Frame> = fc.record({
  type: fc.constantFrom(0, 1, 2),
  data: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
});

describe('FrameDecoder', () => {
  it('decodes a stream pushed in one chunk, several frames per chunk, in order', () => {
    const { decoder, frames } = recorder();
    decoder.push(FIXTURE_STREAM);
    expect(frames).toEqual(FIXTURE);
    expect(decoder.buffered).toBe(0);
  });

  it('decodes the stream cut into two chunks at every byte offset', () => {
    const problems: string[] = [];
    for (let cut = 0; cut <= FIXTURE_STREAM.length; cut++) {
      const { decoder, frames } = recorder();
      const first = Buffer.from(FIXTURE_STREAM.subarray(0, cut));
      decoder.push(first);
      // Every frame wholly inside the first chunk is out already; the rest waits, buffered.
      let complete = 0;
      let end = 0;
      for (const f of FIXTURE) {
        if (end + 8 + f.data.length > cut) break;
        end += 8 + f.data.length;
        complete++;
      }
      const early = frameDiff(frames, FIXTURE.slice(0, complete));
      if (early !== undefined) problems.push(`cut ${cut}, first chunk: ${early}`);
      if (decoder.buffered !== cut - end) {
        problems.push(`cut ${cut}: ${decoder.buffered} bytes held, expected ${cut - end}`);
      }
      decoder.push(Buffer.from(FIXTURE_STREAM.subarray(cut)));
      const late = frameDiff(frames, FIXTURE);
      if (late !== undefined) problems.push(`cut ${cut}, second chunk: ${late}`);
      if (decoder.buffered !== 0) problems.push(`cut ${cut}: ${decoder.buffered} bytes held`);
    }
    expect(problems).toEqual([]);
  });

  it('decodes a small stream cut into three chunks at every pair of offsets', () => {
    const n = SMALL_STREAM.length;
    for (let a = 0; a <= n; a++) {
      for (let b = a; b <= n; b++) {
        const { decoder, frames } = recorder();
        decoder.push(Buffer.from(SMALL_STREAM.subarray(0, a)));
        decoder.push(Buffer.from(SMALL_STREAM.subarray(a, b)));
        decoder.push(Buffer.from(SMALL_STREAM.subarray(b)));
        const diff = frameDiff(frames, SMALL);
        if (diff !== undefined || decoder.buffered !== 0) {
          throw new Error(`cuts at ${a},${b}: ${diff ?? ''}; ${decoder.buffered} bytes held`);
        }
      }
    }
  });

  it('decodes the stream pushed one byte at a time', () => {
    const { decoder, frames } = recorder();
    for (let i = 0; i < SMALL_STREAM.length; i++) {
      decoder.push(SMALL_STREAM.subarray(i, i + 1));
      expect(decoder.buffered).toBeLessThan(8 + 9);
    }
    expect(frames).toEqual(SMALL);
    expect(decoder.buffered).toBe(0);
  });

  it('decodes random frames cut into random chunks', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (input, rawCuts) => {
          const stream = encodeStream(input);
          const cuts = rawCuts.map((c) => c % (stream.length + 1));
          const { decoder, frames } = recorder();
          pushCut(decoder, stream, cuts);
          expect(frameDiff(frames, input)).toBeUndefined();
          expect(decoder.buffered).toBe(0);
        },
      ),
    );
  });

  it('ignores empty chunks, whether or not a frame is pending', () => {
    const { decoder, frames } = recorder();
    decoder.push(Buffer.alloc(0));
    decoder.push(SMALL_STREAM.subarray(0, 3));
    decoder.push(Buffer.alloc(0));
    expect(decoder.buffered).toBe(3);
    decoder.push(SMALL_STREAM.subarray(3));
    decoder.push(Buffer.alloc(0));
    expect(frames).toEqual(SMALL);
  });

  it('delivers the type field as sent and an empty data for a size-4 frame', () => {
    const { decoder, frames } = recorder();
    decoder.push(Buffer.from([0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 1, 0x41]));
    expect(frames).toEqual([
      { type: 2, data: Buffer.alloc(0) },
      { type: 1, data: Buffer.from('A') },
    ]);
  });

  it('hands out a frame wholly inside one chunk as a view of that chunk, not a copy', () => {
    const { decoder, views } = recorder();
    // Buffer.alloc never uses the shared pool, so the chunk owns its ArrayBuffer.
    const chunk = Buffer.alloc(SMALL_STREAM.length);
    SMALL_STREAM.copy(chunk);
    decoder.push(chunk);
    expect(views).toHaveLength(SMALL.length);
    let offset = 0;
    for (const [i, view] of views.entries()) {
      expect(view.buffer).toBe(chunk.buffer);
      expect(view.byteOffset).toBe(chunk.byteOffset + offset + 8);
      expect(view.length).toBe(SMALL[i].data.length);
      offset += 8 + SMALL[i].data.length;
    }
    // A view: writing through the chunk shows in the data handed out.
    chunk[8] = 0x7a;
    expect(views[0][0]).toBe(0x7a);
  });

  it('hands out whole frames that follow a completed split frame as views of the new chunk', () => {
    const { decoder, views, frames } = recorder();
    const firstLength = 8 + SMALL[0].data.length;
    decoder.push(Buffer.from(SMALL_STREAM.subarray(0, 5)));
    const second = Buffer.alloc(SMALL_STREAM.length - 5);
    SMALL_STREAM.copy(second, 0, 5);
    decoder.push(second);
    expect(frames).toEqual(SMALL);
    expect(views[0].buffer).not.toBe(second.buffer); // assembled from two chunks
    let offset = firstLength - 5;
    for (let i = 1; i < SMALL.length; i++) {
      expect(views[i].buffer).toBe(second.buffer);
      expect(views[i].byteOffset).toBe(second.byteOffset + offset + 8);
      offset += 8 + SMALL[i].data.length;
    }
  });

  it.each([0, 1, 2, 3, -1, -8, -0x80000000])(
    'throws a RangeError on frame size %i (< 4)',
    (size) => {
      const bad = Buffer.alloc(12);
      bad.writeInt32BE(size, 0);
      bad.writeInt32BE(FrameType.Response, 4);
      const { decoder, frames } = recorder();
      expect(() => decoder.push(bad)).toThrow(RangeError);
      expect(() => recorder().decoder.push(bad)).toThrow(`invalid NSQ frame size ${size}`);
      expect(frames).toHaveLength(0);
    },
  );

  it('throws a RangeError on a bad size that arrives after a good frame in the same chunk', () => {
    const bad = Buffer.alloc(8);
    bad.writeInt32BE(2, 0);
    const { decoder, frames } = recorder();
    expect(() => decoder.push(Buffer.concat([encodeFrame(SMALL[0]), bad]))).toThrow(RangeError);
    expect(frames).toEqual([SMALL[0]]);
  });

  it('throws a RangeError on a bad size that arrives one byte at a time', () => {
    const bad = Buffer.from([0, 0, 0, 3, 0, 0, 0, 0, 9, 9, 9, 9]);
    const { decoder, frames } = recorder();
    let thrown: unknown;
    for (let i = 0; i < bad.length && thrown === undefined; i++) {
      try {
        decoder.push(bad.subarray(i, i + 1));
      } catch (err) {
        thrown = err;
      }
    }
    expect(thrown).toBeInstanceOf(RangeError);
    expect(frames).toHaveLength(0);
  });

  it('throws a RangeError on a bad size behind a split frame', () => {
    const bad = Buffer.alloc(8);
    bad.writeInt32BE(1, 0);
    const stream = Buffer.concat([encodeFrame(SMALL[2]), bad]);
    const { decoder, frames } = recorder();
    decoder.push(stream.subarray(0, 6));
    expect(() => decoder.push(stream.subarray(6))).toThrow(RangeError);
    expect(frames).toEqual([SMALL[2]]);
  });
});
