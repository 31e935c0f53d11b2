/** Base class of every error this library throws, so callers can tell ours from others. */
export class NsqError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input caught before anything was sent: a name, a size, an option. */
export class NsqValidationError extends NsqError {}

/** An error frame from nsqd, e.g. `E_BAD_TOPIC PUB topic name "x y" is not valid`. */
export class NsqResponseError extends NsqError {
  constructor(
    /** The E_* code nsqd sent. */
    readonly code: string,
    message: string,
    readonly address?: string,
  ) {
    super(`nsqd${address ? ` ${address}` : ''} answered ${code}: ${message}`);
  }
}

/** The connection to nsqd could not be made or was lost. */
export class NsqConnectionError extends NsqError {
  constructor(
    message: string,
    readonly address?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
