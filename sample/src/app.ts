import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { MicroserviceOptions } from '@nestjs/microservices';
import { ServerNsq } from 'nestjs-nsq';
import { AppModule } from './app.module.js';

export interface CreateAppOptions {
  logger?: LoggerService | LogLevel[] | false;
}

/**
 * A hybrid app: the HTTP API (express) plus the NSQ microservice in one process. Returns it with
 * the NSQ consumers subscribed; the caller starts HTTP with app.listen().
 */
export async function createApp(options: CreateAppOptions = {}): Promise<INestApplication> {
  // forceCloseConnections: close() ends idle keep-alive HTTP connections instead of waiting for
  // their clients to hang up, so that shutdown goes on to drain the NSQ consumers at once.
  const app = await NestFactory.create(AppModule, {
    logger: options.logger,
    forceCloseConnections: true,
  });
  app.connectMicroservice<MicroserviceOptions>(
    { strategy: app.get(ServerNsq) },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();
  return app;
}
