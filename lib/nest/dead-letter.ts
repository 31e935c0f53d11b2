import { isUtf8 } from 'node:buffer';
import type { LoggerService } from '@nestjs/common';
import type { NsqMessage } from '../consumer/nsq-message.js';
import { NsqValidationError } from '../errors.js';
import { isSizeRefusal } from '../producer/limits.js';
import { describe } from './describe-error.js';
import type { Producer } from '../producer/producer.js';
import { deadLetterForms, NsqDecodeError, payloadOf, type NsqDeadLetter } from './payload.js';

/**
 * What ServerNsq does with a message given up: logs it, publishes its dead letter (if the
 * pattern has a topic for them) to the nsqd it came from, and tells the discard hook. A
 * failure to publish rejects, so that the message is kept and comes back.
 */
export class DeadLetters {
  /** Dead letters published, per 'topic/channel' the messages came from. */
  readonly deadLettered = new Map<string, number>();

  constructor(
    private readonly logger: LoggerService,
    private readonly producerFor: (address: string) => Producer,
    private readonly onDiscard?: (letter: NsqDeadLetter) => unknown,
  ) {}

  async discard(
    message: NsqMessage,
    reason: unknown,
    deadLetterTopic: string | undefined,
    maxAttempts: number,
  ): Promise<void> {
    const letter = deadLetterOf(message, reason, maxAttempts);
    const where = deadLetterTopic
      ? `dead-lettering to ${deadLetterTopic}`
      : this.onDiscard
        ? 'handed to onDiscard'
        : `dropped (no deadLetterTopic or onDiscard); body: ${preview(letter.body)}`;
    this.logger.warn(
      `Gave up on message ${letter.id} of ${letter.topic}/${letter.channel} after ${letter.attempts} attempt(s) ` +
        `(reason ${letter.reason}; last error: ${letter.error}); ${where}`,
    );
    if (deadLetterTopic) await this.publish(message.address, deadLetterTopic, letter);
    await this.onDiscard?.(letter);
  }

  /**
   * Publishes a dead letter in a form nsqd accepts: whole if it fits, else with its body cut
   * to fit (`truncated`, `bodyBytes` say so). A connection error rejects (the message is kept
   * and comes back); a letter nsqd refuses even cut is logged with its metadata, never looped.
   */
  private async publish(address: string, topic: string, letter: NsqDeadLetter): Promise<void> {
    const producer = this.producerFor(address);
    for (const encoded of deadLetterForms(letter, producer.maxMessageSize)) {
      try {
        await producer.publish(topic, encoded);
        const from = `${letter.topic}/${letter.channel}`;
        this.deadLettered.set(from, (this.deadLettered.get(from) ?? 0) + 1);
        return;
      } catch (err) {
        // Too big for our limit (checked before sending) or for nsqd's: try the next, smaller form.
        if (!(err instanceof NsqValidationError) && !isSizeRefusal(err)) throw err;
      }
    }
    this.logger.error(
      `nsqd refused the dead letter of message ${letter.id} of ${letter.topic}/${letter.channel} ` +
        `even without its body; it is dropped: ${JSON.stringify({ ...letter, body: undefined, payload: undefined })}`,
    );
  }
}

/** The record of a message given up: where it came from, why, and its body. */
function deadLetterOf(message: NsqMessage, reason: unknown, maxAttempts: number): NsqDeadLetter {
  return {
    topic: message.topic,
    channel: message.channel,
    id: message.id,
    attempts: message.attempts,
    error: describe(reason),
    reason:
      reason instanceof NsqDecodeError
        ? 'undecodable'
        : maxAttempts > 0 && message.attempts >= maxAttempts
          ? 'maxAttempts'
          : 'gaveUp',
    failedAt: new Date().toISOString(),
    body: message.body,
    payload: payloadOf(message.body),
  };
}

/** A bounded view of a body for a log line: text if it is, else base64; at most 1 KiB. */
function preview(body: Buffer): string {
  const head = body.subarray(0, 1024);
  const text = isUtf8(head) ? JSON.stringify(head.toString()) : `base64:${head.toString('base64')}`;
  return body.length > head.length ? `${text}... (${body.length} bytes)` : text;
}
