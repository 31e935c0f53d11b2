import fc from 'fast-check';
import { FrameDecoder, FrameType, type Frame } from '../../lib/protocol/frames.js';

/** Encodes one frame by hand: int32 size (type + data), int32 type, data; big-endian. */
function encodeFrame({ type, data }: Frame): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(4 + data.length, 0);
  head.writeInt32BE(type, 4);
  return Buffer.concat([head, data]);
}

const encodeStream = (frames: readonly Frame[]): Buffer => Buffer.concat(frames.map(encodeFrame));

/** A frame header announcing `dataLength` bytes of data, without the data. */
function header(dataLength: number, type: number = FrameType.Response): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(4 + dataLength, 0);
  head.writeInt32BE(type, 4);
  return head;
}

/** A copy of a frame, so later pushes cannot alter what was recorded. */
const copy = (f: Frame): Frame => ({ type: f.type, data: Buffer.from(f.data) });

const OK: Frame = { type: FrameType.Response, data: Buffer.from('OK') };
const IDENTIFY: Frame = {
  type: FrameType.Response,
  data: Buffer.from('{"max_rdy_count":2500,"snappy":true}'),
};
const ERROR: Frame = { type: FrameType.Error, data: Buffer.from('E_INVALID bad') };
const MESSAGE: Frame = { type: FrameType.Message, data: Buffer.from('0123456789abcdefghijklmnop') };
const EMPTY: Frame = { type: FrameType.Response, data: Buffer.alloc(0) };

function streamingRecorder(decoder: FrameDecoder): Frame[] {
  const frames: Frame[] = [];
  decoder.stream((type, data) => frames.push({ type, data: Buffer.from(data) }));
  return frames;
}

