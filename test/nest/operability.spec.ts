// What an operator sees: log lines (one per failure, the right level, naming the public class),
// events forwarded by ServerNsq and ClientNsq, metrics and their Prometheus text, health that
// checks nsqd, and a shutdown that says what it waits for.
import { readFile } from 'node:fs/promises';
import { Controller, type INestMicroservice, type LoggerService } from '@nestjs/common';
import { Ctx, EventPattern, Payload, RpcException } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { lastValueFrom } from 'rxjs';
import {
  ClientNsq,
  NsqContext,
  NsqHealthIndicator,
  NsqMessage,
  ServerNsq,
  prometheusText,
  type BackoffChange,
} from '../../lib/index.js';
import { freePort, sharedNsq, uniqueName, waitFor } from '../harness/nsq.js';

const { nsqd, lookupd, api } = sharedNsq();
const T = uniqueName('ops');

interface Line {
  level: string;
  context?: string;
  text: string;
}
/** Every line any Nest Logger writes, with its level and context. */
const lines: Line[] = [];
const capture =
  (level: string) =>
  (message: unknown, ...rest: unknown[]) => {
    const context = typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : undefined;
    const text = message instanceof Error ? message.message : String(message);
    lines.push({ level, context, text });
  };
const logger: LoggerService = {
  log: capture('log'),
  error: capture('error'),
  warn: capture('warn'),
  debug: capture('debug'),
  verbose: capture('verbose'),
};
const linesAbout = (needle: string) => lines.filter((l) => l.text.includes(needle));

const attempts: Record<string, number> = {};
const count = (key: string) => (attempts[key] = (attempts[key] ?? 0) + 1);

@Controller()
class OpsController {
  @EventPattern<string>(`${T}-unknown/c`, { requeueDelay: 0, backoff: false })
  unknown(@Payload() data: { tag: string }, @Ctx() ctx: NsqContext) {
    count('unknown');
    if (ctx.getMessage().attempts === 1) throw new Error(`plain failure ${data.tag}`);
  }

  @EventPattern<string>(`${T}-rpc/c`, { requeueDelay: 0, backoff: false })
  rpc(@Payload() data: { tag: string }, @Ctx() ctx: NsqContext) {
    count('rpc');
    if (ctx.getMessage().attempts === 1) throw new RpcException(`rpc failure ${data.tag}`);
  }

  @EventPattern<string>(`${T}-metrics/c`, { requeueDelay: 0, backoff: false })
  metrics(@Payload() data: { i: number }, @Ctx() ctx: NsqContext) {
    count('metrics');
    if (data.i < 2 && ctx.getMessage().attempts === 1) throw new RpcException('first try fails');
  }

  @EventPattern<string>(`${T}-give/c`, { maxAttempts: 1, deadLetterTopic: `${T}-dlq` })
  give() {
    count('give');
    throw new RpcException('always fails');
  }

  @EventPattern<string>(`${T}-dlq/inspect`, { raw: true })
  inspect() {
    count('inspect');
  }

  @EventPattern<string>(`${T}-backoff/c`, {
    requeueDelay: 0,
    backoff: { multiplier: 50, window: 1 },
  })
  backoff(@Payload() data: string, @Ctx() ctx: NsqContext) {
    count('backoff');
    if (data === 'x' && ctx.getMessage().attempts < 3) throw new RpcException('down for now');
  }
}

