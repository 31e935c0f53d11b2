import { Controller, Get, Header } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import {
  ClientNsq,
  NsqHealthIndicator,
  prometheusText,
  PROMETHEUS_CONTENT_TYPE,
  ServerNsq,
} from 'nestjs-nsq';

@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly nsq: NsqHealthIndicator,
    private readonly server: ServerNsq,
    private readonly client: ClientNsq,
  ) {}

  /**
   * Readiness: 200 when the producer and every consumer are connected to their nsqd, else 503.
   * (Liveness should not depend on nsqd: restarting the app does not bring nsqd back.)
   */
  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.nsq.isHealthy('nsq', { servers: [this.server], clients: [this.client] }),
    ]);
  }

  /** The transport's counters, gauges and histograms for Prometheus to scrape. */
  @Get('metrics')
  @Header('Content-Type', PROMETHEUS_CONTENT_TYPE)
  metrics() {
    return prometheusText({ servers: [this.server], clients: [this.client] });
  }
}
