// Shared by the fault suite: real Nest apps around ServerNsq / ClientNsq, timing, figures, GC.
import type { INestMicroservice, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { lastValueFrom } from 'rxjs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ClientNsq, NsqModule, ServerNsq, type NsqServerOptions } from '../../lib/index.js';
import type { Consumer } from '../../lib/core.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Prints a measured figure so a run shows what each guarantee was measured at; the same
 * figures are asserted by the test that prints them.
 */
export function figure(name: string, values: Record<string, unknown>): void {
  console.log(`[fault figure] ${name}: ${JSON.stringify(values)}`);
}

/** A ServerNsq microservice with `controllers`, listening, logger off. */
export async function startServer(
  controllers: Type<unknown>[],
  options: NsqServerOptions,
  beforeListen?: (server: ServerNsq) => void,
): Promise<{ app: INestMicroservice; server: ServerNsq; consumers: () => Consumer[] }> {
  const moduleRef = await Test.createTestingModule({ controllers }).compile();
  const server = new ServerNsq(options);
  const app = moduleRef.createNestMicroservice({ strategy: server });
  app.useLogger(false);
  beforeListen?.(server);
  await app.listen();
  return { app, server, consumers: () => server.unwrap<Consumer[]>() };
}

/** A Nest app whose ClientNsq comes from NsqModule.forRoot, as an application would get it. */
export async function startClient(
  options: Parameters<typeof NsqModule.forRoot>[0],
): Promise<{ client: ClientNsq; close: () => Promise<void>; get: () => ClientNsq }> {
  const moduleRef = await Test.createTestingModule({
    imports: [NsqModule.forRoot(options)],
  }).compile();
  // compile() installs Nest's testing logger again, which prints errors: keep all apps quiet.
  moduleRef.useLogger(false);
  await moduleRef.init();
  return {
    client: moduleRef.get(ClientNsq),
    get: () => moduleRef.get(ClientNsq),
    close: () => moduleRef.close(),
  };
}

/** Emits and waits for nsqd's acknowledgement. */
export function emit(client: ClientNsq, topic: string, data: unknown): Promise<void> {
  return lastValueFrom(client.emit(topic, data));
}

/** How long `fn` took and how it settled. */
export async function timed<T>(
  fn: () => Promise<T>,
): Promise<{ ms: number; value?: T; error?: Error }> {
  const start = performance.now();
  try {
    const value = await fn();
    return { ms: performance.now() - start, value };
  } catch (error) {
    return { ms: performance.now() - start, error: error as Error };
  }
}

/** Runs `attempt`, which must reject, and returns the error. */
export async function failure(attempt: () => Promise<unknown>): Promise<Error> {
  try {
    await attempt();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

// A forced GC without running jest under --expose-gc: contexts created after the flag is set
// get a `gc` global.
setFlagsFromString('--expose-gc');
const forceGc = runInNewContext('gc') as () => void;

/** heapUsed after full collections, MB. */
export async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    forceGc();
    await sleep(50);
  }
  return process.memoryUsage().heapUsed / 2 ** 20;
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
