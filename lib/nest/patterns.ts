// How Nest patterns name NSQ topics and channels. 'topic/channel' is the native form; a bare
// 'topic' takes the server's `channel` option; an object pattern such as { cmd: 'sum' } becomes
// the topic 'cmd_sum' (keys sorted, `key_value` pairs joined by '.').
import { NsqValidationError } from '../errors.js';
import { isValidName } from '../protocol/names.js';

const PART = /^[a-zA-Z0-9-]+$/;

const OBJECT_RULE =
  "an object pattern's keys and values must be letters, digits or '-' (values may be numbers), " +
  "e.g. { cmd: 'sum' } -> topic 'cmd_sum'";

/** The topic an object pattern maps to; throws an error that says how to write it. */
function topicOfObject(pattern: Record<string, unknown>): string {
  const keys = Object.keys(pattern).sort();
  const parts = keys.map((key) => {
    const value = pattern[key];
    const text = typeof value === 'number' && Number.isInteger(value) ? String(value) : value;
    if (!PART.test(key) || typeof text !== 'string' || !PART.test(text)) {
      throw new NsqValidationError(
        `Pattern ${JSON.stringify(pattern)} cannot name an NSQ topic: ${OBJECT_RULE}`,
      );
    }
    return `${key}_${text}`;
  });
  const topic = parts.join('.');
  if (!keys.length || !isValidName(topic)) {
    throw new NsqValidationError(
      `Pattern ${JSON.stringify(pattern)} maps to topic "${topic}", which is not a valid NSQ topic name (1..64 characters)`,
    );
  }
  return topic;
}

/** The topic a client publishes to for `pattern` ('orders', 'orders/billing' or an object). */
export function topicOfPattern(pattern: unknown): string {
  if (typeof pattern === 'object' && pattern !== null) {
    return topicOfObject(pattern as Record<string, unknown>);
  }
  const p = String(pattern);
  const slash = p.indexOf('/');
  return slash < 0 ? p : p.slice(0, slash);
}

/**
 * The topic and channel a server consumes for a handler's pattern, as Nest keys it (an object
 * pattern arrives as its JSON with sorted keys). `channel` is the server's default channel.
 */
export function routeOfPattern(
  pattern: string,
  channel: string | undefined,
): { topic: string; channel: string } {
  if (pattern.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(pattern);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed === 'object' && parsed !== null) {
      return {
        topic: topicOfObject(parsed as Record<string, unknown>),
        channel: need(channel, pattern),
      };
    }
  }
  const slash = pattern.indexOf('/');
  if (slash < 0) return { topic: pattern, channel: need(channel, pattern) };
  if (slash === 0 || slash === pattern.length - 1) {
    throw new NsqValidationError(
      `ServerNsq: pattern ${JSON.stringify(pattern)} must be 'topic/channel', e.g. @EventPattern('orders/billing')`,
    );
  }
  return { topic: pattern.slice(0, slash), channel: pattern.slice(slash + 1) };
}

function need(channel: string | undefined, pattern: string): string {
  if (channel === undefined) {
    throw new NsqValidationError(
      `ServerNsq: pattern ${pattern} names no channel: write 'topic/channel' ` +
        "(e.g. @EventPattern('orders/billing')) or set the ServerNsq option channel",
    );
  }
  return channel;
}
