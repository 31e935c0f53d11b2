// A small nsqd auth server (nsqd --auth-http-address): one secret may publish and subscribe to
// everything; any other gets 403.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AuthServer {
  /** The nsqd flag that points at this server. */
  flag: string;
  /** Query strings of the /auth calls nsqd made (secret, tls, remote_ip...). */
  requests: URLSearchParams[];
  close(): Promise<void>;
}

export async function startAuthServer(secret: string): Promise<AuthServer> {
  const requests: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(url.searchParams);
    if (url.pathname !== '/auth' || url.searchParams.get('secret') !== secret) {
      res.writeHead(403).end('{"message":"bad secret"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        ttl: 3600,
        identity: 'test',
        identity_url: '',
        authorizations: [{ topic: '.*', channels: ['.*'], permissions: ['subscribe', 'publish'] }],
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    flag: `--auth-http-address=127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
