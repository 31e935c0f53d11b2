// Nest's global-config scenario, ported: guards, exception filters, interceptors and pipes set
// on the microservice run for NSQ handlers, and the filter sees the handler's error.
import type {
  ArgumentMetadata,
  CallHandler,
  CanActivate,
  ExceptionFilter,
  ExecutionContext,
  NestInterceptor,
  PipeTransform,
} from '@nestjs/common';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { firstValueFrom, throwError, type Observable } from 'rxjs';
import { ClientNsq } from '../../../lib/index.js';
import { sharedNsq, uniqueName } from '../../harness/nsq.js';
import { startHybrid, type HybridApp } from './app.js';

const { nsqd } = sharedNsq();
const P = uniqueName('glob');

class SpyGuard implements CanActivate {
  types: string[] = [];
  canActivate(context: ExecutionContext): boolean {
    this.types.push(context.getType());
    return true;
  }
}
class SpyFilter implements ExceptionFilter {
  caught: unknown[] = [];
  catch(exception: unknown): Observable<never> {
    this.caught.push(exception);
    return throwError(() => ({ status: 'error', message: 'filtered' }));
  }
}
class SpyInterceptor implements NestInterceptor {
  called = 0;
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    this.called++;
    return next.handle();
  }
}
class SpyPipe implements PipeTransform {
  values: unknown[] = [];
  transform(value: unknown, _metadata: ArgumentMetadata): unknown {
    this.values.push(value);
    return value;
  }
}

@Controller()
class MathController {
  @MessagePattern<string>(`${P}-sum/c`)
  sum(@Payload() data: number[]): number {
    return data.reduce((a, b) => a + b);
  }

  @MessagePattern<string>(`${P}-exception/c`)
  fail(): never {
    throw new RpcException('boom');
  }
}

describe('Nest scenario: global config (ported from global-config-applied)', () => {
  const guard = new SpyGuard();
  const filter = new SpyFilter();
  const interceptor = new SpyInterceptor();
  const pipe = new SpyPipe();
  let hybrid: HybridApp;
  let client: ClientNsq;

  beforeAll(async () => {
    // Nest 12 registers a connected microservice's handlers when it is connected, so global
    // enhancers reach it through the app (inheritAppConfig), as Nest's docs say for hybrid apps.
    hybrid = await startHybrid(
      [MathController],
      { nsqd: [nsqd] },
      { inheritAppConfig: true },
      (app) => {
        app.useGlobalGuards(guard);
        app.useGlobalFilters(filter);
        app.useGlobalInterceptors(interceptor);
        app.useGlobalPipes(pipe);
      },
    );
    client = new ClientNsq({ nsqd: [nsqd] });
  });
  afterAll(async () => {
    await client.close();
    await hybrid.close();
  });

  it('guard, interceptor and pipe run for an NSQ handler', async () => {
    await expect(firstValueFrom(client.send(`${P}-sum`, [1, 2, 3]))).resolves.toBe(6);
    expect(guard.types).toContain('rpc');
    expect(interceptor.called).toBeGreaterThan(0);
    expect(pipe.values).toContainEqual([1, 2, 3]);
  });

  it('the exception filter catches the handler error and shapes the reply', async () => {
    await expect(firstValueFrom(client.send(`${P}-exception`, {}))).rejects.toEqual({
      status: 'error',
      message: 'filtered',
    });
    expect(filter.caught).toHaveLength(1);
    expect(filter.caught[0]).toBeInstanceOf(RpcException);
  });
});