describe('operability: logs, events, metrics, health', () => {
  let app: INestMicroservice;
  let server: ServerNsq;
  let client: ClientNsq;
  const failed: { pattern: string; id: string; error: unknown }[] = [];
  const gaveUp: { pattern: string; id: string }[] = [];
  const backoff: BackoffChange[] = [];

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ controllers: [OpsController] }).compile();
    server = new ServerNsq({ nsqd: [nsqd] });
    server.on('failed', (message: NsqMessage, pattern: string, error: unknown) =>
      failed.push({ pattern, id: message.id, error }),
    );
    server.on('gaveUp', (message: NsqMessage, pattern: string) =>
      gaveUp.push({ pattern, id: message.id }),
    );
    server.on('backoff', (change: BackoffChange, pattern: string) => {
      if (pattern === `${T}-backoff/c`) backoff.push(change);
    });
    app = moduleRef.createNestMicroservice({ strategy: server, logger });
    await app.listen();
    client = new ClientNsq({ nsqd: [nsqd] });
  });
  afterAll(async () => {
    await client.close();
    await app.close();
  });

  it('logs one line per handler failure: Nest logs an unknown error, NSQ adds a debug line', async () => {
    await lastValueFrom(client.emit(`${T}-unknown`, { tag: 'u1' }));
    await waitFor(() => attempts.unknown === 2, 'a redelivery');
    const seen = linesAbout('plain failure u1');
    expect(seen.filter((l) => l.level !== 'debug')).toEqual([
      expect.objectContaining({ level: 'error', context: 'RpcExceptionsHandler' }),
    ]);
    expect(linesAbout(`Handler for ${T}-unknown/c failed`)).toEqual([]);
  });

  it('warns at listen() of patterns whose given-up messages would be dropped, not of dead-letter readers', () => {
    const dropped = (pattern: string) =>
      linesAbout(`${pattern}: a message given up`).filter((l) => l.level === 'warn');
    expect(dropped(`${T}-unknown/c`)).toHaveLength(1);
    expect(dropped(`${T}-give/c`)).toHaveLength(0); // has a deadLetterTopic
    expect(dropped(`${T}-dlq/inspect`)).toHaveLength(0); // reads this server's dead letters
  });

  it('logs one warning for an RpcException, which Nest does not log', async () => {
    await lastValueFrom(client.emit(`${T}-rpc`, { tag: 'r1' }));
    await waitFor(() => attempts.rpc === 2, 'a redelivery');
    const seen = linesAbout('rpc failure r1');
    expect(seen).toEqual([expect.objectContaining({ level: 'warn', context: 'ServerNsq' })]);
    expect(seen[0].text).toMatch(
      new RegExp(`Handler for ${T}-rpc/c failed on message \\w+ \\(attempt 1\\)`),
    );
  });

  it("forwards 'failed' and 'gaveUp' with the message and the pattern", async () => {
    await waitFor(() => failed.some((f) => f.pattern === `${T}-rpc/c`), "a 'failed' event");
    const f = failed.find((x) => x.pattern === `${T}-rpc/c`)!;
    expect(f.id).toMatch(/^[0-9a-f]{16}$/);
    await lastValueFrom(client.emit(`${T}-give`, 'x'));
    await waitFor(() => gaveUp.length === 1, "a 'gaveUp' event");
    expect(gaveUp[0].pattern).toBe(`${T}-give/c`);
  });

  it("forwards 'backoff' as the consumer pauses, tests and recovers", async () => {
    await lastValueFrom(client.emit(`${T}-backoff`, 'x'));
    await waitFor(() => attempts.backoff >= 3, 'the third attempt, which succeeds');
    // Each success while testing steps a level down; messages keep coming until level 0.
    for (let i = 0; i < 10 && backoff.at(-1)?.mode !== 'normal'; i++) {
      await lastValueFrom(client.emit(`${T}-backoff`, `ok${i}`));
      await waitFor(() => attempts.backoff >= 4 + i, `ok${i}`);
    }
    await waitFor(() => backoff.at(-1)?.mode === 'normal', 'backoff back to normal');
    const modes = backoff.map((c) => c.mode);
    expect(modes[0]).toBe('paused');
    expect(modes).toContain('testing');
    expect(backoff[0].pauseMs).toBe(50);
    expect(backoff.at(-1)).toEqual({ mode: 'normal', level: 0, pauseMs: 0 });
  });

  it('counts per pattern and per topic, and renders Prometheus text', async () => {
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => lastValueFrom(client.emit(`${T}-metrics`, { i }))),
    );
    const pattern = () => server.metrics().patterns.find((p) => p.pattern === `${T}-metrics/c`)!;
    await waitFor(() => pattern().finished === 10, '10 messages finished');
    expect(pattern()).toMatchObject({
      topic: `${T}-metrics`,
      channel: 'c',
      received: 12,
      finished: 10,
      requeued: 2,
      failed: 2,
      gaveUp: 0,
      deadLettered: 0,
      inFlight: 0,
      connections: 1,
      backoffLevel: 0,
    });
    expect(pattern().handlerSeconds.count).toBe(12);
    expect(pattern().rdy).toBeGreaterThan(0);
    const give = server.metrics().patterns.find((p) => p.pattern === `${T}-give/c`)!;
    expect(give).toMatchObject({ gaveUp: 1, deadLettered: 1, finished: 1 });
    expect(client.metrics().topics[`${T}-metrics`]).toEqual({ published: 10, failed: 0 });

    const text = prometheusText({ servers: [server], clients: [client] });
    const labels = `topic="${T}-metrics",channel="c"`;
    expect(text).toContain(`nsq_consumer_messages_received_total{${labels}} 12`);
    expect(text).toContain(`nsq_consumer_messages_requeued_total{${labels}} 2`);
    expect(text).toContain(`nsq_consumer_handler_duration_seconds_bucket{${labels},le="+Inf"} 12`);
    expect(text).toContain(`nsq_consumer_handler_duration_seconds_count{${labels}} 12`);
    expect(text).toContain(`nsq_producer_messages_published_total{topic="${T}-metrics"} 10`);
    expect(text).toContain('# TYPE nsq_consumer_handler_duration_seconds histogram');
    // Each family's HELP and TYPE once, however many series it has.
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
  });

  it('reports an nsqd that lookupd lists as discovered', async () => {
    const topic = `${T}-lookup`;
    await api.createTopic(topic);
    const discovered: string[] = [];
    const moduleRef = await Test.createTestingModule({ controllers: [] }).compile();
    const lookupServer = new ServerNsq({ lookupd: [lookupd] });
    lookupServer.on('discovered', (address: string, pattern: string) =>
      discovered.push(`${pattern}@${address}`),
    );
    const lookupApp = moduleRef.createNestMicroservice({ strategy: lookupServer, logger });
    // A handler registered by hand, as a controller's would be.
    lookupServer.addHandler(`${topic}/c`, async () => undefined, true);
    await lookupApp.listen();
    try {
      await waitFor(() => discovered.length === 1, "a 'discovered' event");
      expect(discovered[0]).toBe(`${topic}/c@${nsqd}`);
      expect(linesAbout(`nsqlookupd lists nsqd ${nsqd}`)).toEqual([
        expect.objectContaining({ level: 'log', context: 'ServerNsq' }),
      ]);
    } finally {
      await lookupApp.close();
    }
  });
});

