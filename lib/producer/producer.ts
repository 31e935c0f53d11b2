import { EventEmitter } from 'node:events';
import { NsqConnection, type ConnectionOptions, type Identity } from '../connection/connection.js';
import {
  addressList,
  intInRange,
  option,
  reconnectDelay,
  resolveConnectionOptions,
  type NsqConnectionSettings,
} from '../connection/options.js';
import { commands } from '../protocol/index.js';
import {
  NsqConnectionError,
  NsqError,
  NsqResponseError,
  NsqValidationError,
} from '../protocol/errors.js';
import { assertTopicName } from '../protocol/names.js';

export interface ProducerOptions extends NsqConnectionSettings {
  /** nsqd TCP addresses ('host:port'); the first reachable one is used, the others on failure. */
  nsqd: string[];
  /** Coalesce publishes to one topic made in the same tick into MPUB. Default true. */
  batching?: boolean;
  /**
   * Most messages in one automatic MPUB. Default 200: a burst of emits goes out as several MPUBs
   * whose acknowledgements come back in turn, so callers refill the pipeline while nsqd works.
   */
  maxBatchCount?: number;
  /** Most bytes in one automatic MPUB. Default 512 KiB. */
  maxBatchBytes?: number;
  /** Largest message nsqd accepts (its --max-msg-size). Default 1 MiB. */
  maxMessageSize?: number;
  /** Largest MPUB body nsqd accepts (its --max-body-size). Default 5 MiB. */
  maxBodySize?: number;
  /** Longest DPUB delay nsqd accepts (its --max-req-timeout), ms. Default 3 600 000. */
  maxDeferDelay?: number;
  /**
   * Longest wait before trying a failed nsqd again, ms; publishes meanwhile fail at once
   * instead of waiting on a connect. Default 1 000.
   */
  maxReconnectDelay?: number;
}

export interface ProducerEvents {
  connected: [address: string, identity: Identity];
  disconnected: [address: string, error: Error | undefined];
  warning: [error: Error];
}

export type MessageBody = Buffer | Uint8Array | string;

const CLOSED =
  'close() was called on this publisher: create a new ClientNsq or Producer to publish again';

/** A command sent (or to send) and the callers waiting for nsqd's OK. */
interface Publish {
  frame: Buffer | Buffer[];
  settle(error?: Error): void;
}

interface Batch {
  bodies: Buffer[];
  bytes: number;
  waiters: ((error?: Error) => void)[];
}

/** One nsqd address of the pool. */
class Link {
  connection?: NsqConnection;
  /** Written and waiting for OK or an error, in order. */
  pending: Publish[] = [];
  failures = 0;
  retryAt = 0;
  lastError?: Error;

  constructor(readonly address: string) {}
}

/**
 * Publishes to nsqd: lazy connect, failover over several nsqd, reconnect after a drop,
 * PUB/MPUB/DPUB, and concurrent publishes to a topic coalesced into one MPUB.
 */
export class Producer extends EventEmitter<ProducerEvents> {
  private readonly connectionOptions: ConnectionOptions;
  private readonly links: Link[];
  private readonly batching: boolean;
  private readonly maxBatchCount: number;
  private readonly maxBatchBytes: number;
  readonly maxMessageSize: number;
  readonly maxBodySize: number;
  private readonly maxDeferDelay: number;
  private readonly maxReconnectDelay: number;
  private readonly owner = 'Producer';

  private active?: Link;
  private acquiring?: Promise<Link>;
  /** Commands waiting for a connection, in order. */
  private queue: Publish[] = [];
  private batches = new Map<string, Batch>();
  /**
   * nsqd's own --max-msg-size / --max-body-size, learned from its refusals when lower than ours:
   * a refused publish costs the connection (and can cost the acknowledgements of publishes in
   * flight beside it), so the next one that size is refused here instead.
   */
  private readonly nsqdLimit = { message: Infinity, body: Infinity };
  private flushScheduled = false;
  /** close() was called: no new publishes. */
  private closed = false;
  private closing?: Promise<void>;
  /** close() is past waiting for acknowledgements: nothing more is sent. */
  private shutDown = false;

