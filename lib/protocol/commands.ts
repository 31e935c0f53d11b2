// Encoders of every NSQ command. Pure: they return bytes and never validate against a server.

/** The protocol magic sent first on every connection. */
export const MAGIC_V2 = Buffer.from('  V2', 'latin1');

/** Fields of IDENTIFY; see the NSQ TCP protocol spec. */
export interface IdentifyBody {
  client_id: string;
  hostname: string;
  user_agent: string;
  feature_negotiation: true;
  heartbeat_interval: number;
  msg_timeout?: number;
  output_buffer_size?: number;
  output_buffer_timeout?: number;
  sample_rate?: number;
  tls_v1?: boolean;
  deflate?: boolean;
  deflate_level?: number;
  snappy?: boolean;
}

function withSize(header: string, body: Buffer): Buffer[] {
  const head = Buffer.allocUnsafe(header.length + 4);
  head.write(header, 0, 'latin1');
  head.writeUInt32BE(body.length, header.length);
  return [head, body];
}

export function identify(body: IdentifyBody): Buffer[] {
  return withSize('IDENTIFY\n', Buffer.from(JSON.stringify(body)));
}

export function auth(secret: string): Buffer[] {
  return withSize('AUTH\n', Buffer.from(secret));
}

export const sub = (topic: string, channel: string): string => `SUB ${topic} ${channel}\n`;
export const rdy = (count: number): string => `RDY ${count}\n`;
export const fin = (id: string): string => `FIN ${id}\n`;
export const req = (id: string, delayMs: number): string => `REQ ${id} ${Math.round(delayMs)}\n`;
export const touch = (id: string): string => `TOUCH ${id}\n`;
export const CLS = 'CLS\n';
export const NOP = 'NOP\n';

export function pub(topic: string, body: Buffer): Buffer[] {
  return withSize(`PUB ${topic}\n`, body);
}

export function dpub(topic: string, delayMs: number, body: Buffer): Buffer[] {
  return withSize(`DPUB ${topic} ${Math.round(delayMs)}\n`, body);
}

/** MPUB body size: 4 bytes of count, then 4 bytes of size before each message. */
export function mpubBodySize(bodies: readonly Buffer[]): number {
  let size = 4;
  for (const b of bodies) size += 4 + b.length;
  return size;
}

export function mpub(topic: string, bodies: readonly Buffer[]): Buffer {
  const header = `MPUB ${topic}\n`;
  const bodySize = mpubBodySize(bodies);
  const out = Buffer.allocUnsafe(header.length + 4 + bodySize);
  let at = out.write(header, 0, 'latin1');
  at = out.writeUInt32BE(bodySize, at);
  at = out.writeUInt32BE(bodies.length, at);
  for (const b of bodies) {
    at = out.writeUInt32BE(b.length, at);
    at += b.copy(out, at);
  }
  return out;
}
