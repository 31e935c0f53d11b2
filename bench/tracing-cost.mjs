// What `tracing: true` costs: emit and consume rates of the built library (dist/) with tracing
// off, on without an OpenTelemetry SDK (spans do not record), and on with an SDK that records
// every span (BatchSpanProcessor, an exporter that drops them). Each mode runs in a fresh process
// on its own nsqd; modes alternate over rounds.
//
//   npm run build && node bench/tracing-cost.mjs [messages=50000] [rounds=3]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import 'reflect-metadata';
import { NsqdProcess, stopAll } from '../scripts/nsq-servers.mjs';
import { OUTSTANDING, MAX_IN_FLIGHT, payload } from './common.mjs';

const MODES = (process.env.TRACING_COST_MODES ?? 'off,on-no-sdk,on-sdk').split(',');

async function measure(mode, count) {
  const tracing = mode !== 'off';
  if (mode.startsWith('on-sdk')) {
    const { context, propagation, trace } = await import('@opentelemetry/api');
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
    const { BasicTracerProvider, BatchSpanProcessor } =
      await import('@opentelemetry/sdk-trace-base');
    const drop = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(drop)] }),
    );
    if (mode !== 'on-sdk-no-als')
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  }
  const { ClientNsq, ServerNsq } = await import('../dist/index.js');
  const { Controller, Module } = await import('@nestjs/common');
  const { NestFactory } = await import('@nestjs/core');
  const { EventPattern, Payload } = await import('@nestjs/microservices');
  const { lastValueFrom } = await import('rxjs');
  const nsqd = await NsqdProcess.start();
  try {
    const topic = 'cost';
    const client = new ClientNsq({ nsqd: [nsqd.tcpAddress], ...(tracing && { tracing }) });
    await client.connect();
    const warm = 2000;
    const emitAll = async (n, offset) => {
      let next = 0;
      const worker = async () => {
        while (next < n) await lastValueFrom(client.emit(topic, payload(offset + next++)));
      };
      await Promise.all(Array.from({ length: OUTSTANDING }, worker));
    };
    await emitAll(warm, 0);
    const t0 = performance.now();
    await emitAll(count, warm);
    const emitMs = performance.now() - t0;
    await client.close();

    let seen = 0;
    let done;
    const all = new Promise((resolve) => (done = resolve));
    class Handler {
      handle() {
        if (++seen === warm + count) done();
      }
    }
    const d = Object.getOwnPropertyDescriptor(Handler.prototype, 'handle');
    Payload()(Handler.prototype, 'handle', 0);
    EventPattern(`${topic}/c`)(Handler.prototype, 'handle', d);
    Controller()(Handler);
    class M {}
    Module({ controllers: [Handler] })(M);
    const app = await NestFactory.createMicroservice(M, {
      strategy: new ServerNsq({
        nsqd: [nsqd.tcpAddress],
        maxInFlight: MAX_IN_FLIGHT,
        ...(tracing && { tracing }),
      }),
      logger: false,
    });
    const t1 = performance.now();
    await app.listen();
    await all;
    const consumeMs = performance.now() - t1;
    await app.close();
    return {
      mode,
      emitPerS: Math.round(count / (emitMs / 1000)),
      consumePerS: Math.round((warm + count) / (consumeMs / 1000)),
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
    };
  } finally {
    await nsqd.destroy();
    await stopAll();
  }
}

if (process.env.TRACING_COST_MODE) {
  const result = await measure(process.env.TRACING_COST_MODE, Number(process.argv[2]));
  process.send(result);
  process.exit(0);
} else {
  const count = Number(process.argv[2] ?? 50_000);
  const rounds = Number(process.argv[3] ?? 3);
  const rows = [];
  for (let r = 0; r < rounds; r++) {
    for (const mode of MODES) {
      const child = fork(fileURLToPath(import.meta.url), [String(count)], {
        env: { ...process.env, TRACING_COST_MODE: mode },
      });
      const row = await new Promise((resolve, reject) => {
        child.on('message', resolve);
        child.on('exit', (code) => code && reject(new Error(`${mode} exited with ${code}`)));
      });
      console.log(JSON.stringify(row));
      rows.push(row);
    }
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const mode of MODES) {
    const mine = rows.filter((r) => r.mode === mode);
    console.log(
      `${mode.padEnd(10)} emit ${median(mine.map((r) => r.emitPerS))}/s  consume ${median(mine.map((r) => r.consumePerS))}/s (median of ${mine.length})`,
    );
  }
}