describe('ClientNsq: nothing fails silently', () => {
  it('logs connect failures and failed emits nobody subscribed to, once per topic', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const client = new ClientNsq({ nsqd: [dead] });
    const moduleRef = await Test.createTestingModule({}).compile();
    const app = moduleRef.createNestApplication({ logger });
    await app.init();
    const failures: string[] = [];
    client.on('connectFailed', (address: string) => failures.push(address));
    const topic = `${T}-nowhere`;
    const before = lines.length;
    try {
      for (let i = 0; i < 50; i++) client.emit(topic, { i }); // fire and forget
      await waitFor(
        () => linesAbout(`emit to ${topic} failed`).length > 0,
        'a log line for the failed emits',
      );
      // A failure the caller awaits is the caller's to handle: no "nothing subscribed" line.
      await expect(lastValueFrom(client.emit(topic, 'awaited'))).rejects.toThrow(
        /No nsqd reachable/,
      );
      const ours = lines.slice(before).filter((l) => l.context === 'ClientNsq');
      const unobserved = ours.filter((l) => l.text.includes(`emit to ${topic} failed`));
      expect(unobserved).toHaveLength(1);
      expect(unobserved[0]).toMatchObject({ level: 'error' });
      expect(unobserved[0].text).toMatch(/nothing subscribed to its result: .*No nsqd reachable/);
      const connect = ours.filter((l) => l.text.startsWith(`Could not connect to nsqd ${dead}`));
      expect(connect.length).toBeGreaterThanOrEqual(1);
      expect(connect[0].level).toBe('warn');
      expect(failures[0]).toBe(dead);
    } finally {
      await client.close();
      await app.close();
    }
  });
});

