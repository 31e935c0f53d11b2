/** Frame types of the NSQ TCP protocol. */
export const FrameType = { Response: 0, Error: 1, Message: 2 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const EMPTY: Buffer = Buffer.alloc(0);

export type FrameHandler = (type: FrameType, data: Buffer) => void;

/**
 * Incremental decoder of `[size int32][type int32][data]` frames. Frames wholly inside one
 * chunk are handed out as views of that chunk (no copy); a frame split across chunks is
 * assembled once.
 */
export class FrameDecoder {
  private parts: Buffer[] = [];
  private partsLength = 0;

  constructor(private readonly onFrame: FrameHandler) {}

  /** Bytes held while waiting for the rest of a frame. */
  get buffered(): number {
    return this.partsLength;
  }

  push(chunk: Buffer): void {
    if (this.partsLength > 0) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      const frameLength = this.pendingFrameLength();
      if (frameLength < 0 || this.partsLength < frameLength) return;
      chunk = this.takePending(frameLength);
    }
    this.parse(chunk);
  }

  private parse(buf: Buffer): void {
    let offset = 0;
    const end = buf.length;
    while (end - offset >= 8) {
      const size = buf.readInt32BE(offset);
      if (size < 4) throw new RangeError(`invalid NSQ frame size ${size}`);
      const next = offset + 4 + size;
      if (next > end) break;
      this.onFrame(buf.readInt32BE(offset + 4) as FrameType, buf.subarray(offset + 8, next));
      offset = next;
    }
    if (offset < end) {
      this.parts = [buf.subarray(offset)];
      this.partsLength = end - offset;
    }
  }

  /** Total length of the first pending frame, or -1 while its size is not yet known. */
  private pendingFrameLength(): number {
    if (this.partsLength < 4) return -1;
    const first = this.parts[0];
    const head = first.length >= 4 ? first : Buffer.concat(this.parts, 4);
    const size = head.readInt32BE(0);
    if (size < 4) throw new RangeError(`invalid NSQ frame size ${size}`);
    return size + 4;
  }

  /** Emits the first pending frame (copied into one buffer) and returns what follows it. */
  private takePending(frameLength: number): Buffer {
    // The frame completed with the chunk just pushed, so only the last part can hold a remainder.
    const frame = Buffer.allocUnsafe(frameLength);
    let copied = 0;
    let rest = EMPTY;
    for (const part of this.parts) {
      const n = Math.min(frameLength - copied, part.length);
      part.copy(frame, copied, 0, n);
      copied += n;
      if (n < part.length) rest = part.subarray(n);
    }
    this.parts = [];
    this.partsLength = 0;
    this.onFrame(frame.readInt32BE(4) as FrameType, frame.subarray(8));
    return rest;
  }
}
