/** Byte layout of a message frame's data: timestamp, attempts, id, body. */
export const MESSAGE_ID_LENGTH = 16;
const ATTEMPTS_OFFSET = 8;
const ID_OFFSET = 10;
const BODY_OFFSET = ID_OFFSET + MESSAGE_ID_LENGTH;

export interface DecodedMessage {
  /** 16 ASCII characters, as nsqd expects them back in FIN/REQ/TOUCH. */
  id: string;
  /** How many times nsqd has delivered this message, this delivery included. */
  attempts: number;
  /** Nanoseconds since the epoch when nsqd first received the message. */
  timestamp: bigint;
  body: Buffer;
}

/** Decodes the data of a message frame. The body is a view of `data`, not a copy. */
export function decodeMessage(data: Buffer): DecodedMessage {
  if (data.length < BODY_OFFSET) {
    throw new RangeError(`NSQ message frame too short: ${data.length} bytes`);
  }
  return {
    id: data.toString('latin1', ID_OFFSET, BODY_OFFSET),
    attempts: data.readUInt16BE(ATTEMPTS_OFFSET),
    timestamp: data.readBigInt64BE(0),
    body: data.subarray(BODY_OFFSET),
  };
}