describe('FrameDecoder handshake mode', () => {
  it('only buffers what is pushed until shift() is called', () => {
    const decoder = new FrameDecoder();
    const stream = encodeStream([OK, IDENTIFY]);
    decoder.push(stream);
    expect(decoder.buffered).toBe(stream.length);
  });

  it('shift() returns one frame at a time, in order, then undefined', () => {
    const decoder = new FrameDecoder();
    decoder.push(encodeStream([OK, ERROR, MESSAGE, EMPTY]));
    expect(decoder.shift()).toEqual(OK);
    expect(decoder.shift()).toEqual(ERROR);
    expect(decoder.shift()).toEqual(MESSAGE);
    expect(decoder.shift()).toEqual(EMPTY);
    expect(decoder.shift()).toBeUndefined();
    expect(decoder.buffered).toBe(0);
  });

  it('shift() on an empty decoder returns undefined', () => {
    const decoder = new FrameDecoder();
    expect(decoder.shift()).toBeUndefined();
    decoder.push(Buffer.alloc(0));
    expect(decoder.shift()).toBeUndefined();
    expect(decoder.buffered).toBe(0);
  });

  it('shift() returns undefined while the frame is incomplete, at every cut, then the frame', () => {
    const bytes = encodeFrame(IDENTIFY);
    for (let cut = 0; cut < bytes.length; cut++) {
      const decoder = new FrameDecoder();
      decoder.push(Buffer.from(bytes.subarray(0, cut)));
      expect(decoder.shift()).toBeUndefined();
      expect(decoder.buffered).toBe(cut); // nothing consumed by the failed shift
      decoder.push(Buffer.from(bytes.subarray(cut)));
      expect(decoder.shift()).toEqual(IDENTIFY);
      expect(decoder.shift()).toBeUndefined();
    }
  });

  it('assembles a frame pushed one byte at a time, header included', () => {
    const decoder = new FrameDecoder();
    const bytes = encodeFrame(MESSAGE);
    for (let i = 0; i < bytes.length - 1; i++) {
      decoder.push(bytes.subarray(i, i + 1));
      expect(decoder.shift()).toBeUndefined();
    }
    decoder.push(bytes.subarray(bytes.length - 1));
    expect(decoder.shift()).toEqual(MESSAGE);
  });

  it.each([1, 2, 3])('reads a header split after %i byte(s) across chunks', (split) => {
    const bytes = encodeFrame(OK);
    const decoder = new FrameDecoder();
    decoder.push(bytes.subarray(0, split));
    expect(decoder.shift()).toBeUndefined();
    decoder.push(bytes.subarray(split, 4));
    expect(decoder.shift()).toBeUndefined();
    decoder.push(bytes.subarray(4));
    expect(decoder.shift()).toEqual(OK);
  });

  it('reads a header that arrives as four one-byte chunks after a taken frame', () => {
    const decoder = new FrameDecoder();
    const bytes = encodeStream([OK, IDENTIFY]);
    const second = encodeFrame(OK).length;
    decoder.push(bytes.subarray(0, second + 1));
    expect(decoder.shift()).toEqual(OK);
    for (let i = second + 1; i < second + 4; i++) decoder.push(bytes.subarray(i, i + 1));
    expect(decoder.shift()).toBeUndefined();
    decoder.push(bytes.subarray(second + 4));
    expect(decoder.shift()).toEqual(IDENTIFY);
  });

  it('takeRemainder() hands back exactly the bytes after the frames taken, and forgets them', () => {
    const decoder = new FrameDecoder();
    const compressed = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59, 1]);
    decoder.push(Buffer.concat([encodeFrame(IDENTIFY), compressed.subarray(0, 4)]));
    decoder.push(compressed.subarray(4));
    expect(decoder.shift()).toEqual(IDENTIFY);
    const rest = decoder.takeRemainder();
    expect(rest.equals(compressed)).toBe(true);
    expect(decoder.buffered).toBe(0);
    expect(decoder.takeRemainder()).toHaveLength(0);
    expect(decoder.shift()).toBeUndefined();
  });

  it('takeRemainder() returns a partial frame not yet shifted, and an empty buffer when nothing is held', () => {
    const decoder = new FrameDecoder();
    expect(decoder.takeRemainder()).toHaveLength(0);
    const bytes = encodeFrame(MESSAGE);
    decoder.push(bytes.subarray(0, 3));
    decoder.push(bytes.subarray(3, 10));
    expect(decoder.takeRemainder().equals(bytes.subarray(0, 10))).toBe(true);
    expect(decoder.buffered).toBe(0);
  });

  it('takeRemainder() returns whole frames that were not shifted, as bytes', () => {
    const decoder = new FrameDecoder();
    const stream = encodeStream([OK, ERROR, MESSAGE]);
    decoder.push(stream);
    expect(decoder.shift()).toEqual(OK);
    expect(decoder.takeRemainder().equals(encodeStream([ERROR, MESSAGE]))).toBe(true);
  });

  it('shift() and takeRemainder() split any stream into the frames taken and the rest', () => {
    const frameArb = fc.record({
      type: fc.constantFrom<FrameType>(0, 1, 2),
      data: fc.uint8Array({ maxLength: 50 }).map((u) => Buffer.from(u)),
    });
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 6 }),
        frameArb,
        fc.nat(),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 10 }),
        (frames, last, partial, take, rawCuts) => {
          // The stream ends inside a further frame, which shift() must not hand out.
          const lastBytes = encodeFrame(last);
          const trailing = lastBytes.subarray(0, partial % lastBytes.length);
          const n = take % (frames.length + 1);
          const stream = Buffer.concat([encodeStream(frames), trailing]);
          const decoder = new FrameDecoder();
          const cuts = [
            ...new Set([0, ...rawCuts.map((c) => c % (stream.length + 1)), stream.length]),
          ];
          cuts.sort((a, b) => a - b);
          for (let i = 1; i < cuts.length; i++) {
            decoder.push(Buffer.from(stream.subarray(cuts[i - 1], cuts[i])));
          }
          const taken: Frame[] = [];
          for (let i = 0; i < n; i++) taken.push(copy(decoder.shift()!));
          expect(taken).toEqual(frames.slice(0, n));
          if (n === frames.length) expect(decoder.shift()).toBeUndefined();
          const rest = Buffer.concat([encodeStream(frames.slice(n)), trailing]);
          expect(decoder.buffered).toBe(rest.length);
          expect(decoder.takeRemainder().equals(rest)).toBe(true);
          expect(decoder.buffered).toBe(0);
        },
      ),
    );
  });

  it('stream(handler) delivers buffered frames first, then a split one, then later ones', () => {
    const decoder = new FrameDecoder();
    const stream = encodeStream([OK, ERROR, MESSAGE, IDENTIFY]);
    const cut = encodeStream([OK, ERROR]).length + 5; // inside MESSAGE's header+data
    decoder.push(stream.subarray(0, cut));
    expect(decoder.shift()).toEqual(OK);
    const frames = streamingRecorder(decoder);
    expect(frames).toEqual([ERROR]);
    expect(decoder.buffered).toBe(5);
    decoder.push(stream.subarray(cut));
    expect(frames).toEqual([ERROR, MESSAGE, IDENTIFY]);
    expect(decoder.buffered).toBe(0);
    decoder.push(encodeStream([EMPTY, OK]));
    expect(frames).toEqual([ERROR, MESSAGE, IDENTIFY, EMPTY, OK]);
  });

  it('stream(handler) with nothing buffered calls nothing until frames arrive', () => {
    const decoder = new FrameDecoder();
    decoder.push(encodeFrame(OK));
    expect(decoder.shift()).toEqual(OK);
    const frames = streamingRecorder(decoder);
    expect(frames).toEqual([]);
    const later = encodeStream([MESSAGE, ERROR]);
    for (let i = 0; i < later.length; i++) decoder.push(later.subarray(i, i + 1));
    expect(frames).toEqual([MESSAGE, ERROR]);
  });

  it('stream(handler) after takeRemainder() starts clean, for bytes decoded by a stream codec', () => {
    const decoder = new FrameDecoder();
    decoder.push(Buffer.concat([encodeFrame(IDENTIFY), Buffer.from([0xde, 0xad, 0xbe, 0xef])]));
    expect(decoder.shift()).toEqual(IDENTIFY);
    expect([...decoder.takeRemainder()]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    const frames = streamingRecorder(decoder);
    expect(frames).toEqual([]);
    decoder.push(encodeFrame(OK));
    expect(frames).toEqual([OK]);
  });

  it('stream(handler) picks up a header split in the buffer (1-3 bytes held)', () => {
    for (const held of [1, 2, 3]) {
      const decoder = new FrameDecoder();
      const bytes = encodeStream([OK, MESSAGE]);
      const okLength = encodeFrame(OK).length;
      decoder.push(bytes.subarray(0, okLength + held));
      expect(decoder.shift()).toEqual(OK);
      const frames = streamingRecorder(decoder);
      expect(frames).toEqual([]);
      expect(decoder.buffered).toBe(held);
      decoder.push(bytes.subarray(okLength + held));
      expect(frames).toEqual([MESSAGE]);
    }
  });

  it('throws a RangeError for a frame size below 4 as soon as the header is in', () => {
    const decoder = new FrameDecoder();
    const bad = Buffer.from([0, 0, 0, 3]);
    decoder.push(bad.subarray(0, 3));
    expect(() => decoder.push(bad.subarray(3))).toThrow(RangeError);
    expect(() => new FrameDecoder().push(bad)).toThrow('invalid NSQ frame size 3');
  });
});

