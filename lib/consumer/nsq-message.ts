import { NsqAlreadyAnsweredError, NsqValidationError } from '../errors.js';
import { DecodedMessage } from '../protocol/message-frame.js';
import { IN_FLIGHT_SLOT } from './in-flight.js';

/** How a message was answered, or undefined while it is still in flight. */
export type MessageOutcome = 'finished' | 'requeued' | undefined;

/** What a message needs from the connection it arrived on. */
export interface MessageOwner {
  readonly address: string;
  readonly topic: string;
  readonly channel: string;
  finish(message: NsqMessage): void;
  requeue(message: NsqMessage, delayMs: number, backoff: boolean): void;
  touch(message: NsqMessage): void;
}

/** One delivery of a message. It answers nsqd exactly once: finish() or requeue(). */
export class NsqMessage extends DecodedMessage {
  private answer: MessageOutcome;
  /** Its place in the consumer's list of messages in flight. @internal */
  [IN_FLIGHT_SLOT] = -1;
  /** When this delivery arrived (ms since the epoch). */
  readonly receivedAt = Date.now();

  /** @internal The consumer makes messages; a handler gets them. */
  constructor(
    data: Buffer,
    private readonly owner: MessageOwner,
  ) {
    super(data);
  }

  /** The nsqd 'host:port' this delivery came from. */
  get address(): string {
    return this.owner.address;
  }
  get topic(): string {
    return this.owner.topic;
  }
  get channel(): string {
    return this.owner.channel;
  }
  get outcome(): MessageOutcome {
    return this.answer;
  }
  /** True once finish() or requeue() was called. */
  get answered(): boolean {
    return this.answer !== undefined;
  }

  /** FIN: the message is done. */
  finish(): void {
    this.answerOnce('finished');
    this.owner.finish(this);
  }

  /**
   * REQ: deliver again after `delayMs`. `backoff` (default true) lets the consumer slow down
   * intake as a failure; false requeues without counting as one.
   */
  requeue(delayMs = 0, backoff = true): void {
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new NsqValidationError(`requeue delay must be a number of ms >= 0, got ${delayMs}`);
    }
    this.answerOnce('requeued');
    this.owner.requeue(this, delayMs, backoff);
  }

  /** TOUCH: reset nsqd's msg-timeout for this message while work goes on. */
  touch(): void {
    if (this.answer) throw this.alreadyAnswered('touch');
    this.owner.touch(this);
  }

  private answerOnce(outcome: MessageOutcome): void {
    if (this.answer) throw this.alreadyAnswered(outcome === 'finished' ? 'finish' : 'requeue');
    this.answer = outcome;
  }

  private alreadyAnswered(action: string): NsqAlreadyAnsweredError {
    return new NsqAlreadyAnsweredError(
      `Cannot ${action} message ${this.id}: it was already ${this.answer}`,
    );
  }
}
