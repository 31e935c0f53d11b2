import { connect as netConnect, type Socket } from 'node:net';
import { NsqConnectionError, NsqProtocolError, type NsqResponseError } from '../errors.js';
import * as commands from '../protocol/commands.js';
import { isFatalError, parseErrorFrame } from '../protocol/error-frame.js';
import { FrameDecoder, FrameType, type Frame } from '../protocol/frames.js';
import { parseAddress } from './address.js';
import { SilenceWatch } from './heartbeat.js';
import { httpPortError, isHttpAnswer, negotiate, refusedOutputBufferTimeout } from './handshake.js';
import type { Identity } from './identify.js';
import { Outbox } from './outbox.js';
import type { ConnectionOptions } from './settings.js';
import type { StreamCodec } from './stream-codecs.js';
import { startTls } from './tls.js';

/**
 * connecting: TCP connect under way. negotiating: magic, IDENTIFY, TLS, compression, AUTH.
 * ready: commands and frames flow. closing: flushing, then ending the socket. closed: gone.
 */
export type ConnectionState = 'connecting' | 'negotiating' | 'ready' | 'closing' | 'closed';

export interface ConnectionHandlers {
  /** A message frame (timestamp, attempts, id, body). */
  onMessage?(data: Buffer): void;
  /** A response frame other than a heartbeat, after the handshake. */
  onResponse?(text: string): void;
  /** An error frame. When `fatal`, nsqd is closing the connection. */
  onErrorFrame?(error: NsqResponseError, fatal: boolean): void;
  /** Called once when the connection is gone; `error` is why, or undefined after close(). */
  onClose(error: Error | undefined): void;
  /** Something the user should know that did not stop the connection. */
  onNotice?(notice: Error): void;
  /** The commands queued so far were written to the socket. */
  onWritten?(): void;
}

/** A message frame's bytes besides the body: size, type, timestamp, attempts, id. */
const MESSAGE_OVERHEAD = 4 + 4 + 8 + 2 + 16;
const MIN_FRAME_LIMIT = 64 * 1024;

const HEARTBEAT = '_heartbeat_';
/** How long close() waits for the socket to end before destroying it. */
const CLOSE_TIMEOUT = 5000;

/**
 * One TCP connection to one nsqd: handshake (magic, IDENTIFY, TLS, compression, AUTH),
 * heartbeats, a read timeout, error frames and command writes coalesced per tick.
 */
export class NsqConnection {
  private currentState: ConnectionState = 'connecting';
  /** Resolves once the connection is closed, for whatever reason. */
  readonly closed: Promise<void>;
  private markClosed!: () => void;
  private socket?: Socket;
  private codec?: StreamCodec;
  /** Handshake mode until negotiation ends, then streaming to onFrame. */
  private decoder: FrameDecoder;
  /** Wakes the handshake when bytes arrive. */
  private handshakeWaiter?: () => void;
  /** Rejects a connect() under way when the connection dies mid-handshake. */
  private failConnect?: (error: Error) => void;
  private readonly outbox = new Outbox((data) => {
    this.writeNow([data]);
    this.handlers.onWritten?.();
  });
  private readonly silence: SilenceWatch;

