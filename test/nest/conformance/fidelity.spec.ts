// What a Nest client emits is what a Nest handler receives: every JSON value, strings that look
// like JSON included; Buffers as raw bytes. JSON from other producers decodes with leading
// whitespace or a BOM.
import { Controller, type INestMicroservice } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { lastValueFrom } from 'rxjs';
import { ClientNsq, ServerNsq } from '../../../lib/index.js';
import { sharedNsq, uniqueName, waitFor } from '../../harness/nsq.js';

const { nsqd, api } = sharedNsq();
const P = uniqueName('fid');
const got: unknown[] = [];
const raw: Buffer[] = [];

@Controller()
class FidelityController {
  @EventPattern<string>(`${P}/c`)
  value(@Payload() data: unknown) {
    got.push(data);
  }

  @EventPattern<string>(`${P}-raw/c`, { raw: true })
  bytes(@Payload() data: Buffer) {
    raw.push(data);
  }
}

const VALUES: unknown[] = [
  '42',
  'true',
  'null',
  '{"a":1}',
  '',
  '12345678901234567890',
  ' 7',
  '"quoted"',
  'plain text',
  '#nsq/1 {}',
  42,
  -0.5,
  true,
  false,
  [],
  {},
  { nested: { list: [1, '2', null] } },
  'é✓🔑',
];

describe('payload fidelity', () => {
  let app: INestMicroservice;
  let client: ClientNsq;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      controllers: [FidelityController],
    }).compile();
    app = moduleRef.createNestMicroservice({
      strategy: new ServerNsq({ nsqd: [nsqd], maxInFlight: 1 }),
      logger: false,
    });
    await app.listen();
    client = new ClientNsq({ nsqd: [nsqd], batching: false });
  });
  afterAll(async () => {
    await client.close();
    await app.close();
  });

  it('every JSON value a Nest client emits arrives unchanged, in order', async () => {
    for (const value of VALUES) await lastValueFrom(client.emit(P, value));
    await waitFor(() => got.length === VALUES.length, 'every value');
    expect(got).toEqual(VALUES);
  });

  it('a Buffer and a Uint8Array arrive as their bytes', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 0x22]);
    await lastValueFrom(client.emit(`${P}-raw`, bytes));
    await lastValueFrom(client.emit(`${P}-raw`, new Uint8Array([9, 8, 7])));
    await waitFor(() => raw.length === 2, 'the raw bodies');
    expect(raw[0].equals(bytes)).toBe(true);
    expect([...raw[1]]).toEqual([9, 8, 7]);
  });

  it('JSON from another producer decodes with leading whitespace or a BOM', async () => {
    const before = got.length;
    await api.publish(P, '  \n{"spaced":true}');
    await api.publish(P, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[1,2]')]));
    await api.publish(P, 'text from Go');
    await waitFor(() => got.length === before + 3, 'the three bodies');
    expect(got.slice(before)).toEqual([{ spaced: true }, [1, 2], 'text from Go']);
  });
});
