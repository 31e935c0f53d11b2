import type { Socket } from 'node:net';
import {
  connect as tlsConnect,
  type ConnectionOptions as TlsOptions,
  type TLSSocket,
} from 'node:tls';
import { NsqConnectionError } from '../errors.js';
import { isIp } from './address.js';

/**
 * Upgrades a connected socket to TLS in the middle of the NSQ handshake. The certificate is
 * checked against the address the user gave: an IP SAN for an IP, the DNS name otherwise (Node
 * would check 'localhost' without `host`); `servername` overrides. `ready` resolves once the
 * TLS handshake is done; a failed one goes to `onFailed` with an error that says TLS.
 */
export function startTls(
  raw: Socket,
  host: string,
  tlsOptions: TlsOptions,
  address: string,
  onFailed: (error: Error) => void,
): { secure: TLSSocket; ready: Promise<void> } {
  raw.removeAllListeners('data');
  raw.removeAllListeners('close');
  raw.removeAllListeners('error');
  raw.on('error', () => {}); // reported through the TLS socket
  const secure = tlsConnect({
    host,
    servername: isIp(host) ? undefined : host,
    ...tlsOptions,
    socket: raw,
  });
  // Registered before the connection's own listeners, so that a failed handshake (e.g. an
  // untrusted certificate) says TLS.
  const failed = (err: Error) =>
    onFailed(
      new NsqConnectionError(
        `TLS handshake with nsqd at ${address} failed: ${err.message} ` +
          '(check the tls option: ca, servername, rejectUnauthorized)',
        address,
        { cause: err },
      ),
    );
  secure.once('error', failed);
  const ready = new Promise<void>((resolve) =>
    secure.once('secureConnect', () => {
      secure.off('error', failed);
      resolve();
    }),
  );
  return { secure, ready };
}
