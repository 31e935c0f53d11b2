// Nest's client scenarios, ported: the disconnected client (an exception filter maps the
// connection error's code to 408), close() then connect() on the same client (tcp-reconnect),
// emit() idioms, Nest's errors for bad input, and custom codecs on both legs.
import { Body, Controller, HttpCode, Post, RequestTimeoutException } from '@nestjs/common';
import { InternalServerErrorException } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, Observable, throwError, timeout } from 'rxjs';
import { catchError } from 'rxjs/operators';
import { ClientNsq, NsqRecordBuilder } from '../../../lib/index.js';
import { sharedNsq, uniqueName, waitFor } from '../../harness/nsq.js';
import { http, startHybrid, type HybridApp } from './app.js';

const { nsqd, lookupd } = sharedNsq();
const P = uniqueName('cli');

@Controller()
class DisconnectedClientController {
  @Post()
  call(@Body() options: { nsqd: string[] }): Observable<number> {
    const client = new ClientNsq({ nsqd: options.nsqd, maxRetryDelay: 10 });
    return client.send<number, number[]>({ cmd: 'none' }, [1, 2, 3]).pipe(
      catchError((error: { code?: string } | undefined) => {
        const { code } = error ?? { code: 'CONN_ERR' };
        return throwError(() =>
          code === 'ECONNREFUSED' || code === 'CONN_ERR'
            ? new RequestTimeoutException('ECONNREFUSED')
            : new InternalServerErrorException(),
        );
      }),
    );
  }
}

const events: unknown[] = [];

@Controller()
class EchoController {
  @MessagePattern<string>(`${P}-echo/c`)
  echo(@Payload() data: unknown) {
    return data;
  }

  @EventPattern<string>(`${P}-event/c`)
  event(@Payload() data: unknown) {
    events.push(data);
  }

  @Post('emit')
  @HttpCode(200)
  async emitFromRoute(@Body() body: { n: number }) {
    // The common case: an HTTP route that emits one event and awaits it.
    return firstValueFrom(client.emit(`${P}-event`, body));
  }
}

let client: ClientNsq;

describe('Nest scenario: disconnected client (ported)', () => {
  it('a send() to an nsqd that is not there errors with ECONNREFUSED, which a filter maps to 408', async () => {
    const hybrid = await startHybrid([DisconnectedClientController], { nsqd: [nsqd] });
    try {
      const res = await http(hybrid.url, 'POST', { nsqd: ['127.0.0.1:1'] });
      expect(res.status).toBe(408);
    } finally {
      await hybrid.close();
    }
  });
});

describe('Nest client idioms', () => {
  let hybrid: HybridApp;

  beforeAll(async () => {
    hybrid = await startHybrid([EchoController], { nsqd: [nsqd] });
    client = new ClientNsq({ nsqd: [nsqd], lookupd: [lookupd] });
  });
  afterAll(async () => {
    await client.close();
    await hybrid.close();
  });

  it('emit() emits one value and completes: lastValueFrom, firstValueFrom and subscribe all see it', async () => {
    await expect(lastValueFrom(client.emit(`${P}-event`, { n: 1 }))).resolves.toBeUndefined();
    await expect(firstValueFrom(client.emit(`${P}-event`, { n: 2 }))).resolves.toBeUndefined();
    const seen = await new Promise<string[]>((resolve) => {
      const log: string[] = [];
      client.emit(`${P}-event`, { n: 3 }).subscribe({
        next: () => log.push('next'),
        complete: () => resolve([...log, 'complete']),
      });
    });
    expect(seen).toEqual(['next', 'complete']);
    const res = await http(`${hybrid.url}/emit`, 'POST', { n: 4 });
    expect(res.status).toBe(200);
    await waitFor(() => events.length >= 4, 'the four events');
  });

  it.each([
    ['undefined data', 'x', undefined],
    ['null data', 'x', null],
    ['undefined pattern', undefined, 1],
  ])('emit() with %s errors with InvalidMessageException', async (_, pattern, data) => {
    const error = await lastValueFrom(client.emit(pattern as never, data)).catch((e: Error) => e);
    expect((error as Error).constructor.name).toBe('InvalidMessageException');
  });

  it('a serializer that throws errors the Observable instead of throwing from emit()', async () => {
    const bad = new ClientNsq({
      nsqd: [nsqd],
      serializer: {
        serialize: () => {
          throw new Error('cannot serialize');
        },
      },
    });
    try {
      const emitted = bad.emit(`${P}-event`, { n: 1 });
      await expect(lastValueFrom(emitted)).rejects.toThrow('cannot serialize');
    } finally {
      await bad.close();
    }
  });

  it('send() unwraps an NsqRecord: the handler gets the data', async () => {
    const record = new NsqRecordBuilder({ a: 1 }).build();
    await expect(firstValueFrom(client.send(`${P}-echo`, record))).resolves.toEqual({ a: 1 });
  });

  it('close() then connect() on the same client works again (tcp-reconnect)', async () => {
    const c = new ClientNsq({ nsqd: [nsqd] });
    await c.connect();
    await expect(firstValueFrom(c.send(`${P}-echo`, 'one'))).resolves.toBe('one');
    await c.close();
    await c.connect();
    await expect(firstValueFrom(c.send(`${P}-echo`, 'two'))).resolves.toBe('two');
    await expect(lastValueFrom(c.emit(`${P}-event`, 'after reconnect'))).resolves.toBeUndefined();
    await c.close();
    // The next emit() or send() after close() reconnects by itself.
    await expect(firstValueFrom(c.send(`${P}-echo`, 'three'))).resolves.toBe('three');
    await c.close();
  });

  it('close() fails every send() still waiting, at once, with a clear error', async () => {
    const c = new ClientNsq({ nsqd: [nsqd] });
    // Nothing answers this topic; the request waits.
    const pending = firstValueFrom(c.send(`${P}-nobody-${Date.now()}`, 1)).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await c.close();
    const error = (await pending) as Error & { code?: string };
    expect(Date.now() - started).toBeLessThan(1000);
    expect(error.code).toBe('ERR_NSQ_CLIENT_CLOSED');
    expect(error.message).toMatch(/closed while the request on topic .* waited/);
  });
});

describe('Nest scenario: custom codecs on both legs', () => {
  // A codec that no default would decode: base64 of the JSON, both ways.
  const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');
  const decode = (b: Buffer | string) => JSON.parse(Buffer.from(b.toString(), 'base64').toString());
  let hybrid: HybridApp;
  let codecClient: ClientNsq;

  beforeAll(async () => {
    hybrid = await startHybrid([EchoController], {
      nsqd: [nsqd],
      deserializer: { deserialize: (value) => ({ pattern: '', data: decode(value as Buffer) }) },
      serializer: { serialize: (packet) => encode(packet) },
    });
    codecClient = new ClientNsq({
      nsqd: [nsqd],
      serializer: { serialize: (packet) => encode(packet.data) },
      deserializer: { deserialize: (value) => decode(value as string) },
    });
  });
  afterAll(async () => {
    await codecClient.close();
    await hybrid.close();
  });

  it('a request and its reply go through the custom serializer and deserializer', async () => {
    const reply = await firstValueFrom(
      codecClient.send(`${P}-echo`, { deep: [1, 'two'] }).pipe(timeout(10_000)),
    );
    expect(reply).toEqual({ deep: [1, 'two'] });
  });

  it('an event goes through them too', async () => {
    const before = events.length;
    await lastValueFrom(codecClient.emit(`${P}-event`, { coded: true }));
    await waitFor(() => events.length > before, 'the coded event');
    expect(events.at(-1)).toEqual({ coded: true });
  });
});
