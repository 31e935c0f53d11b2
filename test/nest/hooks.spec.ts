import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom, lastValueFrom, timeout } from 'rxjs';
import { ClientNsq, NsqContext, ServerNsq } from '../../lib/index.js';
import { sharedNsq, uniqueName, waitFor } from '../harness/nsq.js';

const { nsqd, api } = sharedNsq();
const T = uniqueName('hk');
const attempts: number[] = [];
const spans: string[] = [];

@Controller()
class HookedController {
  @EventPattern<string>(`${T}-ev/c`, { requeueDelay: 0, backoff: false })
  failOnce(@Payload() _data: unknown, @Ctx() ctx: NsqContext) {
    attempts.push(ctx.getMessage().attempts);
    if (ctx.getMessage().attempts === 1) throw new Error('first attempt fails');
  }

  @MessagePattern<string>(`${T}-rq/c`)
  request() {
    throw new Error('request handler fails');
  }
}

describe('processing hooks (tracing) keep FIN/REQ semantics', () => {
  it('a hook that returns nothing still lets a failure REQ, and requests still answer', async () => {
    const server = new ServerNsq({ nsqd: [nsqd] });
    // Written the way tracing hooks often are: done() is called, its promise not returned.
    server.setOnProcessingStartHook((_id, _ctx, done) => {
      spans.push('start');
      void done();
    });
    server.setOnProcessingEndHook(() => spans.push('end'));
    const moduleRef = await Test.createTestingModule({ controllers: [HookedController] }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: server });
    app.useLogger(false);
    await app.listen();
    const client = new ClientNsq({ nsqd: [nsqd] });

    await lastValueFrom(client.emit(`${T}-ev`, 1));
    await waitFor(() => attempts.length === 2, 'a redelivery after the failed first attempt');
    expect(attempts).toEqual([1, 2]);
    await waitFor(
      async () => (await api.channelStats(`${T}-ev`, 'c'))?.in_flight_count === 0,
      'FIN',
    );
    expect((await api.channelStats(`${T}-ev`, 'c'))?.requeue_count).toBe(1);

    await expect(
      firstValueFrom(client.send(`${T}-rq`, {}).pipe(timeout(10_000))),
    ).rejects.toMatchObject({
      status: 'error',
    });
    expect(spans.filter((s) => s === 'start').length).toBe(3);
    expect(spans.filter((s) => s === 'end').length).toBe(3);
    await client.close();
    await app.close();
  });
});