  constructor(options: ProducerOptions) {
    super();
    const owner = this.owner;
    if (!options || typeof options !== 'object') {
      throw new NsqValidationError(`${owner}: options { nsqd: ['host:port'] } are required`);
    }
    const nsqd = addressList(owner, 'nsqd', options.nsqd);
    if (nsqd.length === 0) {
      throw new NsqValidationError(
        `${owner}: option nsqd must list at least one nsqd TCP address ('host:port')`,
      );
    }
    this.connectionOptions = resolveConnectionOptions(owner, options);
    this.links = nsqd.map((a) => new Link(a));
    this.batching = option(
      owner,
      'batching',
      options.batching,
      true,
      (v) => typeof v === 'boolean',
      'a boolean',
    );
    this.maxBatchCount = option(
      owner,
      'maxBatchCount',
      options.maxBatchCount,
      200,
      intInRange(1),
      'an integer >= 1',
    );
    this.maxMessageSize = option(
      owner,
      'maxMessageSize',
      options.maxMessageSize,
      1024 * 1024,
      intInRange(1),
      'a positive integer (bytes)',
    );
    this.maxBodySize = option(
      owner,
      'maxBodySize',
      options.maxBodySize,
      5 * 1024 * 1024,
      intInRange(1),
      'a positive integer (bytes)',
    );
    this.maxBatchBytes = option(
      owner,
      'maxBatchBytes',
      options.maxBatchBytes,
      Math.min(512 * 1024, this.maxBodySize),
      intInRange(1, this.maxBodySize),
      `an integer 1..maxBodySize (${this.maxBodySize})`,
    );
    this.maxDeferDelay = option(
      owner,
      'maxDeferDelay',
      options.maxDeferDelay,
      3_600_000,
      intInRange(0),
      'an integer >= 0 (ms)',
    );
    this.maxReconnectDelay = option(
      owner,
      'maxReconnectDelay',
      options.maxReconnectDelay,
      1000,
      intInRange(1),
      'a positive integer (ms)',
    );
  }

  /** The nsqd addresses and whether each is connected, for health checks. */
  connections(): { address: string; connected: boolean; lastError?: string }[] {
    return this.links.map((l) => ({
      address: l.address,
      connected: !!l.connection?.isOpen,
      lastError: l.lastError?.message,
    }));
  }

  /** Connects now instead of on the first publish. */
  async connect(): Promise<void> {
    this.assertOpen();
    await this.acquire();
  }

