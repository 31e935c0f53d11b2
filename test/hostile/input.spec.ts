// Bad input gets a clear error and loses nothing: numbers past what timers and nsqd accept,
// secrets never printed, unknown options refused with a did-you-mean, a message near nsqd's size
// limit dead-lettered (cut to fit) instead of looping, reply topics only of the client's form,
// malformed dead letters and bodies.
import { inspect } from 'node:util';
import { Controller, type INestMicroservice } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { lastValueFrom } from 'rxjs';
import {
  ClientNsq,
  Consumer,
  Producer,
  ServerNsq,
  parseDeadLetter,
  type NsqDeadLetter,
} from '../../lib/index.js';
import { decodeBody, NsqDecodeError } from '../../lib/nest/payload.js';
import { lookupTopic } from '../../lib/lookup/lookupd.js';
import { LookupdProcess, sharedNsq, uniqueName, waitFor } from '../harness/nsq.js';

const { nsqd, api } = sharedNsq();
const noop = () => undefined;

describe('numbers past what timers and nsqd accept', () => {
  it.each([
    [{ connectTimeout: 2 ** 31 }, /connectTimeout must be an integer 1\.\.2147483647 \(ms\)/],
    [{ lookupdPollInterval: 2 ** 33 }, /lookupdPollInterval must be an integer 10\.\.2147483647/],
    [{ heartbeatInterval: 2 ** 31 }, /heartbeatInterval must be an integer 1000\.\.2147483647/],
    [{ drainTimeout: 1e21 }, /drainTimeout must be an integer 0\.\.2147483647/],
    [{ requeueDelay: 1e21 }, /requeueDelay must be an integer 0\.\.3600000 \(ms\)/],
  ])('%j is refused', (options, message) => {
    expect(() => new Consumer('t', 'c', noop, { nsqd: [nsqd], ...options })).toThrow(message);
  });

  it("a requeueDelay function returning 1e21 is clamped to nsqd's limit: the connection stays", async () => {
    const topic = uniqueName('req');
    let calls = 0;
    const disconnects: unknown[] = [];
    const consumer = new Consumer(
      topic,
      'c',
      () => {
        calls++;
        throw new Error('fail');
      },
      { nsqd: [nsqd], requeueDelay: () => 1e21, backoff: false },
    );
    consumer.on('disconnected', (a) => disconnects.push(a));
    await consumer.start();
    await api.publish(topic, 'x');
    await waitFor(async () => (await api.channelStats(topic, 'c'))?.deferred_count === 1, 'REQ');
    expect(calls).toBe(1);
    expect(disconnects).toEqual([]);
    await consumer.close();
  });
});

