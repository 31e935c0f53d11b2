/** Frame types of the NSQ TCP protocol. */
export const FrameType = { Response: 0, Error: 1, Message: 2 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  type: FrameType;
  data: Buffer;
}

const EMPTY: Buffer = Buffer.alloc(0);

export type FrameHandler = (type: FrameType, data: Buffer) => void;

/**
 * Incremental decoder of `[size int32][type int32][data]` frames. Frames wholly inside one
 * chunk are handed out as views of that chunk (no copy); a frame split across chunks is
 * assembled once.
 *
 * Two modes. Streaming (a handler given): every frame goes to the handler as it completes.
 * Handshake (no handler yet): bytes are only buffered; `shift()` takes one frame at a time and
 * `takeRemainder()` hands back what follows, so that a stream codec negotiated by that frame
 * can decode it; `stream(handler)` then switches to streaming.
 */
export class FrameDecoder {
  private parts: Buffer[] = [];
  private partsLength = 0;

  constructor(
    private onFrame?: FrameHandler,
    /** Largest frame accepted (size field included); a larger header throws at once. */
    private readonly maxFrameSize = Infinity,
  ) {}

  /** Bytes held while waiting for the rest of a frame. */
  get buffered(): number {
    return this.partsLength;
  }

  push(chunk: Buffer): void {
    if (!this.onFrame) {
      this.append(chunk);
      this.pendingFrameLength(); // checks the size as soon as the header is in
      return;
    }
    if (this.partsLength > 0) {
      this.append(chunk);
      const frameLength = this.pendingFrameLength();
      if (frameLength < 0 || this.partsLength < frameLength) return;
      chunk = this.takePending(frameLength);
    }
    this.parse(chunk);
  }

  /** Handshake mode: the first complete frame, or undefined while it is incomplete. */
  shift(): Frame | undefined {
    const frameLength = this.pendingFrameLength();
    if (frameLength < 0 || this.partsLength < frameLength) return undefined;
    const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    const rest = all.subarray(frameLength);
    this.parts = rest.length ? [rest] : [];
    this.partsLength = rest.length;
    return { type: all.readInt32BE(4) as FrameType, data: all.subarray(8, frameLength) };
  }

  /** Handshake mode: the bytes buffered after the frames taken, handed back and forgotten. */
  takeRemainder(): Buffer {
    const rest = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    this.parts = [];
    this.partsLength = 0;
    return rest.length ? rest : EMPTY;
  }

  /** Switches to streaming: what is buffered is decoded first. */
  stream(handler: FrameHandler): void {
    this.onFrame = handler;
    const rest = this.takeRemainder();
    if (rest.length) this.push(rest);
  }

  private append(chunk: Buffer): void {
    this.parts.push(chunk);
    this.partsLength += chunk.length;
  }

  private checkSize(size: number): number {
    if (size < 4) throw new RangeError(`invalid NSQ frame size ${size}`);
    if (size + 4 > this.maxFrameSize) {
      throw new RangeError(
        `NSQ frame of ${size + 4} bytes is over the limit of ${this.maxFrameSize} bytes`,
      );
    }
    return size + 4;
  }

  private parse(buf: Buffer): void {
    let offset = 0;
    const end = buf.length;
    while (end - offset >= 8) {
      const next = offset + this.checkSize(buf.readInt32BE(offset));
      if (next > end) break;
      this.onFrame!(buf.readInt32BE(offset + 4) as FrameType, buf.subarray(offset + 8, next));
      offset = next;
    }
    if (offset < end) {
      if (end - offset >= 4) this.checkSize(buf.readInt32BE(offset));
      this.parts = [buf.subarray(offset)];
      this.partsLength = end - offset;
    }
  }

  /** Total length of the first pending frame, or -1 while its size is not yet known. */
  private pendingFrameLength(): number {
    if (this.partsLength < 4) return -1;
    const first = this.parts[0];
    const head = first.length >= 4 ? first : Buffer.concat(this.parts, 4);
    return this.checkSize(head.readInt32BE(0));
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
    this.onFrame!(frame.readInt32BE(4) as FrameType, frame.subarray(8));
    return rest;
  }
}