  /** PUB (coalesced with other publishes to `topic` in the same tick into one MPUB). */
  publish(topic: string, body: MessageBody): Promise<void> {
    let buf: Buffer;
    try {
      this.assertOpen();
      assertTopicName(topic);
      buf = this.checkBody(topic, body);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.batching) return this.send(commands.pub(topic, buf));
    return new Promise<void>((resolve, reject) => {
      let batch = this.batches.get(topic);
      if (
        batch &&
        batch.bytes + buf.length + 4 > Math.min(this.maxBatchBytes, this.nsqdLimit.body)
      ) {
        this.flushBatch(topic, batch);
        batch = undefined;
      }
      if (!batch) {
        batch = { bodies: [], bytes: 4, waiters: [] };
        this.batches.set(topic, batch);
      }
      batch.bodies.push(buf);
      batch.bytes += buf.length + 4;
      batch.waiters.push((error) => (error ? reject(error) : resolve()));
      if (batch.bodies.length >= this.maxBatchCount) this.flushBatch(topic, batch);
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushBatches());
      }
    });
  }

  /** MPUB: several messages in one command; all are published or none. */
  publishMany(topic: string, bodies: readonly MessageBody[]): Promise<void> {
    try {
      this.assertOpen();
      assertTopicName(topic);
      if (!Array.isArray(bodies) || bodies.length === 0) {
        throw new NsqValidationError(
          `publishMany to "${topic}": give a non-empty array of messages`,
        );
      }
      const bufs = bodies.map((b) => this.checkBody(topic, b));
      const size = commands.mpubBodySize(bufs);
      if (size > this.maxBodySize) {
        throw new NsqValidationError(
          `MPUB to "${topic}" is ${size} bytes, over maxBodySize ${this.maxBodySize} (nsqd --max-body-size); ` +
            'split it or raise both limits',
        );
      }
      if (size > this.nsqdLimit.body) {
        throw new NsqValidationError(
          `MPUB to "${topic}" is ${size} bytes, over nsqd's --max-body-size ${this.nsqdLimit.body} ` +
            '(learned from its refusal of a larger one); split it',
        );
      }
      return this.send(commands.mpub(topic, bufs));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** DPUB: the message becomes visible to consumers after `delayMs`. */
  publishDeferred(topic: string, delayMs: number, body: MessageBody): Promise<void> {
    try {
      this.assertOpen();
      assertTopicName(topic);
      if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > this.maxDeferDelay) {
        throw new NsqValidationError(
          `DPUB to "${topic}": delay must be an integer 0..${this.maxDeferDelay} ms (nsqd --max-req-timeout), got ${delayMs}`,
        );
      }
      return this.send(commands.dpub(topic, delayMs, this.checkBody(topic, body)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new NsqError(CLOSED);
  }

  private checkBody(topic: string, body: MessageBody): Buffer {
    let buf: Buffer;
    if (Buffer.isBuffer(body)) buf = body;
    else if (typeof body === 'string') buf = Buffer.from(body);
    else if (body instanceof Uint8Array)
      buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    else
      throw new NsqValidationError(
        `Message to "${topic}" must be a Buffer, Uint8Array or string, got ${typeof body}`,
      );
    if (buf.length === 0) {
      throw new NsqValidationError(`Message to "${topic}" is empty: nsqd rejects empty messages`);
    }
    if (buf.length > this.maxMessageSize) {
      throw new NsqValidationError(
        `Message to "${topic}" is ${buf.length} bytes, over maxMessageSize ${this.maxMessageSize} ` +
          '(nsqd --max-msg-size); nothing was sent',
      );
    }
    if (buf.length > this.nsqdLimit.message) {
      throw new NsqValidationError(
        `Message to "${topic}" is ${buf.length} bytes, over nsqd's --max-msg-size ${this.nsqdLimit.message} ` +
          '(learned from its refusal of a larger one; set maxMessageSize to match); nothing was sent',
      );
    }
    return buf;
  }

  private flushBatches(): void {
    this.flushScheduled = false;
    for (const [topic, batch] of this.batches) this.flushBatch(topic, batch);
  }

  private flushBatch(topic: string, batch: Batch): void {
    this.batches.delete(topic);
    const { bodies, waiters } = batch;
    const frame =
      bodies.length === 1 ? commands.pub(topic, bodies[0]) : commands.mpub(topic, bodies);
    this.dispatch({
      frame,
      settle: (error) => {
        // nsqd refuses a whole MPUB for one message over its own limits (--max-msg-size or
        // --max-body-size below ours): send each alone so that only the culprit fails.
        if (
          bodies.length > 1 &&
          error instanceof NsqResponseError &&
          (error.code === 'E_BAD_MESSAGE' || error.code === 'E_BAD_BODY')
        ) {
          bodies.forEach((body, k) => {
            try {
              this.checkBody(topic, body); // against the limit just learned
            } catch (err) {
              waiters[k](err as Error);
              return;
            }
            this.dispatch({ frame: commands.pub(topic, body), settle: waiters[k] });
          });
          return;
        }
        for (const w of waiters) w(error);
      },
    });
  }

  private send(frame: Buffer | Buffer[]): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.dispatch({ frame, settle: (error) => (error ? reject(error) : resolve()) }),
    );
  }

  private dispatch(publish: Publish): void {
    const link = this.active;
    if (link?.connection?.isOpen && this.queue.length === 0) {
      link.pending.push(publish);
      link.connection.write(publish.frame);
      return;
    }
    if (this.shutDown) {
      publish.settle(new NsqError(CLOSED));
      return;
    }
    this.queue.push(publish);
    // One connect for the whole queue: the publishes queued behind the first wait for it.
    if (this.queue.length > 1) return;
    this.acquire().then(
      (l) => this.drainQueue(l),
      (err: Error) => this.failQueue(err),
    );
  }

  private failQueue(error: Error): void {
    const queued = this.queue;
    this.queue = [];
    for (const p of queued) p.settle(error);
  }

  private drainQueue(link: Link): void {
    const conn = link.connection;
    if (!conn?.isOpen) {
      this.failQueue(
        new NsqConnectionError(
          `Connection to nsqd at ${link.address} closed at once`,
          link.address,
        ),
      );
      return;
    }
    const queued = this.queue;
    this.queue = [];
    for (const p of queued) {
      link.pending.push(p);
      conn.write(p.frame);
    }
  }

  /** A connected link: the active one, else the first that connects, starting after the last. */
  private acquire(): Promise<Link> {
    if (this.active?.connection?.isOpen) return Promise.resolve(this.active);
    this.acquiring ??= this.tryLinks().finally(() => (this.acquiring = undefined));
    return this.acquiring;
  }

  private async tryLinks(): Promise<Link> {
    const start = this.active ? this.links.indexOf(this.active) : 0;
    const errors: string[] = [];
    const now = Date.now();
    for (let k = 0; k < this.links.length; k++) {
      const link = this.links[(start + k) % this.links.length];
      if (link.retryAt > now) {
        errors.push(
          `${link.address}: ${link.lastError?.message} (next try in ${link.retryAt - now} ms)`,
        );
        continue;
      }
      try {
        await this.open(link);
        this.active = link;
        return link;
      } catch (err) {
        errors.push(`${link.address}: ${(err as Error).message}`);
      }
      if (this.closed) break;
    }
    throw new NsqConnectionError(`No nsqd reachable to publish to. ${errors.join('; ')}`);
  }

  private async open(link: Link): Promise<void> {
    let connected = false;
    let acknowledged = false;
    const conn = new NsqConnection(link.address, this.connectionOptions, {
      onResponse: (text) => {
        if (text !== 'OK') return;
        // Only a publish that went through proves the link works (see onErrorFrame).
        if (!acknowledged) link.failures = 0;
        acknowledged = true;
        link.pending.shift()?.settle();
      },
      onErrorFrame: (error, fatal) => this.onErrorFrame(link, conn, error, fatal, acknowledged),
      onClose: (error) => this.onClose(link, conn, connected, error),
    });
    link.connection = conn;
    try {
      const identity = await conn.connect();
      connected = true;
      link.lastError = undefined;
      this.emit('connected', link.address, identity);
    } catch (err) {
      link.lastError = err as Error;
      link.retryAt = Date.now() + reconnectDelay(link.failures++, this.maxReconnectDelay);
      throw err;
    }
  }

  private onErrorFrame(
    link: Link,
    conn: NsqConnection,
    error: NsqResponseError,
    fatal: boolean,
    acknowledged: boolean,
  ): void {
    // "PUB message too big 70000 > 65536", "MPUB body too big ...": nsqd's limit is the second.
    const tooBig = /(message|body) too big \d+ > (\d+)/.exec(error.message);
    if (tooBig) {
      const kind = tooBig[1] === 'body' ? 'body' : 'message';
      this.nsqdLimit[kind] = Math.min(this.nsqdLimit[kind], Number(tooBig[2]));
    }
    link.pending.shift()?.settle(error);
    if (!fatal || link.connection !== conn) return;
    // nsqd stops reading at a fatal error, so what was written after it never ran: send it again.
    link.connection = undefined;
    const unprocessed = link.pending;
    link.pending = [];
    // onClose will not report it: the link has already let go of this connection.
    this.emit('disconnected', link.address, error);
    for (const p of unprocessed) this.dispatch(p);
    // A connection refused at its first publish for a reason other than that publish (E_BAD_*),
    // e.g. TLS required or not authorized, is as good as a failed connect: back off instead of
    // reconnecting for every publish.
    if (!acknowledged && !error.code.startsWith('E_BAD_')) {
      link.lastError = error;
      link.retryAt = Date.now() + reconnectDelay(link.failures++, this.maxReconnectDelay);
    }
  }

  private onClose(
    link: Link,
    conn: NsqConnection,
    connected: boolean,
    error: Error | undefined,
  ): void {
    if (link.connection !== conn) return;
    link.connection = undefined;
    const lost = link.pending;
    link.pending = [];
    if (lost.length) {
      const err = new NsqConnectionError(
        `Connection to nsqd at ${link.address} was lost before it acknowledged ` +
          `(the message may or may not have been published): ${error?.message ?? 'closed'}`,
        link.address,
        { cause: error },
      );
      for (const p of lost) p.settle(err);
    }
    // A failed connect attempt is not a disconnect: its error goes to the publishes waiting.
    if (connected) this.emit('disconnected', link.address, error);
  }

  /** Publishes what is batched, waits for every acknowledgement (bounded), then disconnects. */
  close(timeoutMs = 10_000): Promise<void> {
    this.closing ??= this.drainAndDisconnect(timeoutMs);
    return this.closing;
  }

  private async drainAndDisconnect(timeoutMs: number): Promise<void> {
    this.flushBatches();
    const outstanding = [...this.links.flatMap((l) => l.pending), ...this.queue].map(
      (p) =>
        new Promise<void>((resolve) => {
          const settle = p.settle;
          p.settle = (e) => {
            settle(e);
            resolve();
          };
        }),
    );
    this.closed = true;
    await Promise.race([
      Promise.all(outstanding),
      new Promise((r) => setTimeout(r, timeoutMs).unref()),
    ]);
    this.shutDown = true;
    await Promise.all(this.links.map((l) => l.connection?.close()));
  }
}