describe('secrets', () => {
  const secret = 'hunter2-do-not-print';

  it('a wrongly typed authSecret is not printed in the error', () => {
    const attempt = () => new Producer({ nsqd: [nsqd], authSecret: 12345678 as unknown as string });
    expect(attempt).toThrow(/authSecret must be a non-empty string, got a number \(not shown/);
    expect(attempt).not.toThrow(/12345678/);
  });

  it('inspecting a client, a server, a producer or a consumer never shows it', () => {
    const things = [
      new ClientNsq({ nsqd: [nsqd], authSecret: secret }),
      new ServerNsq({ nsqd: [nsqd], authSecret: secret }),
      new Producer({ nsqd: [nsqd], authSecret: secret }),
      new Consumer('t', 'c', noop, { nsqd: [nsqd], authSecret: secret }),
    ];
    for (const thing of things) {
      expect(inspect(thing, { depth: Infinity, showHidden: false })).not.toContain(secret);
      expect(
        JSON.stringify(thing, (_k, v: unknown) => (typeof v === 'bigint' ? 0 : v)),
      ).not.toContain(secret);
    }
  });
});

describe('options nobody reads', () => {
  it.each([
    [
      () => new Consumer('t', 'c', noop, { nsqd: [nsqd], maxInflight: 5 } as never),
      /Consumer\(t\/c\): unknown option maxInflight; did you mean maxInFlight\?/,
    ],
    [
      () => new Producer({ nsqd: [nsqd], batchSize: 5 } as never),
      /Producer: unknown option batchSize/,
    ],
    [
      () => new ServerNsq({ nsqd: [nsqd], deadletterTopic: 'x' } as never),
      /unknown option deadletterTopic; did you mean deadLetterTopic\?/,
    ],
    [
      () => new ClientNsq({ nsqd: [nsqd], requestTimout: 5 } as never),
      /unknown option requestTimout; did you mean requestTimeout\?/,
    ],
    [
      () => new ClientNsq({ nsqd: [nsqd], maxReconnectDelay: 5 } as never),
      /maxReconnectDelay must be renamed: use maxRetryDelay/,
    ],
    // An option of the other side says where it belongs.
    [
      () => new ClientNsq({ nsqd: [nsqd], maxInflight: 5 } as never),
      /ClientNsq: unknown option maxInflight; maxInFlight is an option of ServerNsq, not of ClientNsq/,
    ],
    [
      () => new ServerNsq({ nsqd: [nsqd], requestTimeout: 5 } as never),
      /ServerNsq: unknown option requestTimeout; requestTimeout is an option of ClientNsq/,
    ],
    [
      () => new Producer({ nsqd: [nsqd], maxInFlight: 5 } as never),
      /Producer: unknown option maxInFlight; maxInFlight is an option of Consumer, not of Producer/,
    ],
    [
      () => new Consumer('t', 'c', noop, { nsqd: [nsqd], maxBatchCount: 5 } as never),
      /unknown option maxBatchCount; maxBatchCount is an option of Producer/,
    ],
  ])('%#: refused with a did-you-mean', (make, message) => {
    expect(make).toThrow(message);
  });
});

@Controller()
class TypoController {
  @EventPattern<string>('typo/c', { maxInflight: 3 } as never)
  handle() {
    return undefined;
  }
}

describe('handler extras nobody reads', () => {
  it('a typo in @EventPattern extras fails listen() with a did-you-mean', async () => {
    const moduleRef = await Test.createTestingModule({ controllers: [TypoController] }).compile();
    const app = moduleRef.createNestMicroservice({
      strategy: new ServerNsq({ nsqd: [nsqd] }),
      logger: false,
    });
    await expect(app.listen()).rejects.toThrow(
      /ServerNsq: handler typo\/c: unknown option maxInflight; did you mean maxInFlight\?/,
    );
    await app.close();
  });

  it('listen() against no reachable nsqd rejects with the connection error code', async () => {
    const consumer = new Consumer('t', 'c', noop, { nsqd: ['127.0.0.1:1'] });
    await expect(consumer.start()).rejects.toMatchObject({
      code: 'ECONNREFUSED',
      message: expect.stringMatching(/could not subscribe on any nsqd: .*ECONNREFUSED/),
    });
  });
});

const letters: NsqDeadLetter[] = [];
let bigCalls = 0;
@Controller()
class BigController {
  @EventPattern<string>(`${'big'}-${process.pid}/c`, {
    maxAttempts: 1,
    deadLetterTopic: `big-dead-${process.pid}`,
  })
  big(@Payload() _data: unknown) {
    bigCalls++;
    throw new Error('always');
  }

  @EventPattern<string>(`big-dead-${process.pid}/inspect`, { raw: true })
  dead(@Payload() body: Buffer) {
    letters.push(parseDeadLetter(body)!);
  }

  @MessagePattern<string>(`forged-${process.pid}/c`)
  answer() {
    return 'should not be sent anywhere';
  }
}

describe('messages and requests from hostile producers', () => {
  let app: INestMicroservice;
  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ controllers: [BigController] }).compile();
    app = moduleRef.createNestMicroservice({
      strategy: new ServerNsq({ nsqd: [nsqd], requeueDelay: 0, backoff: false }),
      logger: false,
    });
    await app.listen();
  });
  afterAll(() => app.close());

  it("a message near nsqd's 1 MiB limit is dead-lettered, cut to fit, once: no loop", async () => {
    const body = Buffer.alloc(1_048_476, 0x61); // 'aaa...': valid text, 100 bytes under 1 MiB
    await api.publish(`big-${process.pid}`, body);
    await waitFor(() => letters.length === 1, 'the dead letter', 15_000);
    expect(letters[0]).toMatchObject({ truncated: true, bodyBytes: body.length, attempts: 1 });
    expect(letters[0].body.length).toBeLessThan(body.length);
    expect(body.subarray(0, letters[0].body.length).equals(letters[0].body)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(bigCalls).toBe(1);
    const stats = await api.channelStats(`big-${process.pid}`, 'c');
    expect(stats).toMatchObject({ depth: 0, in_flight_count: 0, requeue_count: 0 });
  });

  it('a request whose replyTo is not a reply topic is not answered there', async () => {
    const target = `victim-${process.pid}`;
    await api.createTopic(target, 'watch');
    const forged = `#nsq/1 ${JSON.stringify({ id: 'x', replyTo: target, deadline: Date.now() + 60_000 })}\n"hi"`;
    await api.publish(`forged-${process.pid}`, forged);
    await waitFor(
      async () => (await api.channelStats(`forged-${process.pid}`, 'c'))?.message_count === 1,
      'the forged request handled',
    );
    await new Promise((r) => setTimeout(r, 300));
    expect((await api.channelStats(target, 'watch'))?.message_count).toBe(0);
  });
});

