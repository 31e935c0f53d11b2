export * from './core.js';
export { NSQ_TRANSPORT, NSQ_MODULE_OPTIONS, type NsqStatus } from './nsq.constants.js';
export {
  ServerNsq,
  type NsqHandlerOptions,
  type NsqServerEvents,
  type NsqServerOptions,
} from './server/server-nsq.js';
export { NsqContext, type NsqMessageInfo } from './server/nsq.context.js';
export { ClientNsq, type NsqClientEvents, type NsqClientOptions } from './client/client-nsq.js';
export { NsqRecord, NsqRecordBuilder, type NsqRecordOptions } from './record/nsq-record.js';
export { NsqModule, type NsqModuleAsyncOptions, type NsqModuleOptions } from './nsq.module.js';
export { NsqHealthIndicator, type NsqdHealth, type NsqHealthResult } from './health/nsq.health.js';
export { NsqDecodeError, parseDeadLetter, type NsqDeadLetter } from './payload.js';