describe('FrameDecoder maxFrameSize', () => {
  const MAX = 64; // total frame bytes, the size field included

  it('accepts a frame of exactly the limit in both modes', () => {
    const frame: Frame = { type: FrameType.Message, data: Buffer.alloc(MAX - 8, 7) };
    const handshake = new FrameDecoder(undefined, MAX);
    handshake.push(encodeFrame(frame));
    expect(handshake.shift()).toEqual(frame);
    const frames: Frame[] = [];
    new FrameDecoder((type, data) => frames.push({ type, data }), MAX).push(encodeFrame(frame));
    expect(frames).toEqual([frame]);
  });

  it('handshake mode: throws at the header of a frame one byte over, before any data arrives', () => {
    const decoder = new FrameDecoder(undefined, MAX);
    expect(() => decoder.push(header(MAX - 8 + 1))).toThrow(RangeError);
    expect(() => new FrameDecoder(undefined, MAX).push(header(MAX - 8 + 1))).toThrow(
      `NSQ frame of ${MAX + 1} bytes is over the limit of ${MAX} bytes`,
    );
  });

  it.each([[[1, 3]], [[2, 2]], [[3, 1]], [[1, 1, 1, 1]]])(
    'handshake mode: throws on the chunk completing a split header %j',
    (sizes) => {
      const head = header(1_000_000);
      const decoder = new FrameDecoder(undefined, MAX);
      let at = 0;
      for (const [i, size] of sizes.entries()) {
        const part = head.subarray(at, at + size);
        at += size;
        if (i < sizes.length - 1) expect(() => decoder.push(part)).not.toThrow();
        else expect(() => decoder.push(part)).toThrow(RangeError);
      }
    },
  );

  it('handshake mode: rejects an oversized frame that follows a good one, once the good one is taken', () => {
    const decoder = new FrameDecoder(undefined, MAX);
    decoder.push(Buffer.concat([encodeFrame(OK), header(MAX)]));
    expect(decoder.shift()).toEqual(OK);
    expect(() => decoder.shift()).toThrow(RangeError);
  });

  it('streaming mode: throws at the header of an oversized frame, before any data arrives', () => {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder((type, data) => frames.push({ type, data }), MAX);
    expect(() => decoder.push(header(MAX - 8 + 1))).toThrow(
      `NSQ frame of ${MAX + 1} bytes is over the limit of ${MAX} bytes`,
    );
    expect(frames).toEqual([]);
  });

  it('streaming mode: delivers a good frame, then throws at the oversized header behind it', () => {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder((type, data) => frames.push(copy({ type, data })), MAX);
    expect(() => decoder.push(Buffer.concat([encodeFrame(OK), header(10_000)]))).toThrow(
      RangeError,
    );
    expect(frames).toEqual([OK]);
  });

  it.each([1, 2, 3])(
    'streaming mode: throws once a header split after %i byte(s) is complete',
    (split) => {
      const frames: Frame[] = [];
      const decoder = new FrameDecoder((type, data) => frames.push(copy({ type, data })), MAX);
      const head = header(10_000);
      expect(() =>
        decoder.push(Buffer.concat([encodeFrame(OK), head.subarray(0, split)])),
      ).not.toThrow();
      expect(frames).toEqual([OK]);
      expect(() => decoder.push(head.subarray(split))).toThrow(RangeError);
    },
  );

  it('streaming mode: throws at an oversized header behind a split frame', () => {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder((type, data) => frames.push(copy({ type, data })), MAX);
    const stream = Buffer.concat([encodeFrame(IDENTIFY), header(10_000)]);
    decoder.push(stream.subarray(0, 6));
    expect(() => decoder.push(stream.subarray(6))).toThrow(RangeError);
    expect(frames).toEqual([IDENTIFY]);
  });

  it('applies the limit after stream(handler) switches modes', () => {
    const decoder = new FrameDecoder(undefined, MAX);
    decoder.push(encodeFrame(OK));
    expect(decoder.shift()).toEqual(OK);
    const frames = streamingRecorder(decoder);
    expect(() => decoder.push(header(MAX))).toThrow(RangeError);
    expect(frames).toEqual([]);
  });

  it('has no limit by default', () => {
    const decoder = new FrameDecoder();
    expect(() => decoder.push(header(0x7ffffff0))).not.toThrow();
    expect(decoder.shift()).toBeUndefined();
  });
});
