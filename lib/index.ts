// nestjs-nsq: the Nest transport and the NSQ client core. The wire layer is `nestjs-nsq/protocol`.
export * from './core.js';
export { NSQ_TRANSPORT, NSQ_MODULE_OPTIONS, type NsqStatus } from './nest/constants.js';
export {
  ServerNsq,
  type NsqHandlerOptions,
  type NsqServerEvents,
  type NsqServerMetrics,
  type NsqServerOptions,
} from './nest/server-nsq.js';
export { prometheusText, PROMETHEUS_CONTENT_TYPE } from './nest/prometheus.js';
export { NsqContext, type NsqContextArgs, type NsqMessageInfo } from './nest/nsq-context.js';
export { ClientNsq, type NsqClientEvents } from './nest/client-nsq.js';
export type { NsqClientOptions } from './nest/client-options.js';
export { NsqRequestError } from './nest/reply-inbox.js';
export { NsqRecord, NsqRecordBuilder, type NsqRecordOptions } from './nest/nsq-record.js';
export {
  NsqModule,
  type NsqModuleAsyncOptions,
  type NsqModuleOptions,
  type NsqOptionsFactory,
} from './nest/nsq.module.js';
export {
  NsqHealthIndicator,
  type NsqdHealth,
  type NsqHealthResult,
} from './nest/nsq-health.indicator.js';
export { NsqDecodeError, parseDeadLetter, type NsqDeadLetter } from './nest/payload.js';
