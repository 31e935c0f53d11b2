// The NSQ client core on its own: no NestJS import anywhere below this entry.
export {
  NsqAlreadyAnsweredError,
  NsqBackpressureError,
  NsqClosedError,
  NsqConnectionError,
  NsqError,
  NsqProtocolError,
  NsqResponseError,
  NsqValidationError,
} from './errors.js';
export type { NsqConnectionSettings } from './connection/settings.js';
export type { Identity } from './connection/identify.js';
export {
  Consumer,
  type ConsumerConnectionInfo,
  type ConsumerEvents,
  type ConsumerState,
} from './consumer/consumer.js';
export {
  defaultRequeueDelay,
  type ConsumerOptions,
  type RequeueDelay,
} from './consumer/options.js';
export type { MessageHandler, NsqGiveUpSignal } from './consumer/message-runner.js';
export { NsqMessage, type MessageOutcome } from './consumer/nsq-message.js';
export { DEFAULT_BACKOFF, type BackoffMode, type BackoffSettings } from './consumer/backoff.js';
export { Producer, type ProducerEvents, type ProducerState } from './producer/producer.js';
export type { ProducerOptions } from './producer/options.js';
export type { MessageBody } from './producer/limits.js';
export { lookupTopic, type LookupResult } from './lookup/lookupd.js';
export type { ConsumerMetrics, HistogramSnapshot, ProducerMetrics } from './metrics.js';
export type { BackoffChange } from './consumer/rdy-controller.js';
