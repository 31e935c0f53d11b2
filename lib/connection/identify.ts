// IDENTIFY: what the client asks for, and nsqd's answer.
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

export function identifyBody(o: ConnectionOptions): IdentifyBody {
  const body: IdentifyBody = {
    client_id: o.clientId,
    hostname: o.hostname,
    user_agent: o.userAgent,
    feature_negotiation: true,
    heartbeat_interval: o.heartbeatInterval,
    sample_rate: o.sampleRate,
    tls_v1: o.tls !== false,
    deflate: o.deflate,
    deflate_level: o.deflateLevel,
    snappy: o.snappy,
  };
  if (o.msgTimeout) body.msg_timeout = o.msgTimeout;
  if (o.outputBufferSize !== undefined) body.output_buffer_size = o.outputBufferSize;
  if (o.outputBufferTimeout !== undefined) body.output_buffer_timeout = o.outputBufferTimeout;
  return body;
}

/** nsqd's answer: JSON with feature negotiation, a bare OK from an nsqd that lacks it. */
export function parseIdentity(answer: string): Identity {
  return answer === 'OK' ? legacyIdentity() : (JSON.parse(answer) as Identity);
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
