import { Consumer, Producer } from '../../lib/core.js';
import { NsqdProcess, stopAll, uniqueName, waitFor } from '../harness/nsq.js';

afterAll(stopAll);

describe('backoff over several nsqd', () => {
  it('moves the test RDY off an idle connection, so intake resumes', async () => {
    const idle = await NsqdProcess.start();
    const busy = await NsqdProcess.start();
    const topic = uniqueName();
    const producer = new Producer({ nsqd: [busy.tcpAddress] });
    await producer.publishMany(
      topic,
      Array.from({ length: 20 }, (_, i) => `m${i}`),
    );
    let calls = 0;
    const handled = new Set<string>();
    const consumer = new Consumer(
      topic,
      'c',
      (m) => {
        // Three failures in a row push the consumer into backoff more than once.
        if (++calls <= 3) throw new Error('fail');
        handled.add(m.body.toString());
      },
      {
        nsqd: [idle.tcpAddress, busy.tcpAddress],
        requeueDelay: 0,
        backoff: { multiplier: 50, maxDelay: 200 },
      },
    );
    await consumer.start();
    await waitFor(() => handled.size === 20, 'all 20 messages after backoff', 15_000);
    expect(calls).toBe(23);
    await consumer.close();
    await producer.close();
  });
});
