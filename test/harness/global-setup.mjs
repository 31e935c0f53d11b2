// Starts the nsqlookupd + nsqd that every test file shares; workers get their addresses via env.
import { ensureNsqBinaries } from '../../scripts/nsq-install.mjs';
import { LookupdProcess, NsqdProcess, reapLeftovers } from '../../scripts/nsq-servers.mjs';

export default async function globalSetup() {
  reapLeftovers();
  ensureNsqBinaries({ quiet: true });
  const lookupd = await LookupdProcess.start();
  const nsqd = await NsqdProcess.start({ lookupd });
  process.env.NSQ_TEST_NSQD = nsqd.tcpAddress;
  process.env.NSQ_TEST_NSQD_HTTP = nsqd.httpUrl;
  process.env.NSQ_TEST_LOOKUPD = lookupd.httpAddress;
  console.log(
    `\nnsq harness: nsqd ${nsqd.tcpAddress} (http ${nsqd.httpAddress}, pid ${nsqd.pid}), ` +
      `nsqlookupd ${lookupd.httpAddress} (pid ${lookupd.pid})`,
  );
}
