import { randomBytes } from 'node:crypto';
import type { WritePacket } from '@nestjs/microservices';
import { ReportLimiter } from '../rate-limit.js';
import { Consumer } from '../consumer/consumer.js';
import type { NsqMessage } from '../consumer/nsq-message.js';
import type { ConsumerOptions } from '../consumer/options.js';
import { NsqError } from '../errors.js';
import { countTopicChannels } from '../lookup/topic-consumers.js';
import type { ReplyEnvelope } from './payload.js';

/** A request that cannot be answered: timed out, nothing consumes its topic, no handler... */
export class NsqRequestError extends NsqError {
  constructor(
    message: string,
    /** ERR_NSQ_REQUEST_TIMEOUT, ERR_NSQ_NO_CONSUMER, ERR_NSQ_NO_HANDLER or ERR_NSQ_CLIENT_CLOSED. */
    override readonly code: string,
    /** The topic the request went to. */
    readonly topic?: string,
  ) {
    super(message);
  }
}

/** A request unanswered this long has its topic checked for consumers. */
const CONSUMER_CHECK_AFTER = 1000;
/** An error reply from a channel without a request handler waits this long for a real reply. */
const NO_HANDLER_GRACE = 300;

interface Pending {
  topic: string;
  callback: (packet: WritePacket) => void;
  timers: NodeJS.Timeout[];
}

export interface InboxSettings {
  consumer: ConsumerOptions;
  lookupd: string[];
  nsqd: string[];
  requestTimeout: number;
  /** Reply body -> `{ id, response, err, isDisposed }`. */
  decodeReply(body: Buffer): unknown;
  onError(error: Error): void;
}

/**
 * Where a ClientNsq's requests are answered: an ephemeral reply topic consumed on every nsqd the
 * client uses, and the requests waiting on it, each with its deadline.
 */
export class ReplyInbox {
  readonly topic = `reply.${randomBytes(8).toString('hex')}#ephemeral`;
  private readonly pending = new Map<string, Pending>();
  private readonly channelChecks = new Map<
    string,
    { at: number; channels: Promise<number | undefined> }
  >();
  private readonly consumer: Consumer;
  private readonly lookupdReports = new ReportLimiter(30_000);
  private readonly started: Promise<void>;

  constructor(private readonly settings: InboxSettings) {
    this.consumer = new Consumer(
      this.topic,
      'client#ephemeral',
      (m) => this.onReply(m),
      {
        // Adaptive RDY (the default) has nsqd write a reply at once, not hold it in its buffer.
        ...settings.consumer,
        nsqd: settings.nsqd,
        lookupd: undefined,
        maxInFlight: 1000,
        maxAttempts: 1,
        backoff: false,
      },
      `ClientNsq(replies on ${this.topic})`,
    );
    this.consumer.on('warning', (error) => settings.onError(error));
    this.started = this.consumer.start();
  }

  ready(): Promise<void> {
    return this.started;
  }

  /** Waits for the reply to request `id`; returns the deadline it carries. */
  track(id: string, topic: string, callback: (packet: WritePacket) => void): number {
    const { requestTimeout } = this.settings;
    const fail = (error: NsqRequestError) => this.settle(id, { err: error, isDisposed: true });
    const timers = [
      setTimeout(
        () =>
          fail(
            new NsqRequestError(
              `No reply to the request on topic "${topic}" within requestTimeout ${requestTimeout} ms` +
                (this.settings.lookupd.length
                  ? ''
                  : ' (if nothing consumes the topic, a client with the lookupd option finds out in about 1 s)'),
              'ERR_NSQ_REQUEST_TIMEOUT',
              topic,
            ),
          ),
        requestTimeout,
      ),
    ];
    if (requestTimeout > CONSUMER_CHECK_AFTER) {
      timers.push(setTimeout(() => void this.checkConsumers(id, topic), CONSUMER_CHECK_AFTER));
    }
    this.pending.set(id, { topic, callback, timers });
    return Date.now() + requestTimeout;
  }

