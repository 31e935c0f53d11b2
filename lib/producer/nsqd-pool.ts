import { NsqConnection } from '../connection/connection.js';
import type { Identity } from '../connection/identify.js';
import { reconnectDelay, type ConnectionOptions } from '../connection/settings.js';
import {
  NsqClosedError,
  NsqConnectionError,
  NsqProtocolError,
  type NsqResponseError,
} from '../errors.js';

/** A command sent (or to send) and whoever waits for nsqd's OK. */
export interface Publish {
  frame: Buffer | Buffer[];
  settle(error?: Error): void;
  /** When it was written to the active connection. */
  sentAt?: number;
}

export interface PoolListener {
  connected(address: string, identity: Identity): void;
  disconnected(address: string, error: Error | undefined): void;
  /** A connect attempt failed; the address is not tried again for `retryInMs`. */
  connectFailed(address: string, error: Error, retryInMs: number): void;
  /** Every error frame a publish got, before its publisher hears of it. */
  refused(error: NsqResponseError): void;
  warning(error: Error): void;
}

/** One nsqd address of the pool. */
class Link {
  connection?: NsqConnection;
  /** Written and waiting for OK or an error, in order. */
  pending: Publish[] = [];
  failures = 0;
  retryAt = 0;
  lastError?: Error;
  /** Fires when the oldest publish written has waited publishTimeout for its answer. */
  ackTimer?: NodeJS.Timeout;

  constructor(readonly address: string) {}

  get ready(): boolean {
    return this.connection?.state === 'ready';
  }

  /** Skip this nsqd for a while: it failed to connect or refused at once. */
  failed(error: Error, maxRetryDelay: number): void {
    this.lastError = error;
    this.retryAt = Date.now() + reconnectDelay(this.failures++, maxRetryDelay);
  }
}

/**
 * The producer's nsqd: one active connection at a time, lazily opened; on failure the next
 * address is tried, and a failed one is skipped for a growing while. Matches nsqd's OK and
 * error answers to publishes in order.
 */
export class NsqdPool {
  private readonly links: Link[];
  private active?: Link;
  private acquiring?: Promise<Link>;
  /** Publishes waiting for a connection, in order. */
  private queue: Publish[] = [];
  /** Past close()'s wait for acknowledgements: nothing more is sent. */
  private shutDown = false;

  constructor(
    addresses: string[],
    private readonly connectionOptions: ConnectionOptions,
    private readonly maxRetryDelay: number,
    private readonly publishTimeout: number,
    private readonly listener: PoolListener,
    private readonly closedMessage: string,
  ) {
    this.links = addresses.map((a) => new Link(a));
  }

  /** The nsqd addresses and whether each is connected, for health checks. */
  connections(): { address: string; connected: boolean; lastError?: string }[] {
    return this.links.map((l) => ({
      address: l.address,
      connected: l.ready,
      lastError: l.lastError?.message,
    }));
  }

  /** Every publish not yet acknowledged, sent or queued. */
  outstanding(): Publish[] {
    return [...this.links.flatMap((l) => l.pending), ...this.queue];
  }

  async connect(): Promise<void> {
    await this.acquire();
  }

  send(publish: Publish): void {
    const link = this.active;
    if (link?.ready && this.queue.length === 0) {
      this.write(link, publish);
      return;
    }
    if (this.shutDown) {
      publish.settle(new NsqClosedError(this.closedMessage));
      return;
    }
    this.queue.push(publish);
    // One connect for the whole queue: the publishes queued behind the first wait for it.
    if (this.queue.length > 1) return;
    this.acquire().then(
      (l) => this.sendQueue(l),
      (err: Error) => this.failQueue(err),
    );
  }

  /** Writes what is queued on the active connection now rather than at its next tick. */
  flush(): void {
    this.active?.connection?.flush();
  }

  /** Stops sending and closes the connections. */
  async close(): Promise<void> {
    this.shutDown = true;
    await Promise.all(this.links.map((l) => l.connection?.close()));
  }

  private failQueue(error: Error): void {
    const queued = this.queue;
    this.queue = [];
    for (const p of queued) p.settle(error);
  }