describe('NsqHealthIndicator checks nsqd for a producer-only service', () => {
  it('is down when the nsqd of a client that never published is unreachable', async () => {
    const client = new ClientNsq({ nsqd: [`127.0.0.1:${await freePort()}`] });
    try {
      const result = await new NsqHealthIndicator(client).isHealthy('nsq');
      expect(result.nsq.status).toBe('down');
      expect(result.nsq.nsqd[0]).toMatchObject({ role: 'producer', connected: false });
      expect(result.nsq.nsqd[0].error).toMatch(/ECONNREFUSED/);
    } finally {
      await client.close();
    }
  });

  it('is up when the nsqd is reachable, connecting the client to find out', async () => {
    const client = new ClientNsq({ nsqd: [nsqd] });
    try {
      const result = await new NsqHealthIndicator(client).isHealthy('nsq');
      expect(result.nsq).toEqual({
        status: 'up',
        nsqd: [{ address: nsqd, role: 'producer', connected: true }],
      });
    } finally {
      await client.close();
    }
  });
});

describe('NsqHealthIndicator and a producer that failed over', () => {
  it('is up while one of its nsqd is connected, and shows the one that is down', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const client = new ClientNsq({ nsqd: [dead, nsqd] });
    try {
      await lastValueFrom(client.emit(`${T}-failover`, 'x')); // fails over to the live nsqd
      const result = await new NsqHealthIndicator(client).isHealthy('nsq');
      expect(result.nsq.status).toBe('up');
      expect(result.nsq.nsqd).toEqual([
        {
          address: dead,
          role: 'producer',
          connected: false,
          error: expect.stringMatching(/ECONNREFUSED/),
        },
        { address: nsqd, role: 'producer', connected: true },
      ]);
    } finally {
      await client.close();
    }
  });
});

describe('shutdown with a stuck handler', () => {
  it('says what it waits for, then what it handed back', async () => {
    const topic = `${T}-stuck`;
    let started = false;
    const server = new ServerNsq({ nsqd: [nsqd], drainTimeout: 1500 });
    server.addHandler(
      `${topic}/c`,
      () => {
        started = true;
        return new Promise(() => undefined); // never settles
      },
      true,
    );
    const moduleRef = await Test.createTestingModule({}).compile();
    const app = moduleRef.createNestMicroservice({ strategy: server, logger });
    await app.listen();
    await api.publish(topic, 'stuck');
    await waitFor(() => started, 'the handler to start');
    const before = lines.length;
    const t0 = Date.now();
    await app.close();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    const said = lines.slice(before).filter((l) => l.context === 'ServerNsq');
    expect(said.map((l) => l.text)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /closing: waiting up to \d+ ms more \(drainTimeout 1500\) for 1 message\(s\) in flight: \w{16}/,
        ),
        expect.stringMatching(
          /closing: drainTimeout \(1500 ms\) passed with 1 message\(s\) still unanswered, handed back to nsqd \(REQ\)/,
        ),
      ]),
    );
    await waitFor(
      async () => (await api.channelStats(topic, 'c'))?.requeue_count === 1,
      'the message back at nsqd',
    );
  });
});

describe('errors name the public class', () => {
  it('a typo in an address option is named, not reported as a missing address', () => {
    expect(() => new ServerNsq({ lookupds: [lookupd] } as never)).toThrow(
      /unknown option lookupds; did you mean lookupd\?/,
    );
    expect(() => new ClientNsq({ nsqds: [nsqd] } as never)).toThrow(
      /unknown option nsqds; did you mean nsqd\?/,
    );
  });

  it('a listen() failure names ServerNsq and the pattern, not an internal class', async () => {
    const server = new ServerNsq({ nsqd: [`127.0.0.1:${await freePort()}`] });
    server.addHandler(`${T}-nolisten/c`, async () => undefined, true);
    const error = await new Promise<unknown>((resolve) => void server.listen(resolve));
    expect((error as Error).message).toMatch(new RegExp(`^ServerNsq\\(${T}-nolisten/c\\) `));
    expect((error as Error).message).not.toMatch(/Consumer/);
  });
});

describe('what nsqd shows about a client', () => {
  it("sends the package's real version as user_agent", async () => {
    const { version } = JSON.parse(
      await readFile(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    const topic = `${T}-agent`;
    const server = new ServerNsq({ nsqd: [nsqd] });
    server.addHandler(`${topic}/c`, async () => undefined, true);
    await new Promise<unknown>((resolve) => void server.listen(resolve));
    try {
      const clients = (await api.channelStats(topic, 'c'))!.clients;
      expect(clients.map((c) => c.user_agent)).toEqual([`nestjs-nsq/${version}`]);
    } finally {
      await server.close();
    }
  });
});
