import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { NsqHealthIndicator, ServerNsq } from 'nestjs-nsq';

@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly nsq: NsqHealthIndicator,
    private readonly server: ServerNsq,
  ) {}

  /** 200 when the producer and every consumer are connected to their nsqd, else 503. */
  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.nsq.isHealthy('nsq', { servers: [this.server] })]);
  }
}
