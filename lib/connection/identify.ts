// IDENTIFY: what the client asks for, and nsqd's answer, checked before it is trusted.
import { NsqProtocolError } from '../errors.js';
import type { IdentifyBody } from '../protocol/commands.js';
import type { ConnectionOptions } from './settings.js';

/** nsqd's answer to IDENTIFY (feature negotiation on). */
export interface Identity {
  max_rdy_count: number;
  version: string;
  max_msg_timeout: number;
  msg_timeout: number;
  tls_v1: boolean;
  deflate: boolean;
  deflate_level: number;
  snappy: boolean;
  auth_required: boolean;
  sample_rate: number;
  output_buffer_size: number;
  output_buffer_timeout: number;
}

/**
 * The IDENTIFY body. Settings that only shape message delivery (output buffering, sample rate,
 * msg timeout) go only from consumers.
 */
export function identifyBody(o: ConnectionOptions): IdentifyBody {
  const body: IdentifyBody = {
    client_id: o.clientId,
    hostname: o.hostname,
    user_agent: o.userAgent,
    feature_negotiation: true,
    heartbeat_interval: o.heartbeatInterval,
    tls_v1: o.tls !== false,
    deflate: o.deflate,
    deflate_level: o.deflateLevel,
    snappy: o.snappy,
  };
  if (o.role === 'consumer') {
    body.sample_rate = o.sampleRate;
    if (o.msgTimeout) body.msg_timeout = o.msgTimeout;
    body.output_buffer_size = o.outputBufferSize;
    body.output_buffer_timeout = o.outputBufferTimeout;
  }
  return body;
}

const bool = (v: unknown) => v === undefined || typeof v === 'boolean';

/**
 * nsqd's answer: JSON with feature negotiation, a bare OK from an nsqd that lacks it. Anything
 * else, or JSON of the wrong shape, is a protocol error naming the address.
 */
export function parseIdentity(answer: string, address: string): Identity {
  if (answer === 'OK') return legacyIdentity();
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer);
  } catch {
    parsed = undefined;
  }
  const id = parsed as Partial<Identity> | undefined;
  const problem =
    typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)
      ? 'not a JSON object'
      : !Number.isInteger(id!.max_rdy_count) || id!.max_rdy_count! < 1 || id!.max_rdy_count! > 1e6
        ? `max_rdy_count ${JSON.stringify(id!.max_rdy_count)} is not an integer 1..1000000`
        : ![id!.tls_v1, id!.deflate, id!.snappy, id!.auth_required].every(bool)
          ? 'a feature flag (tls_v1, deflate, snappy, auth_required) is not a boolean'
          : undefined;
  if (problem) {
    throw new NsqProtocolError(
      `nsqd at ${address} answered IDENTIFY with ${problem}: ${answer.slice(0, 200)}`,
    );
  }
  return { ...legacyIdentity(), ...id } as Identity;
}

/** Features the client did not ask for but nsqd turned on; empty when all is well. */
export function unrequestedFeatures(identity: Identity, o: ConnectionOptions): string[] {
  const out: string[] = [];
  if (identity.tls_v1 && o.tls === false) out.push('tls_v1');
  if (identity.deflate && !o.deflate) out.push('deflate');
  if (identity.snappy && !o.snappy) out.push('snappy');
  if (identity.deflate && identity.snappy) out.push('deflate and snappy at once');
  return out;
}

function legacyIdentity(): Identity {
  return {
    max_rdy_count: 2500,
    version: 'unknown',
    max_msg_timeout: 0,
    msg_timeout: 60_000,
    tls_v1: false,
    deflate: false,
    deflate_level: 0,
    snappy: false,
    auth_required: false,
    sample_rate: 0,
    output_buffer_size: 0,
    output_buffer_timeout: 0,
  };
}
