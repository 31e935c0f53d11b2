// README example: producer. The code between the markers is the README's, word for word.
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { lastValueFrom } from 'rxjs';
import { ClientNsq, NsqModule, NsqRecordBuilder } from 'nestjs-nsq';
import { NSQD } from '../env.js';

// readme:start
@Injectable()
class OrdersService {
  constructor(private readonly nsq: ClientNsq) {}

  async place(order: { id: number }) {
    await lastValueFrom(this.nsq.emit('orders', order)); // PUB, batched into MPUB
    const later = new NsqRecordBuilder(order).setDelay(5000).build();
    await lastValueFrom(this.nsq.emit('orders', later)); // DPUB: visible in 5 s
  }
}

@Module({ imports: [NsqModule.forRoot({ nsqd: [NSQD] })], providers: [OrdersService] })
class AppModule {}

const app = await NestFactory.createApplicationContext(AppModule);
await app.get(OrdersService).place({ id: 7 });
await app.close(); // flushes what is batched and waits for nsqd's acknowledgements
// readme:end

export { app };