describe('port mix-ups', () => {
  it("nsqlookupd's TCP port given as its HTTP address gets an error that says so", async () => {
    const lookupd = await LookupdProcess.start();
    try {
      await expect(lookupTopic(lookupd.tcpAddress, 't')).rejects.toThrow(
        /does not speak HTTP; is this nsqlookupd's TCP port \(4160\) instead of its HTTP port \(4161\)\?/,
      );
    } finally {
      await lookupd.stop();
    }
  });

  it("nsqd's HTTP port given as its TCP address gets an error that says so", async () => {
    const httpPort = new URL(api.httpUrl).host;
    const producer = new Producer({ nsqd: [httpPort] });
    await expect(producer.publish('t', 'x')).rejects.toThrow(
      /answered with HTTP: is it nsqd's HTTP port \(4151 by default\) instead of its TCP port/,
    );
    await producer.close();
  });
});

describe('malformed dead letters and bodies', () => {
  it('invalid UTF-8 inside a JSON body is undecodable, not silently replaced', () => {
    const body = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3]), Buffer.from('"}')]);
    expect(() => decodeBody(body)).toThrow(NsqDecodeError);
    expect(() => decodeBody(body)).toThrow(/not valid UTF-8/);
  });

  it('parseDeadLetter returns undefined for a malformed header', () => {
    expect(parseDeadLetter(Buffer.from('{"nsqDeadLetter":1,garbage\nbody'))).toBeUndefined();
    expect(parseDeadLetter(Buffer.from('plain'))).toBeUndefined();
  });
});

describe("ClientNsq given nsqlookupd's TCP port", () => {
  it('says so when a request asks whether anything consumes its topic', async () => {
    const lookupd = await LookupdProcess.start();
    const client = new ClientNsq({
      nsqd: [nsqd],
      lookupd: [lookupd.tcpAddress],
      requestTimeout: 3000,
    });
    const errors: Error[] = [];
    client.on('error', (e: Error) => errors.push(e));
    try {
      // The check then asks nsqd's HTTP API at its TCP port + 1 (4151 beside 4150); the test
      // nsqd's ports are not neighbours, so here the request ends at its timeout.
      await expect(lastValueFrom(client.send(`nobody-${process.pid}`, 1))).rejects.toMatchObject({
        code: expect.stringMatching(/^ERR_NSQ_(NO_CONSUMER|REQUEST_TIMEOUT)$/),
      });
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/could not ask nsqlookupd.*TCP port \(4160\)/),
      ]);
    } finally {
      await client.close();
      await lookupd.stop();
    }
  });
});
