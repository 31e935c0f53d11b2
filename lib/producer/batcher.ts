import * as commands from '../protocol/commands.js';
import { isSizeRefusal, type MessageLimits } from './limits.js';
import type { Publish } from './nsqd-pool.js';

interface Batch {
  bodies: Buffer[];
  bytes: number;
  waiters: ((error?: Error) => void)[];
}

/**
 * Coalesces publishes to one topic made in the same tick into one MPUB (bounded by count and
 * bytes); each caller learns its own outcome. An MPUB nsqd refuses for its size limits is sent
 * again one message at a time, so that only the culprit fails.
 */
export class Batcher {
  private readonly batches = new Map<string, Batch>();
  private flushScheduled = false;

  constructor(
    /** Sends one command carrying `messages` messages. */
    private readonly send: (publish: Publish, messages: number) => void,
    private readonly limits: MessageLimits,
    private readonly maxBatchCount: number,
    private readonly maxBatchBytes: number,
    /** Told once per message when its outcome is known. */
    private readonly settled: (topic: string, bytes: number, error?: Error) => void,
    /** Writes what the batches sent queued, without waiting for another turn of the loop. */
    private readonly written: () => void = () => undefined,
  ) {}

  add(topic: string, body: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let batch = this.batches.get(topic);
      if (batch && batch.bytes + body.length + 4 > this.limits.bodyLimit(this.maxBatchBytes)) {
        this.flush(topic, batch);
        batch = undefined;
      }
      if (!batch) {
        batch = { bodies: [], bytes: 4, waiters: [] };
        this.batches.set(topic, batch);
      }
      batch.bodies.push(body);
      batch.bytes += body.length + 4;
      batch.waiters.push((error) => {
        this.settled(topic, body.length, error);
        if (error) reject(error);
        else resolve();
      });
      if (batch.bodies.length >= this.maxBatchCount) this.flush(topic, batch);
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushAll());
      }
    });
  }

  /** Sends every batch now. */
  flushAll(): void {
    this.flushScheduled = false;
    for (const [topic, batch] of this.batches) this.flush(topic, batch);
    this.written();
  }

  private flush(topic: string, batch: Batch): void {
    this.batches.delete(topic);
    const { bodies, waiters } = batch;
    const frame =
      bodies.length === 1 ? commands.pub(topic, bodies[0]) : commands.mpub(topic, bodies);
    this.send(
      {
        frame,
        settle: (error) => {
          if (bodies.length > 1 && isSizeRefusal(error)) this.resendOneByOne(topic, batch);
          else for (const w of waiters) w(error);
        },
      },
      bodies.length,
    );
  }

  private resendOneByOne(topic: string, { bodies, waiters }: Batch): void {
    bodies.forEach((body, k) => {
      try {
        this.limits.toBuffer(topic, body); // against the limit just learned
      } catch (err) {
        waiters[k](err as Error);
        return;
      }
      this.send({ frame: commands.pub(topic, body), settle: waiters[k] }, 1);
    });
  }
}
