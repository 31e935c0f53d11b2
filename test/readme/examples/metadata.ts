// README example: metadata. The code between the markers is the README's, word for word.
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { ClientNsq, NsqContext, NsqRecordBuilder } from 'nestjs-nsq';
import { NSQD } from '../env.js';

// readme:start
@Controller()
class AuditController {
  @EventPattern<string>('audit/log')
  log(@Payload() entry: { action: string }, @Ctx() ctx: NsqContext) {
    const traceId = ctx.getMetadata()?.['x-trace-id']; // from the client's dispatch hook
    const version = ctx.getHeaders()?.['x-version']; // from NsqRecordBuilder.setHeaders()
    console.log(entry.action, traceId, version, ctx.getPattern());
  }
}

const client = new ClientNsq({ nsqd: [NSQD] });
client.setOnDispatchHook((packet) => {
  packet.metadata = { 'x-trace-id': 'trace-1' };
});
const record = new NsqRecordBuilder({ action: 'login' }).setHeaders({ 'x-version': '2' }).build();
await lastValueFrom(client.emit('audit', record));
await client.close();
// readme:end

export { AuditController, client };
