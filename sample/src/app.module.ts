import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { TerminusModule } from '@nestjs/terminus';
import { NsqModule, ServerNsq } from 'nestjs-nsq';
import { SAMPLE_CONFIG, sampleConfig, type SampleConfig } from './config.js';
import { FulfilmentController } from './fulfilment.controller.js';
import { HealthController } from './health.controller.js';
import { OrdersController } from './orders.controller.js';
import { PricingController } from './pricing.controller.js';
import { StatsController } from './stats.controller.js';
import { StatsService } from './stats.service.js';

@Module({
  imports: [
    // Environment variables (and a .env file, if there is one) configure NSQ addresses and ports.
    ConfigModule.forRoot({ isGlobal: true, cache: false }),
    // The producer side: an injectable ClientNsq (and NsqHealthIndicator) from the same config.
    NsqModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService) => {
        const { nsqd, tracing } = sampleConfig(config);
        return { nsqd, tracing };
      },
    }),
    TerminusModule,
  ],
  controllers: [
    OrdersController,
    FulfilmentController,
    PricingController,
    HealthController,
    StatsController,
  ],
  providers: [
    StatsService,
    { provide: SAMPLE_CONFIG, inject: [ConfigService], useFactory: sampleConfig },
    // The consumer side, a provider so that the health check can ask it about its connections;
    // main.ts connects it to the app with app.connectMicroservice({ strategy }).
    {
      provide: ServerNsq,
      inject: [SAMPLE_CONFIG],
      useFactory: (config: SampleConfig) =>
        new ServerNsq({
          // nsqd given directly subscribes at once (and creates the channels); nsqlookupd finds
          // any other nsqd that has the topic.
          nsqd: config.nsqd,
          lookupd: config.lookupd,
          lookupdPollInterval: config.lookupdPollInterval,
          maxInFlight: config.maxInFlight,
          tracing: config.tracing,
        }),
    },
  ],
})
export class AppModule {}
