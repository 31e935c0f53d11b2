import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsOptions } from 'node:tls';
import { constants as zlibConstants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import {
  commands,
  FrameDecoder,
  FrameType,
  MAGIC_V2,
  NsqConnectionError,
  NsqResponseError,
  type IdentifyBody,
} from '../protocol/index.js';
import { SnappyFrameDecoder, SnappyFrameEncoder } from '../protocol/snappy-framing.js';
import { loadSnappy } from './snappy.js';

/** What one connection negotiates with nsqd (IDENTIFY and AUTH). */
export interface ConnectionOptions {
  clientId: string;
  hostname: string;
  userAgent: string;
  /** ms; nsqd sends a heartbeat this often and the connection is dead after two missed. */
  heartbeatInterval: number;
  /** ms; nsqd's server-side timeout for messages delivered to this connection (0: nsqd's). */
  msgTimeout: number;
  outputBufferSize?: number;
  outputBufferTimeout?: number;
  sampleRate: number;
  /** true, or Node TLS options (ca, cert, key, rejectUnauthorized, servername, ...). */
  tls: boolean | TlsOptions;
  deflate: boolean;
  deflateLevel: number;
  snappy: boolean;
  authSecret?: string;
  /** ms allowed for TCP connect plus the whole handshake. */
  connectTimeout: number;
}

/** nsqd's answer to IDENTIFY (feature negotiation on). */
export interface Identity {
  max_rdy_count: number;
  version: string;
  max_msg_timeout: number;
  msg_timeout: number;
  tls_v1: boolean;
  deflate: boolean;
  deflate_level: number;
  snappy: boolean;
  auth_required: boolean;
  sample_rate: number;
  output_buffer_size: number;
  output_buffer_timeout: number;
}

export interface ConnectionHandlers {
  /** A message frame (timestamp, attempts, id, body). */
  onMessage?(data: Buffer): void;
  /** A response frame other than a heartbeat, after the handshake. */
  onResponse?(text: string): void;
  /** An error frame. When `fatal`, nsqd is closing the connection. */
  onErrorFrame?(error: NsqResponseError, fatal: boolean): void;
  /** Called once when the connection is gone; `error` is why, or undefined after close(). */
  onClose(error: Error | undefined): void;
}

const HEARTBEAT = '_heartbeat_';
const NON_FATAL = new Set(['E_FIN_FAILED', 'E_REQ_FAILED', 'E_TOUCH_FAILED']);
const EMPTY: Buffer = Buffer.alloc(0);

/**
 * A stream codec negotiated after IDENTIFY: decode feeds onDecoded, encode writes the socket;
 * written() resolves once everything encoded so far has been handed to the socket.
 */
type Codec = { decode(chunk: Buffer): void; encode(b: Buffer): void; written(): Promise<void> };

export function parseErrorFrame(data: Buffer, address?: string): NsqResponseError {
  const text = data.toString();
  const space = text.indexOf(' ');
  const code = space < 0 ? text : text.slice(0, space);
  return new NsqResponseError(code, space < 0 ? text : text.slice(space + 1), address);
}

export function isFatalError(code: string): boolean {
  return !NON_FATAL.has(code);
}

/** Splits 'host:port' (or '[v6]:port'); throws a clear error for anything else. */
export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]\s]+)\]|([^:/\s[\]]+)):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new NsqConnectionError(
      `Invalid nsqd address ${JSON.stringify(address)}: expected 'host:port' ('[v6]:port'), e.g. '127.0.0.1:4150'`,
      address,
    );
  }
  return { host: match[1] ?? match[2], port };
}

/**
 * One TCP connection to one nsqd: handshake (magic, IDENTIFY, TLS, compression, AUTH),
 * heartbeats, a read timeout, error frames and command writes coalesced per tick.
 */
export class NsqConnection {
  identity?: Identity;
  private socket?: Socket;
  private codec?: Codec;
  private readonly decoder: FrameDecoder;
  /** Bytes of the handshake not yet consumed; undefined once frames go to the decoder. */
  private handshake?: { buffer: Buffer; waiter?: (frame: [number, Buffer]) => void } = {
    buffer: EMPTY,
  };
  private outbox: (string | Buffer)[] = [];
  private flushScheduled = false;
  private lastRead = Date.now();
  private heartbeatTimer?: NodeJS.Timeout;
  private closed = false;
  private closing = false;
  /** The socket was ended: nothing more can be written. */
  private ended = false;
  private closePromise?: Promise<void>;
  private closeWaiters: (() => void)[] = [];

