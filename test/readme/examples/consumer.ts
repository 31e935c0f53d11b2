// README example: consumer. The code between the markers is the README's, word for word.
import { NestFactory } from '@nestjs/core';
import { Controller, Module } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { NsqContext, ServerNsq } from 'nestjs-nsq';
import { LOOKUPD } from '../env.js';

// readme:start
@Controller()
class BillingController {
  @EventPattern<string>('orders/billing', { maxAttempts: 5 })
  async charge(@Payload() order: { id: number }, @Ctx() ctx: NsqContext) {
    // resolve -> FIN; throw / reject / erroring Observable -> REQ with a growing delay
    console.log('charging order', order.id, 'attempt', ctx.getMessage().attempts);
  }
}

@Module({ controllers: [BillingController] })
class AppModule {}

const app = await NestFactory.createMicroservice(AppModule, {
  strategy: new ServerNsq({ lookupd: [LOOKUPD], maxInFlight: 200 }),
});
await app.listen();
// readme:end

export { app };
