import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { LookupdProcess, NsqdApi, NsqdProcess, sharedNsq, stopAll, uniqueName } from './nsq.js';

afterAll(stopAll);

describe('test harness', () => {
  it('runs a shared nsqd that accepts an HTTP publish', async () => {
    const { api } = sharedNsq();
    const topic = uniqueName();
    await api.publish(topic, 'hello');
    const stats = await api.stats(topic);
    expect(stats.topics.find((t) => t.topic_name === topic)?.message_count).toBe(1);
  });

  it('starts, stops and restarts an extra nsqd on the same ports and data dir', async () => {
    const lookupd = await LookupdProcess.start();
    const nsqd = await NsqdProcess.start({ lookupd });
    const api = new NsqdApi(nsqd.httpUrl);
    const topic = uniqueName();
    await api.publish(topic, 'kept across SIGTERM');
    const port = nsqd.tcpPort;
    await nsqd.stop('SIGTERM');
    expect(nsqd.running).toBe(false);
    await expect(fetch(`${nsqd.httpUrl}/ping`)).rejects.toThrow();
    await nsqd.start();
    expect(nsqd.tcpPort).toBe(port);
    const stats = await api.stats(topic);
    expect(stats.topics.find((t) => t.topic_name === topic)?.depth).toBe(1);
    await new Promise<void>((resolve, reject) => {
      const socket = createConnection(nsqd.tcpPort, '127.0.0.1', () => {
        socket.end();
        resolve();
      });
      socket.on('error', reject);
    });
  });
});

describe('nsq:install', () => {
  it('leaves a binary alone when NSQ_BIN_DIR is the install folder itself', async () => {
    const { linkInto } = await import('../../scripts/nsq-install.mjs');
    const dir = mkdtempSync(join(tmpdir(), 'nsq-bin-'));
    try {
      writeFileSync(join(dir, 'nsqd'), '#!/bin/sh\necho nsqd v1.3.0\n', { mode: 0o755 });
      linkInto(dir, 'nsqd', join(dir, 'nsqd')); // what NSQ_BIN_DIR=.nsq/bin used to do
      expect(lstatSync(join(dir, 'nsqd')).isFile()).toBe(true);
      expect(readFileSync(join(dir, 'nsqd'), 'utf8')).toContain('nsqd v1.3.0');
      // Another folder's binary is linked in.
      const other = mkdtempSync(join(tmpdir(), 'nsq-other-'));
      writeFileSync(join(other, 'nsqd'), 'other', { mode: 0o755 });
      linkInto(dir, 'nsqd', join(other, 'nsqd'));
      expect(lstatSync(join(dir, 'nsqd')).isSymbolicLink()).toBe(true);
      expect(readFileSync(join(dir, 'nsqd'), 'utf8')).toBe('other');
      rmSync(other, { recursive: true, force: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
