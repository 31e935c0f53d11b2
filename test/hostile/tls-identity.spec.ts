// TLS verifies the certificate against the address the user gave: an IP SAN for an IP, the DNS
// name for a name; `servername` overrides. Certificates with only one of the two show it.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Consumer, Producer } from '../../lib/core.js';
import { NsqdProcess, stopAll, uniqueName } from '../harness/nsq.js';

const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/tls-identity/${name}`, import.meta.url));
const ca = readFileSync(fixture('ca.pem'), 'utf8');
const flags = (kind: 'ip' | 'dns') => [
  `--tls-cert=${fixture(`${kind}-only.pem`)}`,
  `--tls-key=${fixture(`${kind}-only.key`)}`,
];

afterAll(stopAll);

async function publishOverTls(address: string, tls: object): Promise<void> {
  const producer = new Producer({ nsqd: [address], tls });
  try {
    await producer.publish(uniqueName('tls'), 'x');
  } finally {
    await producer.close();
  }
}

describe('TLS identity', () => {
  it('a certificate valid for IP:127.0.0.1 only is accepted at 127.0.0.1', async () => {
    const nsqd = await NsqdProcess.start({ args: flags('ip') });
    await expect(publishOverTls(nsqd.tcpAddress, { ca })).resolves.toBeUndefined();
    const consumer = new Consumer(uniqueName('tls'), 'c', () => undefined, {
      nsqd: [nsqd.tcpAddress],
      tls: { ca },
    });
    await expect(consumer.start()).resolves.toBeUndefined();
    await consumer.close();
  });

  it('a certificate valid for DNS:localhost only is refused at 127.0.0.1', async () => {
    const nsqd = await NsqdProcess.start({ args: flags('dns') });
    await expect(publishOverTls(nsqd.tcpAddress, { ca })).rejects.toThrow(
      /TLS handshake with nsqd at 127\.0\.0\.1:\d+ failed: .*(IP: 127\.0\.0\.1 is not in the cert's list|not in the cert)/,
    );
  });

  it('servername overrides the name checked', async () => {
    const nsqd = await NsqdProcess.start({ args: flags('dns') });
    await expect(
      publishOverTls(nsqd.tcpAddress, { ca, servername: 'localhost' }),
    ).resolves.toBeUndefined();
  });
});
