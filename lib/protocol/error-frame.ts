import { NsqResponseError } from '../errors.js';

/** The only error codes after which nsqd keeps the connection open. */
const NON_FATAL = new Set(['E_FIN_FAILED', 'E_REQ_FAILED', 'E_TOUCH_FAILED']);

/** Decodes an error frame's data, `E_CODE message`. */
export function parseErrorFrame(data: Buffer, address?: string): NsqResponseError {
  const text = data.toString();
  const space = text.indexOf(' ');
  const code = space < 0 ? text : text.slice(0, space);
  return new NsqResponseError(code, space < 0 ? text : text.slice(space + 1), address);
}

/** True when nsqd closes the connection after sending this error. */
export function isFatalError(code: string): boolean {
  return !NON_FATAL.has(code);
}
