// Backoff protects a failing dependency without punishing sporadic failures: at 5 % random
// failures intake stays near the no-failure rate; at 100 % it drops to the test rate at once.
import { Consumer, Producer } from '../../lib/core.js';
import { NsqdProcess, stopAll, uniqueName, waitFor } from '../harness/nsq.js';
import { figure, sleep } from './helpers.js';

afterAll(stopAll);

/** Handler calls in `ms` after the first one, with failures for the messages `fails` picks. */
async function callsIn(
  nsqd: string,
  ms: number,
  fails: (i: number) => boolean,
  backoff: object = {},
): Promise<{ calls: number; failures: number; callTimes: number[] }> {
  const topic = uniqueName('rate');
  const producer = new Producer({ nsqd: [nsqd] });
  for (let k = 0; k < 10; k++) {
    await producer.publishMany(
      topic,
      Array.from({ length: 1000 }, (_, i) => String(k * 1000 + i)),
    );
  }
  const callTimes: number[] = [];
  let failures = 0;
  const consumer = new Consumer(
    topic,
    'c',
    async (m) => {
      callTimes.push(Date.now());
      await sleep(5);
      if (fails(Number(m.body.toString()))) {
        failures++;
        throw new Error('dependency failed');
      }
    },
    // Failed messages come back much later: the figures are about first deliveries.
    { nsqd: [nsqd], maxInFlight: 50, requeueDelay: 600_000, backoff },
  );
  await consumer.start();
  await waitFor(() => callTimes.length > 0, 'the first message');
  await sleep(ms);
  const first = callTimes[0];
  const within = callTimes.filter((t) => t - first <= ms);
  await consumer.close(0);
  await producer.close();
  return { calls: within.length, failures, callTimes: within.map((t) => t - first) };
}

/**
 * The defaults (window 20, failureRate 0.5) but for the pause: short enough for a test, long
 * enough to show in 1 s. With `window: 1` (every failure pauses, the 0.1.0 behaviour) the 5 %
 * run takes in about 1 % of the no-failure rate instead.
 */
const BACKOFF = { multiplier: 500 };

describe('backoff by failure rate', () => {
  it('5 % random failures keep intake at 80 % or more of the no-failure rate', async () => {
    const nsqd = await NsqdProcess.start();
    const clean = await callsIn(nsqd.tcpAddress, 1000, () => false, BACKOFF);
    // Every 20th message, shuffled: 5 %.
    const sporadic = await callsIn(nsqd.tcpAddress, 1000, (i) => (i * 7919) % 20 === 0, BACKOFF);
    const ratio = sporadic.calls / clean.calls;
    figure('backoff at 5 % failures', {
      noFailureCalls: clean.calls,
      withFailuresCalls: sporadic.calls,
      failures: sporadic.failures,
      ratio: Math.round(ratio * 100) / 100,
    });
    expect(sporadic.failures).toBeGreaterThan(0);
    expect(ratio).toBeGreaterThanOrEqual(0.8);
  });

  it('100 % failures: intake drops to the test rate within a second', async () => {
    const nsqd = await NsqdProcess.start();
    const down = await callsIn(nsqd.tcpAddress, 4000, () => true, {
      multiplier: 250,
      maxDelay: 1000,
    });
    const afterFirstSecond = down.callTimes.filter((t) => t > 1000).length;
    figure('backoff at 100 % failures', {
      callsIn4s: down.calls,
      callsAfterFirstSecond: afterFirstSecond,
    });
    // The first half-window of failures trips it (plus what was in flight then: maxInFlight 50).
    expect(down.calls).toBeLessThan(100);
    // Then one message per test window (250, 500, 1000, 1000 ms ...).
    expect(afterFirstSecond).toBeLessThanOrEqual(6);
  });
});
