import { reapLeftovers, stopAll } from '../../scripts/nsq-servers.mjs';

export default async function globalTeardown() {
  await stopAll();
  const leftovers = reapLeftovers();
  if (leftovers)
    console.warn(`nsq harness: killed ${leftovers} NSQ process(es) left by a test file`);
}
