import fc from 'fast-check';
import * as commands from '../../lib/protocol/commands.js';
import {
  auth,
  CLS,
  dpub,
  fin,
  identify,
  MAGIC_V2,
  mpub,
  mpubBodySize,
  NOP,
  pub,
  rdy,
  req,
  sub,
  touch,
  type IdentifyBody,
} from '../../lib/protocol/commands.js';
import * as protocol from '../../lib/protocol/index.js';

const bytesOf = (out: Buffer | Buffer[]): Buffer => (Array.isArray(out) ? Buffer.concat(out) : out);
const be32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Parses `MPUB <topic>\n[body size][count]([size][body])...`, checking every length. */
function parseMpub(wire: Buffer): { topic: string; bodies: Buffer[] } {
  const nl = wire.indexOf(0x0a);
  const line = wire.toString('latin1', 0, nl);
  const match = /^MPUB (\S+)$/.exec(line);
  if (!match) throw new Error(`bad MPUB line ${JSON.stringify(line)}`);
  let at = nl + 1;
  const bodySize = wire.readUInt32BE(at);
  at += 4;
  if (bodySize !== wire.length - at) {
    throw new Error(`body size ${bodySize}, but ${wire.length - at} bytes follow`);
  }
  const count = wire.readUInt32BE(at);
  at += 4;
  const bodies: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const size = wire.readUInt32BE(at);
    at += 4;
    if (at + size > wire.length) throw new Error(`message ${i} overruns the command`);
    bodies.push(Buffer.from(wire.subarray(at, at + size)));
    at += size;
  }
  if (at !== wire.length) throw new Error(`${wire.length - at} bytes left over`);
  return { topic: match[1], bodies };
}

const topicArb = fc.string({
  unit: fc.constantFrom(...'abcXYZ019._-'),
  minLength: 1,
  maxLength: 64,
});
const bodyArb = fc.uint8Array({ maxLength: 600 }).map((u) => Buffer.from(u));

