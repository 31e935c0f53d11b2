import { isUtf8 } from 'node:buffer';
import type { NsqMessage } from '../consumer/nsq-message.js';
import { NsqDecodeError, type NsqDeadLetter } from './payload.js';

/** The record of a message given up: where it came from, why, and its body. */
export function deadLetterOf(
  message: NsqMessage,
  reason: unknown,
  maxAttempts: number,
): NsqDeadLetter {
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
  };
}

/** A one-line reason: an Error's message, an RpcException payload's message, else JSON. */
export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null) {
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string') return message;
    try {
      return JSON.stringify(error);
    } catch {
      // fall through
    }
  }
  return String(error);
}

/** A bounded view of a body for a log line: text if it is, else base64; at most 1 KiB. */
export function preview(body: Buffer): string {
  const head = body.subarray(0, 1024);
  const text = isUtf8(head) ? JSON.stringify(head.toString()) : `base64:${head.toString('base64')}`;
  return body.length > head.length ? `${text}... (${body.length} bytes)` : text;
}
