// How a handler's failure reads in a log line, a dead letter or a span.

/** A one-line reason: an Error's message, an RpcException payload's message, else JSON. */
export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null) {
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string') return message;
    try {
      return JSON.stringify(error);
    } catch {
      // fall through
    }
  }
  return String(error);
}

/** The error Nest's RPC exception filter passes on after it logged an unknown error itself. */
export const loggedByNest = (error: unknown) =>
  !(error instanceof Error) &&
  (error as { message?: unknown } | null)?.message === 'Internal server error';
