// README example: hybrid. The code between the markers is the README's, word for word.
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, Payload } from '@nestjs/microservices';
import { NSQ_TRANSPORT, ServerNsq } from 'nestjs-nsq';
import { NSQD, HTTP_PORT } from '../env.js';

// readme:start
@Controller()
class ShippingController {
  @EventPattern<string>('orders/shipping', NSQ_TRANSPORT) // bound to ServerNsq only
  ship(@Payload() order: { id: number }) {
    console.log('shipping order', order.id);
  }
}

@Module({ controllers: [ShippingController] })
class AppModule {}

const app = await NestFactory.create(AppModule);
app.connectMicroservice({ strategy: new ServerNsq({ nsqd: [NSQD] }) });
await app.startAllMicroservices();
await app.listen(HTTP_PORT);
// readme:end

export { app };
