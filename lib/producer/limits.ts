import { NsqResponseError, NsqValidationError } from '../errors.js';
import * as commands from '../protocol/commands.js';

export type MessageBody = Buffer | Uint8Array | string;

/**
 * Message and MPUB body size limits: the configured ones, and nsqd's own --max-msg-size /
 * --max-body-size learned from its refusals when lower. A refused publish costs the connection
 * (and can cost the acknowledgements of publishes in flight beside it), so the next one that
 * size is refused here instead.
 */
export class MessageLimits {
  private learned = { message: Infinity, body: Infinity };

  constructor(
    readonly maxMessageSize: number,
    readonly maxBodySize: number,
  ) {}

  /** The largest MPUB body worth building now. */
  bodyLimit(configured: number): number {
    return Math.min(configured, this.learned.body);
  }

  /** Learns nsqd's limit from "PUB message too big 70000 > 65536" or "MPUB body too big ...". */
  learnFrom(error: NsqResponseError): void {
    const tooBig = /(message|body) too big \d+ > (\d+)/.exec(error.message);
    if (!tooBig) return;
    const kind = tooBig[1] === 'body' ? 'body' : 'message';
    this.learned[kind] = Math.min(this.learned[kind], Number(tooBig[2]));
  }

  /** The body as a Buffer, or a validation error saying why nsqd would refuse it. */
  toBuffer(topic: string, body: MessageBody): Buffer {
    let buf: Buffer;
    if (Buffer.isBuffer(body)) buf = body;
    else if (typeof body === 'string') buf = Buffer.from(body);
    else if (body instanceof Uint8Array)
      buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    else
      throw new NsqValidationError(
        `Message to "${topic}" must be a Buffer, Uint8Array or string, got ${typeof body}`,
      );
    if (buf.length === 0) {
      throw new NsqValidationError(`Message to "${topic}" is empty: nsqd rejects empty messages`);
    }
    if (buf.length > this.maxMessageSize) {
      throw new NsqValidationError(
        `Message to "${topic}" is ${buf.length} bytes, over maxMessageSize ${this.maxMessageSize} ` +
          '(nsqd --max-msg-size); nothing was sent',
      );
    }
    if (buf.length > this.learned.message) {
      throw new NsqValidationError(
        `Message to "${topic}" is ${buf.length} bytes, over nsqd's --max-msg-size ${this.learned.message} ` +
          '(learned from its refusal of a larger one; set maxMessageSize to match); nothing was sent',
      );
    }
    return buf;
  }

  /** Throws if an MPUB of these bodies is over either body limit. */
  checkMpub(topic: string, bodies: readonly Buffer[]): void {
    const size = commands.mpubBodySize(bodies);
    if (size > this.maxBodySize) {
      throw new NsqValidationError(
        `MPUB to "${topic}" is ${size} bytes, over maxBodySize ${this.maxBodySize} (nsqd --max-body-size); ` +
          'split it or raise both limits',
      );
    }
    if (size > this.learned.body) {
      throw new NsqValidationError(
        `MPUB to "${topic}" is ${size} bytes, over nsqd's --max-body-size ${this.learned.body} ` +
          '(learned from its refusal of a larger one); split it',
      );
    }
  }
}

/** nsqd refused a publish for its own --max-msg-size or --max-body-size (a whole MPUB, for one). */
export function isSizeRefusal(error: unknown): boolean {
  return (
    error instanceof NsqResponseError &&
    (error.code === 'E_BAD_MESSAGE' || error.code === 'E_BAD_BODY')
  );
}
