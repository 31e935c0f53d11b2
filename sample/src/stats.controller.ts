import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ServerNsq } from 'nestjs-nsq';
import { StatsService } from './stats.service.js';

@Controller()
export class StatsController {
  constructor(
    private readonly stats: StatsService,
    private readonly server: ServerNsq,
  ) {}

  /** Counters of the order flow, and what each consumer has in flight (`npm run demo` reads it). */
  @Get('stats')
  statistics() {
    return {
      ...this.stats.snapshot(),
      consumers: this.server.unwrap().map((c) => ({
        pattern: `${c.topic}/${c.channel}`,
        inFlight: c.inFlight,
        connections: c.connections(),
      })),
    };
  }

  /** POST { ids: [...] }: per channel, which of these orders it has not handled yet. */
  @Post('stats/missing')
  @HttpCode(200)
  missing(@Body() body: { ids?: unknown }) {
    const ids = Array.isArray(body?.ids) ? body.ids.filter((i) => typeof i === 'string') : [];
    return this.stats.missing(ids as string[]);
  }
}
