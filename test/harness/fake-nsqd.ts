// A scripted nsqd for what only a hostile or broken peer does (oversized frames, unrequested
// features, ignoring RDY, garbage answers, never acknowledging). It speaks just enough of the
// protocol: magic, IDENTIFY, then commands, each answered by the script.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export const FRAME = { response: 0, error: 1, message: 2 } as const;

/** A frame: size, type, data. */
export function frame(type: number, data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 4, 0);
  head.writeInt32BE(type, 4);
  return Buffer.concat([head, body]);
}

let seq = 0;
/** A message frame with a fresh 16-character id. */
export function messageFrame(body: string | Buffer, attempts = 1): Buffer {
  const head = Buffer.alloc(26);
  head.writeBigInt64BE(BigInt(Date.now()) * 1_000_000n, 0);
  head.writeUInt16BE(attempts, 8);
  head.write((seq++).toString(16).padStart(16, '0'), 10, 'latin1');
  return frame(
    FRAME.message,
    Buffer.concat([head, typeof body === 'string' ? Buffer.from(body) : body]),
  );
}

/** An honest IDENTIFY answer, to be changed by a script. */
export const IDENTITY = {
  max_rdy_count: 2500,
  version: '1.3.0',
  max_msg_timeout: 900000,
  msg_timeout: 60000,
  tls_v1: false,
  deflate: false,
  deflate_level: 6,
  max_deflate_level: 6,
  snappy: false,
  sample_rate: 0,
  auth_required: false,
  output_buffer_size: 16384,
  output_buffer_timeout: 250,
};

export interface FakeConnection {
  socket: Socket;
  /** Commands received after IDENTIFY, one line each (bodies of PUB/MPUB/DPUB left out). */
  commands: string[];
  send(data: Buffer): void;
}

export interface FakeScript {
  /** What to send after IDENTIFY; default: the honest JSON answer. */
  identify?(conn: FakeConnection): void;
  /** Called for each command line; default: SUB -> OK, PUB/MPUB/DPUB -> OK, others nothing. */
  command?(line: string, conn: FakeConnection): void;
}

export interface FakeNsqd {
  address: string;
  connections: FakeConnection[];
  close(): Promise<void>;
}

/** Body lengths of commands that carry one: PUB t, DPUB t ms, MPUB t. */
const WITH_BODY = /^(PUB|DPUB|MPUB|AUTH|IDENTIFY)\b/;

export async function startFakeNsqd(script: FakeScript = {}): Promise<FakeNsqd> {
  const connections: FakeConnection[] = [];
  const server: Server = createServer((socket) => {
    socket.on('error', () => {});
    const conn: FakeConnection = { socket, commands: [], send: (d) => socket.write(d) };
    connections.push(conn);
    let buf = Buffer.alloc(0);
    let magic = false;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!magic) {
        if (buf.length < 4) return;
        buf = buf.subarray(4);
        magic = true;
      }
      for (;;) {
        const nl = buf.indexOf(0x0a);
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString();
        let consumed = nl + 1;
        if (WITH_BODY.test(line)) {
          if (buf.length < consumed + 4) return;
          const size = buf.readUInt32BE(consumed);
          if (buf.length < consumed + 4 + size) return;
          consumed += 4 + size;
        }
        buf = buf.subarray(consumed);
        if (line === 'IDENTIFY') {
          if (script.identify) script.identify(conn);
          else conn.send(frame(FRAME.response, JSON.stringify(IDENTITY)));
          continue;
        }
        conn.commands.push(line);
        if (script.command) script.command(line, conn);
        else if (/^(SUB|PUB|MPUB|DPUB) /.test(line)) conn.send(frame(FRAME.response, 'OK'));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections,
    close: async () => {
      for (const c of connections) c.socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
