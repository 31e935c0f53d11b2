// A hybrid Nest app (HTTP + ServerNsq) for the ported scenarios of Nest's own transport suite,
// and a small HTTP client for its routes.
import type { INestApplication, INestMicroservice, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ServerNsq, type NsqServerOptions } from '../../../lib/index.js';

export interface HybridApp {
  app: INestApplication;
  server: ServerNsq;
  microservice: INestMicroservice;
  url: string;
  close(): Promise<void>;
}

/** Starts `controllers` as an HTTP app with a connected ServerNsq, as Nest's scenarios do. */
export async function startHybrid(
  controllers: Type[],
  options: NsqServerOptions,
  hybridOptions: { inheritAppConfig?: boolean } = {},
  configure?: (app: INestApplication) => void,
): Promise<HybridApp> {
  const moduleRef = await Test.createTestingModule({ controllers }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  configure?.(app);
  const server = new ServerNsq(options);
  const microservice = app.connectMicroservice({ strategy: server }, hybridOptions);
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  return { app, server, microservice, url, close: () => app.close() };
}

/** POST/GET a route; the status and the body (JSON when it is JSON). */
export async function http(
  url: string,
  method: 'GET' | 'POST',
  body?: unknown,
): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, text };
}
