import { NsqValidationError } from '../errors.js';

export interface NsqRecordOptions {
  /** Deliver after this many ms (DPUB). */
  delay?: number;
  /** String headers, read by the handler with `ctx.getHeaders()`; they frame the body. */
  headers?: Record<string, string>;
}

/** Data to emit or send plus NSQ publish options; build one with NsqRecordBuilder. */
export class NsqRecord<TData = unknown> {
  constructor(
    readonly data: TData,
    readonly options: NsqRecordOptions = {},
  ) {}
}

/**
 * `client.emit('topic', new NsqRecordBuilder(data).setDelay(5000).build())` publishes with
 * DPUB; `.setHeaders({ 'x-version': '1' })` sends headers beside the data.
 */
export class NsqRecordBuilder<TData = unknown> {
  private options: NsqRecordOptions = {};

  constructor(private data?: TData) {}

  setData(data: TData): this {
    this.data = data;
    return this;
  }

  setOptions(options: NsqRecordOptions): this {
    if (options.delay !== undefined) checkDelay(options.delay);
    if (options.headers !== undefined) checkHeaders(options.headers);
    this.options = { ...this.options, ...options };
    return this;
  }

  /** Delay in ms before nsqd makes the message visible (DPUB). */
  setDelay(delayMs: number): this {
    return this.setOptions({ delay: delayMs });
  }

  /** String headers the handler reads with `ctx.getHeaders()`. */
  setHeaders(headers: Record<string, string>): this {
    return this.setOptions({ headers });
  }

  build(): NsqRecord<TData> {
    return new NsqRecord(this.data as TData, this.options);
  }
}

function checkDelay(delayMs: unknown): void {
  if (!Number.isInteger(delayMs) || (delayMs as number) < 0) {
    throw new NsqValidationError(
      `NsqRecordBuilder.setDelay: delay must be an integer >= 0 (ms), got ${delayMs}`,
    );
  }
}

function checkHeaders(headers: unknown): void {
  const ok =
    typeof headers === 'object' &&
    headers !== null &&
    !Array.isArray(headers) &&
    Object.values(headers).every((v) => typeof v === 'string');
  if (!ok) {
    throw new NsqValidationError(
      'NsqRecordBuilder.setHeaders: headers must be an object of string values',
    );
  }
}