  constructor(
    readonly address: string,
    private readonly options: ConnectionOptions,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.decoder = new FrameDecoder((type, data) => this.onFrame(type, data));
  }

  get isOpen(): boolean {
    return !this.closed && !this.closing && this.handshake === undefined;
  }

  /** Connects and negotiates; rejects with a clear error naming the address and the cause. */
  async connect(): Promise<Identity> {
    const { host, port } = parseAddress(this.address);
    const timer = setTimeout(
      () =>
        this.destroy(
          new NsqConnectionError(
            `Timed out after ${this.options.connectTimeout} ms connecting to nsqd at ${this.address}`,
            this.address,
          ),
        ),
      this.options.connectTimeout,
    );
    try {
      return await new Promise<Identity>((resolve, reject) => {
        this.failConnect = reject;
        this.negotiate(host, port).then(resolve, reject);
      });
    } catch (err) {
      this.destroy(err as Error);
      throw err;
    } finally {
      this.failConnect = undefined;
      clearTimeout(timer);
    }
  }

  /** Rejects a connect() under way when the connection dies mid-handshake. */
  private failConnect?: (error: Error) => void;

  private async negotiate(host: string, port: number): Promise<Identity> {
    const socket = netConnect({ host, port });
    socket.setNoDelay(true);
    this.attach(socket);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const o = this.options;
    const body: IdentifyBody = {
      client_id: o.clientId,
      hostname: o.hostname,
      user_agent: o.userAgent,
      feature_negotiation: true,
      heartbeat_interval: o.heartbeatInterval,
      sample_rate: o.sampleRate,
      tls_v1: o.tls !== false,
      deflate: o.deflate,
      deflate_level: o.deflateLevel,
      snappy: o.snappy,
    };
    if (o.msgTimeout) body.msg_timeout = o.msgTimeout;
    if (o.outputBufferSize !== undefined) body.output_buffer_size = o.outputBufferSize;
    if (o.outputBufferTimeout !== undefined) body.output_buffer_timeout = o.outputBufferTimeout;
    this.writeNow([MAGIC_V2, ...commands.identify(body)]);

    const answer = await this.handshakeFrame('IDENTIFY');
    const identity: Identity = answer === 'OK' ? legacyIdentity() : JSON.parse(answer);
    this.identity = identity;

    if (o.tls !== false && !identity.tls_v1) {
      throw new NsqConnectionError(
        `TLS was asked for but nsqd at ${this.address} does not offer it ` +
          '(start nsqd with --tls-cert and --tls-key, or set tls: false)',
        this.address,
      );
    }
    if (identity.tls_v1) {
      await this.upgradeTls(host, o.tls === true ? {} : (o.tls as TlsOptions));
      await this.expectOk('TLS');
    }
    if (identity.deflate) {
      this.useDeflate(identity.deflate_level || o.deflateLevel);
      await this.expectOk('deflate');
    } else if (identity.snappy) {
      await this.useSnappy();
      await this.expectOk('snappy');
    }
    if (identity.auth_required) {
      if (!o.authSecret) {
        throw new NsqConnectionError(
          `nsqd at ${this.address} requires AUTH: set the authSecret option`,
          this.address,
        );
      }
      this.writeNow(commands.auth(o.authSecret));
      await this.handshakeFrame('AUTH');
    }
    // An authSecret without auth_required is not sent: nsqd would answer a fatal E_AUTH_DISABLED.

    const rest = this.handshake!.buffer;
    this.handshake = undefined;
    this.startHeartbeatWatch();
    if (rest.length) this.decoder.push(rest);
    return identity;
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) =>
      this.destroy(
        new NsqConnectionError(
          `Connection to nsqd at ${this.address} failed: ${err.message}`,
          this.address,
          {
            cause: err,
          },
        ),
      ),
    );
    socket.on('close', () =>
      this.destroy(
        this.closing
          ? undefined
          : new NsqConnectionError(`nsqd at ${this.address} closed the connection`, this.address),
      ),
    );
  }

  private onData(chunk: Buffer): void {
    this.lastRead = Date.now();
    if (!this.codec) return this.onDecoded(chunk);
    // A corrupt compressed stream must end this connection, not throw out of a socket event.
    try {
      this.codec.decode(chunk);
    } catch (err) {
      this.undecodable(err as Error);
    }
  }

  private onDecoded(chunk: Buffer): void {
    try {
      if (this.handshake) {
        this.handshake.buffer = this.handshake.buffer.length
          ? Buffer.concat([this.handshake.buffer, chunk])
          : chunk;
        this.deliverHandshakeFrame();
      } else {
        this.decoder.push(chunk);
      }
    } catch (err) {
      this.undecodable(err as Error);
    }
  }

  private undecodable(err: Error): void {
    this.destroy(
      new NsqConnectionError(
        `Undecodable data from nsqd at ${this.address}: ${err.message}`,
        this.address,
        { cause: err },
      ),
    );
  }

  private deliverHandshakeFrame(): void {
    const hs = this.handshake!;
    if (!hs.waiter || hs.buffer.length < 8) return;
    const size = hs.buffer.readInt32BE(0);
    if (hs.buffer.length < size + 4) return;
    const frame: [number, Buffer] = [hs.buffer.readInt32BE(4), hs.buffer.subarray(8, size + 4)];
    hs.buffer = hs.buffer.subarray(size + 4);
    const waiter = hs.waiter;
    hs.waiter = undefined;
    waiter(frame);
  }

  /** The next handshake frame as text; an error frame becomes a thrown NsqResponseError. */
  private async handshakeFrame(step: string): Promise<string> {
    const [type, data] = await new Promise<[number, Buffer]>((resolve) => {
      this.handshake!.waiter = resolve;
      this.deliverHandshakeFrame();
    });
    if (type === FrameType.Error) {
      const err = parseErrorFrame(data, this.address);
      err.message = `${step} failed: ${err.message}`;
      throw err;
    }
    return data.toString();
  }

  private async expectOk(step: string): Promise<void> {
    const answer = await this.handshakeFrame(step);
    if (answer !== 'OK') {
      throw new NsqConnectionError(
        `Expected OK after ${step} from ${this.address}, got ${answer}`,
        this.address,
      );
    }
  }

  private async upgradeTls(host: string, tlsOptions: TlsOptions): Promise<void> {
    const raw = this.socket!;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    raw.on('error', () => {}); // reported through the TLS socket
    const secure = tlsConnect({
      servername: isIp(host) ? undefined : host,
      ...tlsOptions,
      socket: raw,
    });
    // Registered before attach() so that a failed handshake (e.g. an untrusted certificate) says TLS.
    const handshakeFailed = (err: Error) =>
      this.destroy(
        new NsqConnectionError(
          `TLS handshake with nsqd at ${this.address} failed: ${err.message} ` +
            '(check the tls option: ca, servername, rejectUnauthorized)',
          this.address,
          { cause: err },
        ),
      );
    secure.once('error', handshakeFailed);
    this.attach(secure);
    await new Promise<void>((resolve) => secure.once('secureConnect', resolve));
    secure.off('error', handshakeFailed);
  }

  private useDeflate(level: number): void {
    const inflate = createInflateRaw();
    const deflate = createDeflateRaw({ level });
    inflate.on('data', (b: Buffer) => this.onDecoded(b));
    inflate.on('error', (err) => this.undecodable(err));
    deflate.on('data', (b: Buffer) => this.socket?.write(b));
    deflate.on('error', (err) => this.destroy(err));
    let written = Promise.resolve();
    this.installCodec({
      decode: (chunk) => inflate.write(chunk),
      encode: (b) => {
        deflate.write(b);
        // zlib emits its output (and so writes the socket) before it calls this back.
        written = new Promise((resolve) => deflate.flush(zlibConstants.Z_SYNC_FLUSH, resolve));
      },
      written: () => written,
    });
  }

  private async useSnappy(): Promise<void> {
    const snappy = await loadSnappy();
    const decoder = new SnappyFrameDecoder(snappy);
    const encoder = new SnappyFrameEncoder(snappy);
    this.installCodec({
      decode: (chunk) => {
        for (const b of decoder.decode(chunk)) this.onDecoded(b);
      },
      encode: (b) => this.socket?.write(encoder.encode(b)),
      written: () => Promise.resolve(),
    });
  }

  /** Switches the stream codec; bytes already read past the switch point go through it. */
  private installCodec(codec: Codec): void {
    const already = this.handshake!.buffer;
    this.handshake!.buffer = EMPTY;
    this.codec = codec;
    if (already.length) codec.decode(already);
  }

  private onFrame(type: FrameType, data: Buffer): void {
    // Frames decoded after a fatal error or a destroy (zlib is async) belong to no one.
    if (this.closed) return;
    if (type === FrameType.Message) {
      this.handlers.onMessage?.(data);
    } else if (type === FrameType.Response) {
      if (data.length === HEARTBEAT.length && data.toString() === HEARTBEAT) {
        this.write(commands.NOP);
      } else {
        this.handlers.onResponse?.(data.toString());
      }
    } else if (type === FrameType.Error) {
      const err = parseErrorFrame(data, this.address);
      const fatal = isFatalError(err.code);
      this.handlers.onErrorFrame?.(err, fatal);
      if (fatal) this.destroy(err);
    } else {
      this.destroy(
        new NsqConnectionError(`Unknown frame type ${type} from ${this.address}`, this.address),
      );
    }
  }

  /**
   * nsqd sends a heartbeat every interval, so 2 intervals without a byte mean it is gone. The
   * timer is re-armed for the moment the silence would reach that, so it is caught then, not
   * up to a polling period later.
   */
  private startHeartbeatWatch(): void {
    const limit = 2 * this.options.heartbeatInterval;
    if (limit <= 0) return;
    const check = () => {
      if (this.closed) return;
      const silent = Date.now() - this.lastRead;
      if (silent < limit) {
        this.heartbeatTimer = setTimeout(check, limit - silent);
        this.heartbeatTimer.unref();
        return;
      }
      this.destroy(
        new NsqConnectionError(
          `nsqd at ${this.address} sent nothing for ${silent} ms (2 heartbeats of ${this.options.heartbeatInterval} ms missed)`,
          this.address,
        ),
      );
    };
    this.heartbeatTimer = setTimeout(check, limit);
    this.heartbeatTimer.unref();
  }

  /** Queues a command; everything queued in one tick goes out in one write. */
  write(command: string | Buffer | readonly Buffer[]): void {
    if (this.closed || this.ended) return;
    if (typeof command === 'string' || Buffer.isBuffer(command)) this.outbox.push(command);
    else this.outbox.push(...command);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes what is queued now. */
  flush(): void {
    this.flushScheduled = false;
    const parts = this.outbox;
    if (!parts.length || this.closed) return;
    this.outbox = [];
    let out: Buffer;
    if (parts.length === 1) {
      out = typeof parts[0] === 'string' ? Buffer.from(parts[0], 'latin1') : parts[0];
    } else if (parts.every((p) => typeof p === 'string')) {
      out = Buffer.from(parts.join(''), 'latin1');
    } else {
      out = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
    }
    this.writeNow([out]);
  }

  private writeNow(parts: readonly Buffer[]): void {
    for (const part of parts) {
      if (this.codec) this.codec.encode(part);
      else this.socket?.write(part);
    }
  }

  /** Flushes pending commands, then ends the socket gracefully. */
  close(): Promise<void> {
    this.closePromise ??= this.endGracefully();
    return this.closePromise;
  }

  private async endGracefully(): Promise<void> {
    if (this.closed) return;
    const closedNow = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    const timer = setTimeout(() => this.destroy(), 5000);
    this.closing = true;
    this.flush();
    // Ending the socket before a compressed FIN reached it would lose the FIN.
    await Promise.race([this.codec?.written(), closedNow]);
    this.flush(); // what was queued meanwhile
    this.ended = true;
    this.socket?.end();
    await closedNow;
    clearTimeout(timer);
  }

  /** Tears the connection down at once; `error` says why (none for a requested close). */
  destroy(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.heartbeatTimer);
    this.socket?.destroy();
    this.outbox = [];
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of waiters) w();
    this.failConnect?.(
      error ??
        new NsqConnectionError(
          `Connection to ${this.address} closed during handshake`,
          this.address,
        ),
    );
    this.handlers.onClose(error);
  }
}

const isIp = (host: string) => /^[\d.]+$/.test(host) || host.includes(':');

function legacyIdentity(): Identity {
  return {
    max_rdy_count: 2500,
    version: 'unknown',
    max_msg_timeout: 0,
    msg_timeout: 60_000,
    tls_v1: false,
    deflate: false,
    deflate_level: 0,
    snappy: false,
    auth_required: false,
    sample_rate: 0,
    output_buffer_size: 0,
    output_buffer_timeout: 0,
  };
}
