// The NSQ client core on its own: no NestJS import anywhere below this entry.
export * from './protocol/index.js';
export {
  NsqConnection,
  type ConnectionHandlers,
  type ConnectionOptions,
  type Identity,
} from './connection/connection.js';
export type { NsqConnectionSettings } from './connection/options.js';
export {
  Consumer,
  defaultRequeueDelay,
  type ConsumerEvents,
  type ConsumerOptions,
  type MessageHandler,
  type NsqGiveUpSignal,
  type RequeueDelay,
} from './consumer/consumer.js';
export { NsqMessage, type MessageOutcome } from './consumer/message.js';
export { DEFAULT_BACKOFF, type BackoffSettings } from './consumer/backoff.js';
export {
  Producer,
  type MessageBody,
  type ProducerEvents,
  type ProducerOptions,
} from './producer/producer.js';
export { lookupTopic } from './lookup/lookupd.js';
