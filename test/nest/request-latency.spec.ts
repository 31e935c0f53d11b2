// A send() round trip is not held in nsqd's output buffer on either hop (the request to the
// @MessagePattern consumer, the reply to ClientNsq's reply consumer): adaptive RDY has nsqd write
// each at once, and with adaptiveRdy: false the request consumer turns nsqd's buffering off.
// outputBufferTimeout is 1 s on both sides, so a held message would show as a 1 s round trip
// that no loaded machine produces by itself.
import { Controller, type INestMicroservice } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom, timeout } from 'rxjs';
import { ClientNsq, ServerNsq } from '../../lib/index.js';
import { sharedNsq, uniqueName } from '../harness/nsq.js';

const { nsqd } = sharedNsq();
const T = uniqueName('rl');
const HOLD = 1000;

@Controller()
class EchoController {
  @MessagePattern<string>(`${T}-echo/c`)
  echo(@Payload() n: number) {
    return n;
  }
}

async function roundTrips(serverOptions: { adaptiveRdy?: boolean }): Promise<number[]> {
  const moduleRef = await Test.createTestingModule({ controllers: [EchoController] }).compile();
  const server: INestMicroservice = moduleRef.createNestMicroservice({
    strategy: new ServerNsq({ nsqd: [nsqd], outputBufferTimeout: HOLD, ...serverOptions }),
  });
  server.useLogger(false);
  await server.listen();
  const client = new ClientNsq({ nsqd: [nsqd], outputBufferTimeout: HOLD });
  try {
    const send = (n: number) =>
      firstValueFrom(client.send<number>(`${T}-echo`, n).pipe(timeout(10_000)));
    await send(-1); // connects, subscribes the reply topic
    const took: number[] = [];
    for (let i = 0; i < 10; i++) {
      const at = Date.now();
      expect(await send(i)).toBe(i);
      took.push(Date.now() - at);
    }
    return took;
  } finally {
    await client.close();
    await server.close();
  }
}

describe('send() round trips are not held in nsqd output buffers', () => {
  it('with adaptive RDY (the default)', async () => {
    expect(Math.max(...(await roundTrips({})))).toBeLessThan(HOLD / 2);
  });

  it('with adaptiveRdy: false on the server (its request consumer turns buffering off)', async () => {
    expect(Math.max(...(await roundTrips({ adaptiveRdy: false })))).toBeLessThan(HOLD / 2);
  });
});
