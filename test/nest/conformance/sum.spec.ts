// Nest's sum scenario (integration/microservices: sum-nats, nats.controller), ported: requests
// through HTTP routes, promise/Observable/streamed handlers, concurrency, exceptions, events to
// two handlers of one pattern, and headers with the record builder.
import { Body, Controller, Get, HttpCode, Post, Query } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { firstValueFrom, from, Observable, of, throwError } from 'rxjs';
import { catchError, scan } from 'rxjs/operators';
import { ClientNsq, NsqContext, NsqRecordBuilder } from '../../../lib/index.js';
import { sharedNsq, uniqueName, waitFor } from '../../harness/nsq.js';
import { http, startHybrid, type HybridApp } from './app.js';

const { nsqd, lookupd } = sharedNsq();
const P = uniqueName('sum');
const notified = { first: false, second: false };

@Controller()
class SumController {
  readonly client = new ClientNsq({ nsqd: [nsqd], lookupd: [lookupd] });

  @Post()
  @HttpCode(200)
  async call(@Query('command') cmd: string, @Body() data: number[]): Promise<Observable<number>> {
    await this.client.connect();
    return this.client.send<number>(cmd === 'object' ? { cmd: `${P}-sum` } : `${P}-${cmd}`, data);
  }

  @Post('stream')
  @HttpCode(200)
  stream(@Body() data: number[]): Observable<number> {
    return this.client.send<number>(`${P}-streaming`, data).pipe(scan((a, b) => a + b));
  }

  @Post('concurrent')
  @HttpCode(200)
  async concurrent(@Body() data: number[][]): Promise<boolean> {
    const results = await Promise.all(
      data.map(async (tab) => {
        const result = await firstValueFrom(this.client.send<number>(`${P}-math`, tab));
        return result === tab.reduce((a, b) => a + b);
      }),
    );
    return results.every(Boolean);
  }

  @Get('exception')
  getError() {
    return this.client.send<number>(`${P}-exception`, {}).pipe(catchError((err) => of(err)));
  }

  @Post('notify')
  @HttpCode(200)
  async notify(): Promise<unknown> {
    return firstValueFrom(this.client.emit(`${P}-notification`, true));
  }

  @Post('record-builder-duplex')
  @HttpCode(200)
  recordBuilder(@Body() data: Record<string, unknown>) {
    const record = new NsqRecordBuilder(data).setHeaders({ 'x-version': '1.0.0' }).build();
    return this.client.send(`${P}-record`, record);
  }

  @MessagePattern<string>(`${P}-math`)
  sum(@Payload() data: number[], @Ctx() _ctx: NsqContext): number {
    return (data || []).reduce((a, b) => a + b);
  }

  @MessagePattern({ cmd: `${P}-sum` })
  objectSum(@Payload() data: number[]): number {
    return data.reduce((a, b) => a + b);
  }

  @MessagePattern<string>(`${P}-async`)
  async asyncSum(@Payload() data: number[]): Promise<number> {
    return (data || []).reduce((a, b) => a + b);
  }

  @MessagePattern<string>(`${P}-stream`)
  streamSum(@Payload() data: number[]): Observable<number> {
    return of((data || []).reduce((a, b) => a + b));
  }

  @MessagePattern<string>(`${P}-streaming`)
  streaming(@Payload() data: number[]): Observable<number> {
    return from(data);
  }

  @MessagePattern<string>(`${P}-exception`)
  throwError(): Observable<number> {
    return throwError(() => new RpcException('test'));
  }

  @EventPattern<string>(`${P}-notification`)
  eventHandler(@Payload() data: boolean) {
    notified.first = data;
  }

  @EventPattern<string>(`${P}-notification`)
  eventHandler2(@Payload() data: boolean) {
    notified.second = data;
  }

  @MessagePattern<string>(`${P}-record`)
  record(@Payload() data: unknown, @Ctx() ctx: NsqContext) {
    return { data, headers: ctx.getHeaders() };
  }
}

describe('Nest scenario: sum (ported from sum-nats)', () => {
  let hybrid: HybridApp;

  beforeAll(async () => {
    // Topic-only patterns take the server's channel, as Nest's own patterns name no channel.
    hybrid = await startHybrid([SumController], { nsqd: [nsqd], channel: 'workers' });
  });
  afterAll(async () => {
    await hybrid.app.get(SumController).client.close();
    await hybrid.close();
  });

  it.each([['math'], ['async'], ['stream'], ['object']])('/POST ?command=%s -> 15', async (cmd) => {
    const res = await http(`${hybrid.url}/?command=${cmd}`, 'POST', [1, 2, 3, 4, 5]);
    expect(res).toMatchObject({ status: 200, text: '15' });
  });

  it('/POST (streaming): every value of the reply stream arrives', async () => {
    const res = await http(`${hybrid.url}/stream`, 'POST', [1, 2, 3, 4, 5]);
    expect(res).toMatchObject({ status: 200, text: '15' });
  });

  it('/POST (concurrent): ten requests at once, each with its own reply', async () => {
    const data = Array.from({ length: 10 }, (_, i) =>
      Array.from({ length: 10 }, (__, k) => i * 10 + k + 1),
    );
    const res = await http(`${hybrid.url}/concurrent`, 'POST', data);
    expect(res).toMatchObject({ status: 200, text: 'true' });
  });

  it('/GET (exception): the RpcException reaches the caller as Nest shapes it', async () => {
    const res = await http(`${hybrid.url}/exception`, 'GET');
    expect(res).toMatchObject({ status: 200, body: { message: 'test', status: 'error' } });
  });

  it('/POST (event notification): both handlers of the pattern run', async () => {
    const res = await http(`${hybrid.url}/notify`, 'POST');
    expect(res.status).toBe(200);
    await waitFor(() => notified.first && notified.second, 'both event handlers');
  });

  it('/POST (sending headers with the record builder)', async () => {
    const payload = { items: [1, 2, 3] };
    const res = await http(`${hybrid.url}/record-builder-duplex`, 'POST', payload);
    expect(res).toMatchObject({
      status: 200,
      body: { data: payload, headers: { 'x-version': '1.0.0' } },
    });
  });
});
