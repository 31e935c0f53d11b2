// Fault suite: after an nsqd SIGKILL, nsqd can deliver one message id twice at once; the second
// FIN fails (E_FIN_FAILED) and nsqd v1.3.0 then counts that message in flight for good,
// shrinking the connection's window. The consumer must notice and replace the connection.
import { Consumer, Producer } from '../../lib/core.js';
import { NsqdApi, NsqdProcess, stopAll, uniqueName, waitFor } from '../harness/nsq.js';
import { figure, sleep } from './helpers.js';

afterAll(stopAll);

describe('phantom in-flight after nsqd crashes', () => {
  it('nsqd ends up counting no message in flight that the consumer does not hold', async () => {
    // A disk-only queue, messages requeued once each: after a crash nsqd re-reads the requeued
    // copy and the original at once, the source of the duplicate ids.
    const nsqd = await NsqdProcess.start({ args: ['--mem-queue-size=0'] });
    const api = new NsqdApi(nsqd.httpUrl);
    const topic = uniqueName('phantom');
    const warnings: string[] = [];
    let handled = 0;
    const producer = new Producer({ nsqd: [nsqd.tcpAddress], maxRetryDelay: 100 });
    const consumer = new Consumer(
      topic,
      'c',
      async (m) => {
        if (m.attempts === 1) throw new Error('first attempt');
        await sleep(2);
        handled++;
      },
      {
        nsqd: [nsqd.tcpAddress],
        maxInFlight: 100,
        requeueDelay: 0,
        backoff: false,
        maxReconnectDelay: 300,
      },
    );
    consumer.on('warning', (e) => warnings.push(e.message));
    await producer.publish(topic, 'first');
    await consumer.start();
    let publishing = true;
    const load = (async () => {
      for (let i = 0; publishing;) {
        const batch = Array.from({ length: 20 }, () => producer.publish(topic, String(i++)));
        await Promise.allSettled(batch);
        await sleep(10);
      }
    })();
    const phantoms = () => warnings.filter((w) => /delivered that id twice/.test(w)).length;
    let crashes = 0;
    try {
      while (crashes < 6 && phantoms() === 0) {
        await sleep(1000);
        await nsqd.restart('SIGKILL');
        crashes++;
      }
      await sleep(1000);
    } finally {
      publishing = false;
      await load;
    }
    // Everything is answered; nsqd must agree.
    await waitFor(
      async () => {
        const c = await api.channelStats(topic, 'c');
        return c?.depth === 0 && consumer.inFlight === 0;
      },
      'the backlog drained',
      15_000,
    );
    await sleep(500);
    const clients = (await api.channelStats(topic, 'c'))!.clients;
    figure('phantom in-flight after nsqd SIGKILL', {
      crashes,
      phantomsSeen: phantoms(),
      handled,
      nsqdInFlightPerClient: clients.map((c) => c.in_flight_count),
      consumerInFlight: consumer.inFlight,
      sample: warnings.find((w) => /delivered that id twice/.test(w)),
    });
    expect(phantoms()).toBeGreaterThan(0);
    expect(clients.map((c) => c.in_flight_count)).toEqual(clients.map(() => 0));
    // And the window is whole again: a burst is taken in at full RDY.
    const before = handled;
    await Promise.all(Array.from({ length: 300 }, (_, i) => producer.publish(topic, `after${i}`)));
    await waitFor(() => handled >= before + 300, 'the burst after healing', 15_000);
    await producer.close();
    await consumer.close(0);
  });
});
