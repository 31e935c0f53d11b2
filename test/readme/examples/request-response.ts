// README example: request-response. The code between the markers is the README's, word for word.
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { ClientNsq, ServerNsq } from 'nestjs-nsq';
import { NSQD, LOOKUPD } from '../env.js';

// readme:start
@Controller()
class PricingController {
  @MessagePattern<string>('quotes/pricing')
  quote(@Payload() req: { items: number[] }) {
    return { total: req.items.reduce((a, b) => a + b, 0) };
  }

  @MessagePattern({ cmd: 'sum' }) // Nest's object patterns: topic 'cmd_sum', the server's channel
  sum(@Payload() numbers: number[]) {
    return numbers.reduce((a, b) => a + b, 0);
  }
}

@Module({ controllers: [PricingController] })
class PricingModule {}

const server = await NestFactory.createMicroservice(PricingModule, {
  strategy: new ServerNsq({ nsqd: [NSQD], channel: 'pricing' }),
});
await server.listen();

const client = new ClientNsq({ nsqd: [NSQD], lookupd: [LOOKUPD] });
const quote = await firstValueFrom(client.send('quotes', { items: [1, 2] })); // { total: 3 }
const sum = await firstValueFrom(client.send({ cmd: 'sum' }, [1, 2, 3])); // 6
await client.close(); // a client you made yourself: close it (NsqModule's closes on shutdown)
// readme:end

export { client, quote, server, sum };