  private sendQueue(link: Link): void {
    if (!link.ready) {
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
    for (const p of queued) this.write(link, p);
  }

  private write(link: Link, publish: Publish): void {
    publish.sentAt = Date.now();
    link.pending.push(publish);
    link.connection!.write(publish.frame);
    if (!link.ackTimer) this.watchAcks(link, this.publishTimeout);
  }

  /**
   * A connection whose oldest publish waits publishTimeout for its answer is hung (a frozen
   * nsqd, a hung disk): it is dropped, its publishes fail, and the nsqd is skipped for a while.
   */
  private watchAcks(link: Link, delay: number): void {
    link.ackTimer = setTimeout(() => {
      link.ackTimer = undefined;
      const oldest = link.pending[0];
      if (!oldest || !link.connection) return;
      const waited = Date.now() - oldest.sentAt!;
      if (waited < this.publishTimeout) return this.watchAcks(link, this.publishTimeout - waited);
      const error = new NsqConnectionError(
        `nsqd at ${link.address} did not acknowledge a publish within publishTimeout ` +
          `${this.publishTimeout} ms: dropping the connection`,
        link.address,
        { code: 'ETIMEDOUT' },
      );
      link.failed(error, this.maxRetryDelay);
      link.connection.destroy(error);
    }, delay);
    link.ackTimer.unref();
  }

  /** A connected link: the active one, else the first that connects, starting after the last. */
  private acquire(): Promise<Link> {
    if (this.active?.ready) return Promise.resolve(this.active);
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
      if (this.shutDown) break;
    }
    const first = this.links.find((l) => l.lastError)?.lastError;
    throw new NsqConnectionError(
      `No nsqd reachable to publish to. ${errors.join('; ')}`,
      undefined,
      {
        cause: first,
      },
    );
  }

  private async open(link: Link): Promise<void> {
    let connected = false;
    let acknowledged = false;
    const conn = new NsqConnection(link.address, this.connectionOptions, {
      onResponse: (text) => {
        if (text !== 'OK') {
          conn.destroy(
            new NsqProtocolError(
              `nsqd at ${link.address} answered ${JSON.stringify(text.slice(0, 100))} to a publish, not OK`,
            ),
          );
          return;
        }
        // Only a publish that went through proves the link works (see refused()).
        if (!acknowledged) link.failures = 0;
        acknowledged = true;
        link.pending.shift()?.settle();
      },
      onErrorFrame: (error, fatal) => this.refused(link, conn, error, fatal, acknowledged),
      onClose: (error) => this.lost(link, conn, connected, error),
      onNotice: (notice) => this.listener.warning(notice),
    });
    link.connection = conn;
    try {
      const identity = await conn.connect();
      connected = true;
      link.lastError = undefined;
      this.listener.connected(link.address, identity);
    } catch (err) {
      link.failed(err as Error, this.maxRetryDelay);
      this.listener.connectFailed(link.address, err as Error, link.retryAt - Date.now());
      throw err;
    }
  }

  private refused(
    link: Link,
    conn: NsqConnection,
    error: NsqResponseError,
    fatal: boolean,
    acknowledged: boolean,
  ): void {
    this.listener.refused(error);
    link.pending.shift()?.settle(error);
    if (!fatal || link.connection !== conn) return;
    // nsqd stops reading at a fatal error, so what was written after it never ran: send it again.
    link.connection = undefined;
    clearTimeout(link.ackTimer);
    link.ackTimer = undefined;
    const unprocessed = link.pending;
    link.pending = [];
    // lost() will not report it: the link has already let go of this connection.
    this.listener.disconnected(link.address, error);
    for (const p of unprocessed) this.send(p);
    // A connection refused at its first publish for a reason other than that publish (E_BAD_*),
    // e.g. TLS required or not authorized, is as good as a failed connect: back off instead of
    // reconnecting for every publish.
    if (!acknowledged && !error.code.startsWith('E_BAD_')) link.failed(error, this.maxRetryDelay);
  }

  private lost(link: Link, conn: NsqConnection, connected: boolean, error?: Error): void {
    if (link.connection !== conn) return;
    link.connection = undefined;
    clearTimeout(link.ackTimer);
    link.ackTimer = undefined;
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
    if (connected) this.listener.disconnected(link.address, error);
  }
}
