// The steps after the magic: IDENTIFY, then TLS, compression and AUTH as nsqd's answer asks.
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { NsqConnectionError, NsqProtocolError, NsqResponseError } from '../errors.js';
import * as commands from '../protocol/commands.js';
import { identifyBody, parseIdentity, unrequestedFeatures, type Identity } from './identify.js';
import type { ConnectionOptions } from './settings.js';
import { deflateCodec, snappyCodec, type CodecIo, type StreamCodec } from './stream-codecs.js';

/** What the handshake needs from its connection. */
export interface HandshakeIo {
  write(parts: readonly Buffer[]): void;
  /** The next handshake frame as text; an error frame rejects. */
  answer(step: string): Promise<string>;
  upgradeTls(tls: TlsOptions): Promise<void>;
  codecIo: CodecIo;
  installCodec(codec: StreamCodec): void;
  /** Throws if the connection was closed while a step awaited. */
  stillNegotiating(): void;
}

/** Runs the handshake on a connected socket; resolves with nsqd's identity. */
export async function negotiate(
  address: string,
  o: ConnectionOptions,
  io: HandshakeIo,
): Promise<Identity> {
  const expectOk = async (step: string) => {
    const answer = await io.answer(step);
    if (answer !== 'OK') {
      throw new NsqProtocolError(`Expected OK after ${step} from ${address}, got ${answer}`);
    }
  };
  io.write([commands.MAGIC_V2, ...commands.identify(identifyBody(o))]);
  const identity = parseIdentity(await io.answer('IDENTIFY'), address);
  const unrequested = unrequestedFeatures(identity, o);
  if (unrequested.length) {
    throw new NsqProtocolError(
      `nsqd at ${address} turned on ${unrequested.join(', ')}, which this client did not ask for; ` +
        'refusing the connection (enable the option if nsqd requires it)',
    );
  }
  if (o.tls !== false && !identity.tls_v1) {
    throw new NsqConnectionError(
      `TLS was asked for but nsqd at ${address} does not offer it ` +
        '(start nsqd with --tls-cert and --tls-key, or set tls: false)',
      address,
    );
  }
  if (identity.tls_v1) {
    await io.upgradeTls(o.tls === true ? {} : (o.tls as TlsOptions));
    await expectOk('TLS');
  }
  if (identity.deflate || identity.snappy) {
    const codec = identity.deflate
      ? deflateCodec(identity.deflate_level || o.deflateLevel, io.codecIo)
      : await snappyCodec(io.codecIo);
    io.stillNegotiating();
    io.installCodec(codec);
    await expectOk(identity.deflate ? 'deflate' : 'snappy');
  }
  if (identity.auth_required) {
    if (!o.authSecret) {
      throw new NsqConnectionError(
        `nsqd at ${address} requires AUTH: set the authSecret option`,
        address,
      );
    }
    io.write(commands.auth(o.authSecret.reveal()));
    await io.answer('AUTH');
  }
  // An authSecret without auth_required is not sent: nsqd would answer a fatal E_AUTH_DISABLED.
  io.stillNegotiating();
  return identity;
}

/** nsqd's refusal of an output_buffer_timeout below its --min-output-buffer-timeout. */
export function refusedOutputBufferTimeout(err: unknown): boolean {
  return (
    err instanceof NsqResponseError &&
    err.code === 'E_BAD_BODY' &&
    /output buffer timeout \(-?\d+\) is invalid/.test(err.message)
  );
}

/** An HTTP server answered the magic: the classic mix-up of nsqd's two ports. */
export const isHttpAnswer = (chunk: Buffer): boolean =>
  chunk.subarray(0, 5).toString('latin1') === 'HTTP/';

export const httpPortError = (address: string): NsqConnectionError =>
  new NsqConnectionError(
    `${address} answered with HTTP: is it nsqd's HTTP port (4151 by default) instead of its ` +
      "TCP port (4150)? Give nsqd's TCP address",
    address,
  );
