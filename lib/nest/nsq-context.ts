import { BaseRpcContext } from '@nestjs/microservices';
import type { NsqMessage } from '../consumer/nsq-message.js';
import { NsqError } from '../errors.js';
import type { FrameHeader } from './payload.js';

/**
 * The message, the callback told when a handler with manual acknowledgement answers, the
 * Nest pattern, and the header of a framed body (metadata, headers).
 */
export type NsqContextArgs = [
  message: NsqMessage,
  onManualAnswer: (() => void) | undefined,
  pattern?: string,
  header?: FrameHeader,
];

/** What a handler can learn about the message it handles. */
export interface NsqMessageInfo {
  id: string;
  /** Deliveries so far, this one included. */
  attempts: number;
  /** Nanoseconds since the epoch when nsqd received the message. */
  timestamp: bigint;
  /** The raw body, before deserialization. */
  body: Buffer;
  /** The nsqd ('host:port') that delivered it. */
  nsqdAddress: string;
}

/** `@Ctx() ctx: NsqContext` in an NSQ handler. */
export class NsqContext extends BaseRpcContext<NsqContextArgs> {
  constructor(args: NsqContextArgs) {
    super(args);
  }

  getMessage(): NsqMessageInfo {
    const m = this.args[0];
    const info = {
      id: m.id,
      attempts: m.attempts,
      timestamp: m.timestamp,
      body: m.body,
      nsqdAddress: m.address,
    };
    // JSON has no bigint: a logged context shows the timestamp as a decimal string.
    Object.defineProperty(info, 'toJSON', {
      enumerable: false,
      value: () => ({ ...info, timestamp: String(info.timestamp) }),
    });
    return info;
  }

  getTopic(): string {
    return this.args[0].topic;
  }

  getChannel(): string {
    return this.args[0].channel;
  }

  /** The handler's pattern, e.g. 'orders/billing'. */
  getPattern(): string {
    return this.args[2] ?? `${this.getTopic()}/${this.getChannel()}`;
  }

  /** What the client's dispatch hook put in `packet.metadata`, if anything. */
  getMetadata(): Record<string, string> | undefined {
    return this.args[3]?.metadata;
  }

  /** What the sender set with `NsqRecordBuilder.setHeaders()`, if anything. */
  getHeaders(): Record<string, string> | undefined {
    return this.args[3]?.headers;
  }

  /** Resets nsqd's msg-timeout for this message: call it during long work. */
  touch(): void {
    this.args[0].touch();
  }

  /** FIN now. Needs `manualAck: true` on the handler; a message answers only once. */
  finish(): void {
    this.manual('finish').finish();
    this.args[1]!();
  }

  /**
   * REQ now, delivered again after `delayMs` (default 0); `backoff` (default true) counts it as
   * a failure for the consumer's backoff. Needs `manualAck: true`.
   */
  requeue(delayMs = 0, backoff = true): void {
    this.manual('requeue').requeue(delayMs, backoff);
    this.args[1]!();
  }

  /** True once the message was finished or requeued. */
  get answered(): boolean {
    return this.args[0].answered;
  }

  private manual(action: string): NsqMessage {
    if (!this.args[1]) {
      throw new NsqError(
        `NsqContext.${action}() needs manual acknowledgement: set { manualAck: true } on the handler ` +
          "(e.g. @EventPattern('topic/channel', { manualAck: true }))",
      );
    }
    return this.args[0];
  }
}
