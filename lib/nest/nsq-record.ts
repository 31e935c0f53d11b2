import { NsqValidationError } from '../errors.js';

export interface NsqRecordOptions {
  /** Deliver after this many ms (DPUB). */
  delay?: number;
}

/** Data to emit plus NSQ publish options; build one with NsqRecordBuilder. */
export class NsqRecord<TData = unknown> {
  constructor(
    readonly data: TData,
    readonly options: NsqRecordOptions = {},
  ) {}
}

/** `client.emit('topic', new NsqRecordBuilder(data).setDelay(5000).build())` publishes with DPUB. */
export class NsqRecordBuilder<TData = unknown> {
  private options: NsqRecordOptions = {};

  constructor(private data?: TData) {}

  setData(data: TData): this {
    this.data = data;
    return this;
  }

  setOptions(options: NsqRecordOptions): this {
    this.options = { ...this.options, ...options };
    return this;
  }

  /** Delay in ms before nsqd makes the message visible (DPUB). */
  setDelay(delayMs: number): this {
    if (!Number.isInteger(delayMs) || delayMs < 0) {
      throw new NsqValidationError(
        `NsqRecordBuilder.setDelay: delay must be an integer >= 0 (ms), got ${delayMs}`,
      );
    }
    return this.setOptions({ delay: delayMs });
  }

  build(): NsqRecord<TData> {
    return new NsqRecord(this.data as TData, this.options);
  }
}
