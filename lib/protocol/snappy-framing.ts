// The snappy framing format that nsqd speaks once snappy is negotiated: a stream identifier, then
// chunks of [type][3-byte LE length][masked CRC-32C][data]. The block codec itself is injected.

export interface SnappyBlockCodec {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Buffer): Buffer | string;
}

const STREAM_IDENTIFIER = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]);
const CHUNK_COMPRESSED = 0x00;
const CHUNK_UNCOMPRESSED = 0x01;
const CHUNK_STREAM_ID = 0xff;
const MAX_BLOCK = 65536;
/** The longest chunk a conforming encoder writes: a checksum and a block's worst compression. */
const MAX_CHUNK = 4 + 32 + MAX_BLOCK + Math.ceil(MAX_BLOCK / 6);

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

export function crc32c(data: Uint8Array): number {
  let crc = -1;
  for (let i = 0; i < data.length; i++) crc = CRC_TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** The framing format's masked checksum. */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** Encodes a byte stream into snappy frames; the first call also emits the stream identifier. */
export class SnappyFrameEncoder {
  private started = false;
  constructor(private readonly codec: SnappyBlockCodec) {}

  encode(data: Buffer): Buffer {
    const out: Buffer[] = [];
    if (!this.started) {
      out.push(STREAM_IDENTIFIER);
      this.started = true;
    }
    for (let at = 0; at < data.length; at += MAX_BLOCK) {
      const block = data.subarray(at, at + MAX_BLOCK);
      const compressed = this.codec.compressSync(block);
      const useCompressed = compressed.length < block.length;
      const payload = useCompressed ? compressed : block;
      const head = Buffer.allocUnsafe(8);
      head[0] = useCompressed ? CHUNK_COMPRESSED : CHUNK_UNCOMPRESSED;
      head.writeUIntLE(payload.length + 4, 1, 3);
      head.writeUInt32LE(maskedCrc32c(block), 4);
      out.push(head, payload);
    }
    return Buffer.concat(out);
  }
}

/** Decodes snappy frames from chunks of any size; returns the uncompressed bytes available. */
export class SnappyFrameDecoder {
  private pending: Buffer = Buffer.alloc(0);
  constructor(private readonly codec: SnappyBlockCodec) {}

  decode(chunk: Buffer): Buffer[] {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Buffer[] = [];
    let at = 0;
    while (buf.length - at >= 4) {
      const type = buf[at];
      const length = buf.readUIntLE(at + 1, 3);
      // Checked at the header, so a hostile length never makes the decoder buffer it.
      if (length > MAX_CHUNK)
        throw new Error(`snappy chunk of ${length} bytes is over ${MAX_CHUNK}`);
      if ((type === CHUNK_COMPRESSED || type === CHUNK_UNCOMPRESSED) && length < 4) {
        throw new Error(`snappy data chunk of ${length} bytes has no checksum`);
      }
      if (buf.length - at - 4 < length) break;
      const body = buf.subarray(at + 4, at + 4 + length);
      at += 4 + length;
      if (type === CHUNK_COMPRESSED || type === CHUNK_UNCOMPRESSED) {
        const data =
          type === CHUNK_COMPRESSED
            ? toBuffer(this.codec.uncompressSync(body.subarray(4)))
            : body.subarray(4);
        if (data.length > MAX_BLOCK) {
          throw new Error(`snappy block of ${data.length} bytes is over ${MAX_BLOCK}`);
        }
        if (maskedCrc32c(data) !== body.readUInt32LE(0)) {
          throw new Error('snappy stream checksum mismatch');
        }
        out.push(data);
      } else if (type !== CHUNK_STREAM_ID && type < 0x80) {
        throw new Error(`unknown unskippable snappy chunk type 0x${type.toString(16)}`);
      }
    }
    this.pending = at < buf.length ? Buffer.from(buf.subarray(at)) : Buffer.alloc(0);
    return out;
  }
}

const toBuffer = (b: Buffer | string): Buffer => (typeof b === 'string' ? Buffer.from(b) : b);
