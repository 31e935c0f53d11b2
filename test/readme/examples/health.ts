// README example: health. The code between the markers is the README's, word for word.
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { NsqHealthIndicator, NsqModule, ServerNsq } from 'nestjs-nsq';
import { NSQD, HTTP_PORT } from '../env.js';

// readme:start
const server = new ServerNsq({ nsqd: [NSQD] });

@Controller()
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly nsq: NsqHealthIndicator,
  ) {}

  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.nsq.isHealthy('nsq', { servers: [server] })]);
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