  constructor(
    readonly address: string,
    private readonly options: ConnectionOptions,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    this.decoder = this.newDecoder();
    this.silence = new SilenceWatch(2 * options.heartbeatInterval, (silent) =>
      this.destroy(
        new NsqConnectionError(
          `nsqd at ${address} sent nothing for ${silent} ms (2 heartbeats of ${options.heartbeatInterval} ms missed)`,
          address,
          { code: 'ETIMEDOUT' },
        ),
      ),
    );
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Connects and negotiates; rejects with a clear error naming the address and the cause. */
  async connect(): Promise<Identity> {
    try {
      return await this.connectOnce(this.options);
    } catch (err) {
      // An nsqd whose --min-output-buffer-timeout is above ours refuses IDENTIFY: connect again
      // and let nsqd use its own timeout.
      if (this.state === 'closed' || !refusedOutputBufferTimeout(err)) throw err;
      this.resetSocket();
      const fallback = { ...this.options, outputBufferTimeout: 0 };
      const identity = await this.connectOnce(fallback);
      this.handlers.onNotice?.(
        new NsqConnectionError(
          `nsqd at ${this.address} refused outputBufferTimeout ${this.options.outputBufferTimeout} ms ` +
            `(its --min-output-buffer-timeout is higher); using nsqd's ${identity.output_buffer_timeout} ms`,
          this.address,
        ),
      );
      return identity;
    }
  }

  private async connectOnce(options: ConnectionOptions): Promise<Identity> {
    const { host, port } = parseAddress(this.address);
    const timer = setTimeout(
      () =>
        this.destroy(
          new NsqConnectionError(
            `Timed out after ${options.connectTimeout} ms connecting to nsqd at ${this.address}`,
            this.address,
            { code: 'ETIMEDOUT' },
          ),
        ),
      options.connectTimeout,
    );
    try {
      return await new Promise<Identity>((resolve, reject) => {
        this.failConnect = reject;
        this.negotiate(host, port, options).then(resolve, reject);
      });
    } catch (err) {
      if (!refusedOutputBufferTimeout(err) || options.outputBufferTimeout === 0) {
        this.destroy(err as Error);
      }
      throw err;
    } finally {
      this.failConnect = undefined;
      clearTimeout(timer);
    }
  }

  /** Drops a socket refused during negotiation, quietly, for a second attempt. */
  private resetSocket(): void {
    const socket = this.socket!;
    socket.removeAllListeners();
    socket.on('error', () => {});
    socket.destroy();
    this.socket = undefined;
    this.codec?.destroy();
    this.codec = undefined;
    this.decoder = this.newDecoder();
    this.currentState = 'connecting';
  }

  private newDecoder(): FrameDecoder {
    // The largest frame nsqd may send: a message of maxMessageSize with its headers (and never
    // less than what an IDENTIFY answer or an error needs).
    return new FrameDecoder(
      undefined,
      Math.max(this.options.maxMessageSize + MESSAGE_OVERHEAD, MIN_FRAME_LIMIT),
    );
  }

  private async negotiate(host: string, port: number, o: ConnectionOptions): Promise<Identity> {
    const socket = netConnect({ host, port });
    socket.setNoDelay(true);
    this.attach(socket);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    if (this.currentState !== 'connecting') throw closedDuringHandshake(this.address);
    this.currentState = 'negotiating';
    const identity = await negotiate(this.address, o, {
      write: (parts) => this.writeNow(parts),
      answer: (step) => this.handshakeAnswer(step),
      upgradeTls: async (tls) => {
        const onFailed = (error: Error) => this.destroy(error);
        const { secure, ready } = startTls(this.socket!, host, tls, this.address, onFailed);
        this.attach(secure);
        await ready;
      },
      codecIo: {
        onDecoded: (b) => this.onDecoded(b),
        writeSocket: (b) => this.socket?.write(b),
        onError: (err) => this.undecodable(err),
      },
      installCodec: (codec) => this.installCodec(codec),
      stillNegotiating: () => {
        if (this.currentState !== 'negotiating') throw closedDuringHandshake(this.address);
      },
    });
    this.currentState = 'ready';
    this.silence.start();
    this.decoder.stream((type, data) => this.onFrame(type, data));
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
          { cause: err },
        ),
      ),
    );
    socket.on('close', () =>
      this.destroy(
        this.currentState === 'closing'
          ? undefined
          : new NsqConnectionError(`nsqd at ${this.address} closed the connection`, this.address),
      ),
    );
  }

  private onData(chunk: Buffer): void {
    this.silence.heard();
    if (this.currentState === 'negotiating' && isHttpAnswer(chunk)) {
      return this.destroy(httpPortError(this.address));
    }
    if (!this.codec) return this.onDecoded(chunk);
    // A corrupt compressed stream must end this connection, not throw out of a socket event.
    try {
      this.codec.decode(chunk);
    } catch (err) {
      this.undecodable(err as Error);
    }
  }

  private onDecoded(chunk: Buffer): void {
    // zlib may still emit after the connection was dropped: nothing more is decoded.
    if (this.currentState === 'closed') return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.undecodable(err as Error);
      return;
    }
    this.handshakeWaiter?.();
  }

  private undecodable(err: Error): void {
    this.destroy(
      new NsqProtocolError(`Undecodable data from nsqd at ${this.address}: ${err.message}`, {
        cause: err,
      }),
    );
  }

  /** The next handshake frame as text; an error frame becomes a thrown NsqResponseError. */
  private async handshakeAnswer(step: string): Promise<string> {
    let frame: Frame | undefined;
    while (!(frame = this.decoder.shift())) {
      await new Promise<void>((resolve) => (this.handshakeWaiter = resolve));
      this.handshakeWaiter = undefined;
    }
    if (frame.type === FrameType.Error) {
      const err = parseErrorFrame(frame.data, this.address);
      err.message = `${step} failed: ${err.message}`;
      throw err;
    }
    return frame.data.toString();
  }

  /** Switches the stream codec; bytes already read past the switch point go through it. */
  private installCodec(codec: StreamCodec): void {
    const already = this.decoder.takeRemainder();
    this.codec = codec;
    if (already.length) codec.decode(already);
  }

  private onFrame(type: FrameType, data: Buffer): void {
    // Frames decoded after a fatal error or a destroy (zlib is async) belong to no one.
    if (this.currentState === 'closed') return;
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
      this.destroy(new NsqProtocolError(`Unknown frame type ${type} from ${this.address}`));
    }
  }

  /** Queues a command; everything queued in one tick goes out in one write. */
  write(command: string | Buffer | readonly Buffer[]): void {
    if (this.currentState === 'closed' || this.socket?.writableEnded) return;
    this.outbox.push(command);
  }

  /** Writes what is queued now. */
  flush(): void {
    if (this.currentState !== 'closed') this.outbox.flush();
  }

  private writeNow(parts: readonly Buffer[]): void {
    for (const part of parts) {
      if (this.codec) this.codec.encode(part);
      else this.socket?.write(part);
    }
  }

  /** Flushes pending commands, then ends the socket gracefully. A handshake is cut short. */
  close(): Promise<void> {
    if (this.currentState === 'ready') {
      this.currentState = 'closing';
      void this.endGracefully();
    } else if (this.currentState !== 'closing') {
      this.destroy();
    }
    return this.closed;
  }

  private async endGracefully(): Promise<void> {
    const timer = setTimeout(() => this.destroy(), CLOSE_TIMEOUT);
    this.flush();
    // Ending the socket before a compressed FIN reached it would lose the FIN.
    await Promise.race([this.codec?.written(), this.closed]);
    this.flush(); // what was queued meanwhile
    this.socket?.end();
    await this.closed;
    clearTimeout(timer);
  }

  /** Tears the connection down at once; `error` says why (none for a requested close). */
  destroy(error?: Error): void {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    this.silence.stop();
    this.codec?.destroy();
    this.socket?.destroy();
    this.outbox.clear();
    this.handshakeWaiter = undefined;
    this.markClosed();
    this.failConnect?.(error ?? closedDuringHandshake(this.address));
    this.handlers.onClose(error);
  }
}

/** The connection was closed or timed out while a handshake step awaited. */
const closedDuringHandshake = (address: string) =>
  new NsqConnectionError(`Connection to ${address} closed during handshake`, address);
