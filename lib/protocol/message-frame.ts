/** Byte layout of a message frame's data: timestamp, attempts, id, body. */
export const MESSAGE_ID_LENGTH = 16;
const ATTEMPTS_OFFSET = 8;
const ID_OFFSET = 10;
const BODY_OFFSET = ID_OFFSET + MESSAGE_ID_LENGTH;

/**
 * The fields of a message frame. The body is a view of the frame, not a copy; the timestamp is
 * read only when asked for (most consumers never do).
 */
export class DecodedMessage {
  /** 16 ASCII characters, as nsqd expects them back in FIN/REQ/TOUCH. */
  readonly id: string;
  /** How many times nsqd has delivered this message, this delivery included. */
  readonly attempts: number;
  readonly body: Buffer;

  constructor(private readonly frame: Buffer) {
    if (frame.length < BODY_OFFSET) {
      throw new RangeError(`NSQ message frame too short: ${frame.length} bytes`);
    }
    this.id = frame.toString('latin1', ID_OFFSET, BODY_OFFSET);
    this.attempts = frame.readUInt16BE(ATTEMPTS_OFFSET);
    this.body = frame.subarray(BODY_OFFSET);
  }

  /** Nanoseconds since the epoch when nsqd first received the message. */
  get timestamp(): bigint {
    return this.frame.readBigInt64BE(0);
  }

  /** The timestamp in ms since the epoch, to a µs or so (cheaper than a bigint). */
  get timestampMs(): number {
    return this.frame.readUInt32BE(0) * 4294.967296 + this.frame.readUInt32BE(4) / 1e6;
  }
}
