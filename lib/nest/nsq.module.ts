import {
  ConfigurableModuleBuilder,
  Module,
  type ConfigurableModuleAsyncOptions,
} from '@nestjs/common';
import { ClientNsq } from './client-nsq.js';
import type { NsqClientOptions } from './client-options.js';
import { NSQ_MODULE_OPTIONS } from './constants.js';
import { NsqHealthIndicator } from './nsq-health.indicator.js';

/**
 * Nest's own builder makes forRoot() and forRootAsync() (useFactory, useClass, useExisting); a
 * class given to useClass or useExisting implements `createNsqOptions()`.
 */
const { ConfigurableModuleClass } = new ConfigurableModuleBuilder<NsqClientOptions>({
  optionsInjectionToken: NSQ_MODULE_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createNsqOptions')
  .setExtras({ isGlobal: false }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();

/** forRoot's options: the ClientNsq options, and `isGlobal` (default false). */
export type NsqModuleOptions = NsqClientOptions & { isGlobal?: boolean };
/** forRootAsync's: `imports`, `inject`, and one of `useFactory`, `useClass`, `useExisting`. */
export type NsqModuleAsyncOptions = ConfigurableModuleAsyncOptions<
  NsqClientOptions,
  'createNsqOptions'
> & { isGlobal?: boolean };
/** What a class given to forRootAsync's `useClass` or `useExisting` implements. */
export interface NsqOptionsFactory {
  createNsqOptions(): NsqClientOptions | Promise<NsqClientOptions>;
}

/**
 * Provides an injectable ClientNsq (closed on application shutdown) and NsqHealthIndicator.
 * `NsqModule.forRoot({ nsqd: ['127.0.0.1:4150'] })`, or forRootAsync.
 */
@Module({
  providers: [
    {
      provide: ClientNsq,
      useFactory: (options: NsqClientOptions) => new ClientNsq(options),
      inject: [NSQ_MODULE_OPTIONS],
    },
    NsqHealthIndicator,
  ],
  exports: [ClientNsq, NsqHealthIndicator],
})
export class NsqModule extends ConfigurableModuleClass {}
