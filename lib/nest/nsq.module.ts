import { Module, type DynamicModule, type ModuleMetadata, type Provider } from '@nestjs/common';
import { ClientNsq } from './client-nsq.js';
import type { NsqClientOptions } from './client-options.js';
import { NsqHealthIndicator } from './nsq-health.indicator.js';
import { NSQ_MODULE_OPTIONS } from './constants.js';

export interface NsqModuleOptions extends NsqClientOptions {
  /** Register in the global scope, so every module can inject ClientNsq. Default false. */
  isGlobal?: boolean;
}

export interface NsqModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  isGlobal?: boolean;
  inject?: any[];
  useFactory: (...args: any[]) => NsqClientOptions | Promise<NsqClientOptions>;
}

/**
 * Provides an injectable ClientNsq (closed on application shutdown) and NsqHealthIndicator.
 * `NsqModule.forRoot({ nsqd: ['127.0.0.1:4150'] })`, or forRootAsync with a factory.
 */
@Module({})
export class NsqModule {
  static forRoot(options: NsqModuleOptions): DynamicModule {
    const { isGlobal, ...clientOptions } = options;
    return NsqModule.create([{ provide: NSQ_MODULE_OPTIONS, useValue: clientOptions }], isGlobal);
  }

  static forRootAsync(options: NsqModuleAsyncOptions): DynamicModule {
    const provider: Provider = {
      provide: NSQ_MODULE_OPTIONS,
      useFactory: options.useFactory,
      inject: options.inject ?? [],
    };
    return { ...NsqModule.create([provider], options.isGlobal), imports: options.imports ?? [] };
  }

  private static create(optionProviders: Provider[], isGlobal = false): DynamicModule {
    return {
      module: NsqModule,
      global: isGlobal,
      providers: [
        ...optionProviders,
        {
          provide: ClientNsq,
          useFactory: (options: NsqClientOptions) => new ClientNsq(options),
          inject: [NSQ_MODULE_OPTIONS],
        },
        NsqHealthIndicator,
      ],
      exports: [ClientNsq, NsqHealthIndicator],
    };
  }
}
