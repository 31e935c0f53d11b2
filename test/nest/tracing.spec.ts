import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { context, propagation, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { lastValueFrom } from 'rxjs';
import { ClientNsq, NsqContext, ServerNsq } from '../../lib/index.js';
import { decodeFrame, encodeFrame } from '../../lib/nest/payload.js';
import { loadOtelApi } from '../../lib/nest/tracing.js';
import { sharedNsq, uniqueName, waitFor } from '../harness/nsq.js';

const { nsqd } = sharedNsq();
const T = uniqueName('trace');

const exporter = new InMemorySpanExporter();
const spans = () => exporter.getFinishedSpans();
const named = (name: string) => spans().filter((s) => s.name === name);
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const waitForSpans = (name: string, count: number) =>
  waitFor(() => named(name).length >= count, `${count} span(s) named ${name}`);

/** What the untraced raw handler received, byte for byte. */
const rawBodies: Buffer[] = [];
/** Set in beforeAll: the client service A's handler publishes onward with. */
let onward: ClientNsq;

@Controller()
class ServiceA {
  @EventPattern<string>(`${T}-in/a`)
  in() {}

  @EventPattern<string>(`${T}-fail/a`, { requeueDelay: 0, backoff: false })
  fail(@Ctx() ctx: NsqContext) {
    if (ctx.getMessage().attempts === 1) throw new RpcException('first attempt fails');
  }

  @EventPattern<string>(`${T}-hop1/a`)
  async hop(@Payload() data: { n: number }) {
    await lastValueFrom(onward.emit(`${T}-hop2`, { n: data.n + 1 }));
  }

  @EventPattern<string>(`${T}-raw/a`, { raw: true })
  raw() {}

  @MessagePattern<string>(`${T}-sum/a`)
  sum(@Payload() data: number[]) {
    return data.reduce((a, b) => a + b, 0);
  }

  @MessagePattern<string>(`${T}-bad/a`)
  bad() {
    throw new Error('cannot answer');
  }
}

@Controller()
class ServiceB {
  @EventPattern<string>(`${T}-hop2/b`)
  hop2() {}
}

@Controller()
class Untraced {
  @EventPattern<string>(`${T}-plain/c`, { raw: true })
  plain(@Payload() body: Buffer) {
    rawBodies.push(body);
  }
}

@Module({ controllers: [ServiceA] })
class ModuleA {}
@Module({ controllers: [ServiceB] })
class ModuleB {}
@Module({ controllers: [Untraced] })
class ModuleUntraced {}

async function start(module: unknown, tracing: boolean): Promise<INestMicroservice> {
  const app = await NestFactory.createMicroservice(module as never, {
    strategy: new ServerNsq({ nsqd: [nsqd], tracing }),
    logger: false,
  });
  await app.listen();
  return app;
}

describe('OpenTelemetry tracing', () => {
  const apps: INestMicroservice[] = [];
  let client: ClientNsq;
  let plainClient: ClientNsq;

  beforeAll(async () => {
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
    );
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    onward = new ClientNsq({ nsqd: [nsqd], tracing: true });
    client = new ClientNsq({ nsqd: [nsqd], tracing: true });
    plainClient = new ClientNsq({ nsqd: [nsqd] });
    apps.push(await start(ModuleA, true), await start(ModuleB, true));
    apps.push(await start(ModuleUntraced, false));
  });
  afterAll(async () => {
    await Promise.all([client.close(), plainClient.close(), onward.close()]);
    await Promise.all(apps.map((app) => app.close()));
    trace.disable();
    context.disable();
    propagation.disable();
  });
  beforeEach(() => exporter.reset());

  it('gives an emit a PRODUCER span and its handler a CONSUMER span in the same trace', async () => {
    await lastValueFrom(client.emit(`${T}-in`, { hello: 'world' }));
    await waitForSpans(`process ${T}-in`, 1);
    const [producer] = named(`publish ${T}-in`);
    const [consumer] = named(`process ${T}-in`);
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(producer.attributes).toEqual({
      'messaging.system': 'nsq',
      'messaging.destination.name': `${T}-in`,
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
    });
    expect(producer.status.code).toBe(SpanStatusCode.UNSET);
    expect(consumer.kind).toBe(SpanKind.CONSUMER);
    expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(parentOf(consumer)).toBe(producer.spanContext().spanId);
    expect(consumer.attributes).toMatchObject({
      'messaging.system': 'nsq',
      'messaging.destination.name': `${T}-in`,
      'messaging.consumer.group.name': 'a',
      'messaging.operation.type': 'process',
      'messaging.nsq.message.attempts': 1,
    });
    expect(consumer.attributes['messaging.message.id']).toMatch(/^[0-9a-f]{16}$/);
    expect(consumer.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('continues the caller’s trace: an emit inside an active span is its child', async () => {
    const tracer = trace.getTracer('test');
    const root = tracer.startSpan('request');
    await context.with(trace.setSpan(context.active(), root), () =>
      lastValueFrom(client.emit(`${T}-in`, 1)),
    );
    root.end();
    await waitForSpans(`process ${T}-in`, 1);
    const [producer] = named(`publish ${T}-in`);
    expect(parentOf(producer)).toBe(root.spanContext().spanId);
    expect(named(`process ${T}-in`)[0].spanContext().traceId).toBe(root.spanContext().traceId);
  });

  it('marks a handler that throws with error status; the retry is a span of its own', async () => {
    await lastValueFrom(client.emit(`${T}-fail`, { x: 1 }));
    await waitForSpans(`process ${T}-fail`, 2);
    const [first, second] = named(`process ${T}-fail`).sort(
      (a, b) =>
        (a.attributes['messaging.nsq.message.attempts'] as number) -
        (b.attributes['messaging.nsq.message.attempts'] as number),
    );
    expect(first.status).toEqual({ code: SpanStatusCode.ERROR, message: 'first attempt fails' });
    expect(first.events.map((e) => e.name)).toEqual(['exception']);
    expect(first.attributes['error.type']).toBe('_OTHER');
    expect(second.status.code).toBe(SpanStatusCode.UNSET);
    expect(second.attributes['messaging.nsq.message.attempts']).toBe(2);
    const producer = named(`publish ${T}-fail`)[0];
    for (const s of [first, second]) expect(parentOf(s)).toBe(producer.spanContext().spanId);
  });

  it('carries the trace on across two services when a handler emits onward', async () => {
    await lastValueFrom(client.emit(`${T}-hop1`, { n: 1 }));
    await waitForSpans(`process ${T}-hop2`, 1);
    await waitForSpans(`process ${T}-hop1`, 1);
    const [publish1] = named(`publish ${T}-hop1`);
    const [process1] = named(`process ${T}-hop1`);
    const [publish2] = named(`publish ${T}-hop2`);
    const [process2] = named(`process ${T}-hop2`);
    const traceId = publish1.spanContext().traceId;
    for (const s of [process1, publish2, process2]) expect(s.spanContext().traceId).toBe(traceId);
    expect(parentOf(process1)).toBe(publish1.spanContext().spanId);
    expect(parentOf(publish2)).toBe(process1.spanContext().spanId);
    expect(parentOf(process2)).toBe(publish2.spanContext().spanId);
    expect(process2.attributes['messaging.consumer.group.name']).toBe('b');
  });

  it('continues the trace to a raw handler too (the frame is read for it)', async () => {
    await lastValueFrom(client.emit(`${T}-raw`, { r: 1 }));
    await waitForSpans(`process ${T}-raw`, 1);
    const [consumer] = named(`process ${T}-raw`);
    expect(parentOf(consumer)).toBe(named(`publish ${T}-raw`)[0].spanContext().spanId);
  });

  it('traces a request: a send PRODUCER span and the handler’s CONSUMER span', async () => {
    await expect(lastValueFrom(client.send(`${T}-sum`, [1, 2, 3]))).resolves.toBe(6);
    await waitForSpans(`process ${T}-sum`, 1);
    const [producer] = named(`send ${T}-sum`);
    const [consumer] = named(`process ${T}-sum`);
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(producer.attributes['messaging.operation.name']).toBe('send');
    expect(parentOf(consumer)).toBe(producer.spanContext().spanId);
    expect(consumer.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('marks a request handler that fails (answered with an error) with error status', async () => {
    // Nest's exception filter has made the handler's Error `Internal server error` (and logged it).
    await expect(lastValueFrom(client.send(`${T}-bad`, 1))).rejects.toBeDefined();
    await waitForSpans(`process ${T}-bad`, 1);
    const [consumer] = named(`process ${T}-bad`);
    expect(consumer.status.code).toBe(SpanStatusCode.ERROR);
    expect(consumer.status.message).toBe('Internal server error');
  });

  it('with tracing off: no spans, and a plain emit’s body is its JSON, unframed', async () => {
    const root = trace.getTracer('test').startSpan('caller');
    await context.with(trace.setSpan(context.active(), root), () =>
      lastValueFrom(plainClient.emit(`${T}-plain`, { plain: true })),
    );
    root.end();
    await waitFor(() => rawBodies.length === 1, 'the plain body');
    expect(rawBodies[0].toString()).toBe(JSON.stringify({ plain: true }));
    expect(spans().map((s) => s.name)).toEqual(['caller']);
  });

  it('with tracing on but no sampled span, the body stays plain too', async () => {
    trace.disable(); // no SDK registered: spans are not recording, nothing to propagate
    const unsampled = new ClientNsq({ nsqd: [nsqd], tracing: true });
    try {
      await lastValueFrom(unsampled.emit(`${T}-plain`, 'text'));
      await waitFor(() => rawBodies.length === 2, 'the second plain body');
      expect(rawBodies[1].toString()).toBe('text');
    } finally {
      await unsampled.close();
      trace.setGlobalTracerProvider(
        new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
      );
    }
  });
});

describe('trace context in the frame header', () => {
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

  it('reads a trace back as a map of strings', () => {
    const body = encodeFrame({ trace: { traceparent, tracestate: 'a=1' } }, '{}');
    expect(decodeFrame(body).header?.trace).toEqual({ traceparent, tracestate: 'a=1' });
  });

  it.each([
    ['not a map', 'x'],
    ['a non-string value', { traceparent: 1 }],
    ['a value over 1024 characters', { tracestate: 'x'.repeat(1025) }],
    ['a key over 64 characters', { ['k'.repeat(65)]: 'v' }],
    ['over 8 fields', Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'v']))],
  ])('drops a trace that is %s, and keeps the message', (_what, trace) => {
    const body = encodeFrame({ headers: { a: 'b' }, trace } as never, '{"ok":1}');
    const { header, payload } = decodeFrame(body);
    expect(header?.trace).toBeUndefined();
    expect(header?.headers).toEqual({ a: 'b' });
    expect(payload.toString()).toBe('{"ok":1}');
  });

  it('names the package to install when @opentelemetry/api is missing', async () => {
    await expect(loadOtelApi('ServerNsq', '@opentelemetry/not-installed')).rejects.toThrow(
      'ServerNsq: option tracing needs the package @opentelemetry/not-installed; install it (npm install @opentelemetry/not-installed)',
    );
  });
});
