// What ClientNsq publishes for a Nest packet: the frame header (metadata, headers, trace
// context), the body, and PUB or DPUB.
import type { ReadPacket } from '@nestjs/microservices';
import type { Producer } from '../producer/producer.js';
import type { NsqRecord } from './nsq-record.js';
import { encodeFrame, type FrameHeader } from './payload.js';
import type { ProducerSpan } from './tracing.js';

/** PUB, or DPUB when the record has a delay. */
export function publishBody(
  producer: Producer,
  topic: string,
  body: Buffer | string,
  record?: NsqRecord,
): Promise<void> {
  const delay = record?.options.delay;
  return delay !== undefined
    ? producer.publishDeferred(topic, delay, body)
    : producer.publish(topic, body);
}

/** What travels beside the data: the dispatch hook's metadata and the record's headers. */
export function framing(packet: ReadPacket, record?: NsqRecord, span?: ProducerSpan): FrameHeader {
  const header: FrameHeader = {};
  if (packet.metadata && Object.keys(packet.metadata).length) {
    // Metadata is a map of strings (Nest's PacketMetadata); anything else is made one.
    header.metadata = Object.fromEntries(
      Object.entries(packet.metadata).map(([k, v]) => [k, typeof v === 'string' ? v : String(v)]),
    );
  }
  const headers = record?.options.headers;
  if (headers && Object.keys(headers).length) header.headers = headers;
  if (span?.carrier) header.trace = span.carrier;
  return header;
}

/** A plain body when there is nothing to carry beside it; a framed one otherwise. */
export function frame(header: FrameHeader, body: Buffer | string): Buffer | string {
  return header.metadata || header.headers || header.trace ? encodeFrame(header, body) : body;
}

/** A serializer's output as a body: a Buffer or string as is, anything else JSON. */
export function asBody(value: unknown): Buffer | string {
  return Buffer.isBuffer(value) || typeof value === 'string' ? value : JSON.stringify(value);
}
