// README example: health. The code between the markers is the README's, word for word.
import { Controller, Get, Header, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import {
  ClientNsq,
  NsqHealthIndicator,
  NsqModule,
  prometheusText,
  PROMETHEUS_CONTENT_TYPE,
  ServerNsq,
} from 'nestjs-nsq';
import { NSQD, HTTP_PORT } from '../env.js';

// readme:start
const server = new ServerNsq({ nsqd: [NSQD] });

@Controller()
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly nsq: NsqHealthIndicator,
    private readonly client: ClientNsq, // from NsqModule
  ) {}

  // Readiness: nsqd reachable for the server and the client.
  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.nsq.isHealthy('nsq', { servers: [server], clients: [this.client] }),
    ]);
  }

  @Get('metrics')
  @Header('Content-Type', PROMETHEUS_CONTENT_TYPE)
  metrics() {
    return prometheusText({ servers: [server], clients: [this.client] });
  }
}

@Module({
  imports: [TerminusModule, NsqModule.forRoot({ nsqd: [NSQD] })],
  controllers: [HealthController],
})
class HealthModule {}

const app = await NestFactory.create(HealthModule);
app.connectMicroservice({ strategy: server });
await app.startAllMicroservices();
await app.listen(HTTP_PORT);
// readme:end

export { app };
