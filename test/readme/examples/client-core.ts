// README example: client-core. The code between the markers is the README's, word for word.
import { Consumer, Producer, type NsqMessage } from 'nestjs-nsq';
import { NSQD, LOOKUPD } from '../env.js';

// readme:start
// Resolve (or return) to FIN, throw or reject to REQ with a growing delay.
async function handle(message: NsqMessage) {
  console.log(message.id, message.attempts, message.body.toString());
}

const consumer = new Consumer('orders', 'billing', handle, {
  lookupd: [LOOKUPD],
  maxInFlight: 200,
});
await consumer.start();

const producer = new Producer({ nsqd: [NSQD] });
await producer.publish('orders', JSON.stringify({ id: 1 }));
await producer.publishDeferred('orders', 5000, 'later');
await producer.publishMany('orders', ['a', 'b']);

await producer.close();
await consumer.close();
// readme:end

export { consumer, producer };
