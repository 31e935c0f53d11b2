// Every error the library throws, each with a stable `code` a caller can branch on.

/** Base class of every error this library throws, so callers can tell ours from others. */
export class NsqError extends Error {
  /** Stable identifier of the kind of failure; subclasses narrow it. */
  readonly code: string = 'ERR_NSQ';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input caught before anything was sent: a name, a size, an option. */
export class NsqValidationError extends NsqError {
  override readonly code = 'ERR_NSQ_VALIDATION';
}

/** The consumer, producer or client was closed; create a new one to go on. */
export class NsqClosedError extends NsqError {
  override readonly code = 'ERR_NSQ_CLOSED';
}

/** finish(), requeue() or touch() on a message that was already finished or requeued. */
export class NsqAlreadyAnsweredError extends NsqError {
  override readonly code = 'ERR_NSQ_ALREADY_ANSWERED';
}

/** An error frame from nsqd, e.g. `E_BAD_TOPIC PUB topic name "x y" is not valid`. */
export class NsqResponseError extends NsqError {
  constructor(
    /** The E_* code nsqd sent, e.g. 'E_BAD_TOPIC'. */
    override readonly code: string,
    message: string,
    readonly address?: string,
  ) {
    super(`nsqd${address ? ` ${address}` : ''} answered ${code}: ${message}`);
  }
}

/**
 * The connection to nsqd or nsqlookupd could not be made or was lost. `code` is the operating
 * system's code when there is one ('ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', ...), so filters
 * that map those codes work; otherwise 'ERR_NSQ_CONNECTION'.
 */
export class NsqConnectionError extends NsqError {
  override readonly code: string;

  constructor(
    message: string,
    readonly address?: string,
    options?: { cause?: unknown; code?: string },
  ) {
    super(message, options);
    this.code = options?.code ?? systemCode(options?.cause) ?? 'ERR_NSQ_CONNECTION';
  }
}

/** A producer holds as many unacknowledged publishes as it may: this one was refused, not sent. */
export class NsqBackpressureError extends NsqError {
  override readonly code = 'ERR_NSQ_BACKPRESSURE';
}

/** A peer broke the protocol: a malformed frame, an impossible answer. The connection is dropped. */
export class NsqProtocolError extends NsqError {
  override readonly code = 'ERR_NSQ_PROTOCOL';
}

/** The system error code of `error` or of its cause, if any. */
function systemCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && depth < 3; e = (e as Error).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}