describe('command encoders', () => {
  it('sends the magic "  V2"', () => {
    expect(MAGIC_V2).toEqual(Buffer.from([0x20, 0x20, 0x56, 0x32]));
  });

  it('encodes the one-line commands exactly', () => {
    expect(sub('orders', 'billing')).toBe('SUB orders billing\n');
    expect(sub('t#ephemeral', 'c#ephemeral')).toBe('SUB t#ephemeral c#ephemeral\n');
    expect(rdy(0)).toBe('RDY 0\n');
    expect(rdy(2500)).toBe('RDY 2500\n');
    expect(fin('0a1b2c3d4e5f6789')).toBe('FIN 0a1b2c3d4e5f6789\n');
    expect(req('0a1b2c3d4e5f6789', 0)).toBe('REQ 0a1b2c3d4e5f6789 0\n');
    expect(req('0a1b2c3d4e5f6789', 3_600_000)).toBe('REQ 0a1b2c3d4e5f6789 3600000\n');
    expect(touch('0a1b2c3d4e5f6789')).toBe('TOUCH 0a1b2c3d4e5f6789\n');
    expect(CLS).toBe('CLS\n');
    expect(NOP).toBe('NOP\n');
  });

  it('sends whole milliseconds in REQ and DPUB', () => {
    expect(req('0a1b2c3d4e5f6789', 1499.6)).toBe('REQ 0a1b2c3d4e5f6789 1500\n');
    expect(req('0a1b2c3d4e5f6789', 0.2)).toBe('REQ 0a1b2c3d4e5f6789 0\n');
    expect(bytesOf(dpub('t', 99.5, Buffer.alloc(0))).toString('latin1', 0, 10)).toBe('DPUB t 100');
  });

  it('encodes PUB as header, 4-byte big-endian size, body', () => {
    expect(bytesOf(pub('t', Buffer.from('hi')))).toEqual(
      Buffer.concat([Buffer.from('PUB t\n'), hex('00 00 00 02'), Buffer.from('hi')]),
    );
    const body = Buffer.alloc(0x010203, 0xee);
    const wire = bytesOf(pub('events', body));
    expect(wire.toString('latin1', 0, 11)).toBe('PUB events\n');
    expect(wire.subarray(11, 15)).toEqual(hex('00 01 02 03'));
    expect(wire.subarray(15).equals(body)).toBe(true);
    expect(wire).toHaveLength(15 + body.length);
  });

  it('encodes an empty PUB body with size 0', () => {
    expect(bytesOf(pub('t', Buffer.alloc(0)))).toEqual(
      Buffer.concat([Buffer.from('PUB t\n'), hex('00000000')]),
    );
  });

  it('encodes any PUB and DPUB', () => {
    fc.assert(
      fc.property(topicArb, bodyArb, fc.integer({ min: 0, max: 3_600_000 }), (t, body, ms) => {
        expect(bytesOf(pub(t, body))).toEqual(
          Buffer.concat([Buffer.from(`PUB ${t}\n`), be32(body.length), body]),
        );
        expect(bytesOf(dpub(t, ms, body))).toEqual(
          Buffer.concat([Buffer.from(`DPUB ${t} ${ms}\n`), be32(body.length), body]),
        );
      }),
    );
  });

  it('encodes DPUB with its delay', () => {
    expect(bytesOf(dpub('t', 1000, Buffer.from('x')))).toEqual(
      Buffer.concat([Buffer.from('DPUB t 1000\n'), hex('00000001'), Buffer.from('x')]),
    );
  });

  it('encodes MPUB as total body size, count, then each size and body', () => {
    const wire = mpub('t', [Buffer.from('a'), Buffer.from('bc')]);
    expect(wire).toEqual(
      Buffer.concat([
        Buffer.from('MPUB t\n'),
        hex('0000000f'), // 4 (count) + 4 + 1 + 4 + 2
        hex('00000002'),
        hex('00000001'),
        Buffer.from('a'),
        hex('00000002'),
        Buffer.from('bc'),
      ]),
    );
    expect(mpubBodySize([Buffer.from('a'), Buffer.from('bc')])).toBe(15);
  });

  it('encodes any MPUB so that it parses back to the same topic and bodies', () => {
    fc.assert(
      fc.property(topicArb, fc.array(bodyArb, { maxLength: 20 }), (t, bodies) => {
        const wire = mpub(t, bodies);
        expect(parseMpub(wire)).toEqual({ topic: t, bodies });
        expect(mpubBodySize(bodies)).toBe(wire.length - `MPUB ${t}\n`.length - 4);
      }),
    );
  });

  it('encodes IDENTIFY as header, byte size of the JSON, JSON', () => {
    const body: IdentifyBody = {
      client_id: 'wörker-1',
      hostname: 'hôte.例え',
      user_agent: 'nestjs-nsq/0.1.0',
      feature_negotiation: true,
      heartbeat_interval: 30_000,
      msg_timeout: 60_000,
      deflate: false,
    };
    const wire = bytesOf(identify(body));
    expect(wire.toString('latin1', 0, 9)).toBe('IDENTIFY\n');
    const json = wire.subarray(13);
    expect(wire.readUInt32BE(9)).toBe(json.length);
    expect(json.length).toBeGreaterThan(JSON.stringify(body).length); // size counts bytes
    expect(JSON.parse(json.toString('utf8'))).toEqual(body);
  });

  it('encodes AUTH as header, byte size of the secret, secret', () => {
    expect(bytesOf(auth('s3cret'))).toEqual(
      Buffer.concat([Buffer.from('AUTH\n'), hex('00000006'), Buffer.from('s3cret')]),
    );
    const wire = bytesOf(auth('clé🔑'));
    expect(wire.readUInt32BE(5)).toBe(Buffer.byteLength('clé🔑'));
    expect(wire.subarray(9).toString('utf8')).toBe('clé🔑');
    expect(wire).toHaveLength(9 + Buffer.byteLength('clé🔑'));
  });

  it('re-exports the wire layer from the protocol index', () => {
    expect(protocol.commands).toEqual(commands);
    expect(protocol.MAGIC_V2).toBe(MAGIC_V2);
    expect(typeof protocol.FrameDecoder).toBe('function');
    expect(typeof protocol.DecodedMessage).toBe('function');
    expect(protocol.MESSAGE_ID_LENGTH).toBe(16);
  });
});
