/** transportId of ServerNsq: `@EventPattern('topic/channel', NSQ_TRANSPORT)` binds only to it. */
export const NSQ_TRANSPORT = Symbol('NSQ_TRANSPORT');

/** Injection token of the options given to NsqModule. */
export const NSQ_MODULE_OPTIONS = Symbol('NSQ_MODULE_OPTIONS');

/** Connection states reported by ServerNsq and ClientNsq through `status`. */
export type NsqStatus = 'connected' | 'disconnected' | 'reconnecting';