  /** The caller unsubscribed: forget the request. */
  forget(id: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    p.timers.forEach(clearTimeout);
    this.pending.delete(id);
  }

  /** Fails every request still waiting (with `reason`, else as closed), then stops consuming. */
  async close(reason?: Error): Promise<void> {
    for (const [id, p] of this.pending) {
      const err =
        reason ??
        new NsqRequestError(
          `ClientNsq was closed while the request on topic "${p.topic}" waited for its reply`,
          'ERR_NSQ_CLIENT_CLOSED',
          p.topic,
        );
      this.settle(id, { err, isDisposed: true });
    }
    await this.started.catch(() => undefined);
    await this.consumer.close();
  }

  private settle(id: string, packet: WritePacket): void {
    const p = this.pending.get(id);
    if (!p) return;
    if (packet.isDisposed || packet.err !== undefined) this.forget(id);
    p.callback(packet);
  }

  /**
   * Fails the request if nothing consumes its topic: no channel on any nsqd that holds it. One
   * answer per topic serves the requests of a second, so slow requests do not flood the APIs.
   */
  private async checkConsumers(id: string, topic: string): Promise<void> {
    const { lookupd, nsqd } = this.settings;
    const now = Date.now();
    for (const [t, c] of this.channelChecks) {
      if (now - c.at > CONSUMER_CHECK_AFTER) this.channelChecks.delete(t);
    }
    let check = this.channelChecks.get(topic);
    if (!check) {
      check = {
        at: Date.now(),
        channels: countTopicChannels(topic, { lookupd, nsqd }, (err) =>
          this.reportLookupd(err),
        ).catch(() => undefined),
      };
      this.channelChecks.set(topic, check);
    }
    const channels = await check.channels;
    if (channels !== 0 || !this.pending.has(id)) return;
    this.settle(id, {
      err: new NsqRequestError(
        `Nothing consumes topic "${topic}": no nsqd has a channel on it ` +
          `(asked ${lookupd.length ? 'nsqlookupd and ' : ''}nsqd's HTTP API). Start a server with ` +
          `@MessagePattern('${topic}/<channel>') or check the pattern`,
        'ERR_NSQ_NO_CONSUMER',
        topic,
      ),
      isDisposed: true,
    });
  }

  /** A lookupd that cannot answer (down, or its TCP port given) is said, at most every 30 s. */
  private reportLookupd(error: Error): void {
    const held = this.lookupdReports.pass('lookupd');
    if (held === undefined) return;
    this.settings.onError(
      new NsqError(
        `the check whether anything consumes a request's topic could not ask nsqlookupd, so it ` +
          `asked nsqd's HTTP API instead: ${error.message}${held}`,
        { cause: error },
      ),
    );
  }

  private async onReply(message: NsqMessage): Promise<void> {
    let reply: ReplyEnvelope;
    try {
      reply = (await this.settings.decodeReply(message.body)) as ReplyEnvelope;
    } catch {
      this.settings.onError(
        new NsqError(
          `Undecodable reply on ${message.topic}: ${message.body.toString().slice(0, 200)}`,
        ),
      );
      return;
    }
    const p = this.pending.get(reply.id);
    if (!p) return; // the caller unsubscribed or the request timed out
    const err = reply.err as { code?: unknown; message?: unknown } | undefined;
    if (err?.code === 'ERR_NSQ_NO_HANDLER') {
      // Another channel of the topic may have the handler: give its reply a moment.
      const error = new NsqRequestError(String(err.message), 'ERR_NSQ_NO_HANDLER', p.topic);
      p.timers.push(
        setTimeout(() => this.settle(reply.id, { err: error, isDisposed: true }), NO_HANDLER_GRACE),
      );
      return;
    }
    this.settle(reply.id, reply);
  }
}
