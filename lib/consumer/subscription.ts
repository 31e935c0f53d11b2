import { NsqConnection } from '../connection/connection.js';
import type { Identity } from '../connection/identify.js';
import type { ConnectionOptions } from '../connection/settings.js';
import { NsqError } from '../errors.js';
import * as commands from '../protocol/commands.js';
import type { MessageOwner, NsqMessage } from './nsq-message.js';
import { MAX_REQUEUE_DELAY } from './options.js';

/** How an answer counts for backoff: a success, a failure, or neither. */
export type AnswerSignal = 'finish' | 'failure' | 'neutral';

/** What a subscription reports to its consumer. */
export interface SubscriptionListener {
  message(sub: Subscription, data: Buffer): void;
  answered(sub: Subscription, message: NsqMessage, signal: AnswerSignal): void;
  /** The connection is gone; `error` says why (none after close()). */
  closed(sub: Subscription, error: Error | undefined): void;
  /** A non-fatal error frame, e.g. E_FIN_FAILED after a message timed out at nsqd. */
  warning(error: Error): void;
  /**
   * nsqd refused to FIN or REQ a message that cannot have timed out: it delivered that id twice
   * (after a restart), and now counts one message in flight forever (nsqd v1.3.0), shrinking
   * this connection's window until the connection is replaced.
   */
  phantom(sub: Subscription, error: Error): void;
}

/** CLOSE_WAIT that never comes must not hold close() up. */
const CLOSE_WAIT_TIMEOUT = 2000;
/** How many recent answers a subscription remembers, to explain a refused FIN or REQ. */
const REMEMBERED_ANSWERS = 1024;

/** One consumer's connection to one nsqd: SUB, CLS, and the commands that answer messages. */
export class Subscription implements MessageOwner {
  readonly connection: NsqConnection;
  /** SUB was acknowledged: messages may flow once RDY is given. */
  subscribed = false;
  private onSubscribed?: (error?: Error) => void;
  private onCloseWait?: () => void;
  /** FIN/REQ queued and not yet written: nsqd still counts their messages in flight. */
  answersUnwritten = 0;
  /** nsqd's msg-timeout for this connection, from IDENTIFY. */
  private msgTimeout = 60_000;
  /**
   * Ids answered lately and when they arrived: a ring of the last REMEMBERED_ANSWERS, written
   * on every FIN/REQ and read only when nsqd refuses one (a Map cost 5 % of consume CPU).
   */
  private readonly answeredIds: string[] = new Array<string>(REMEMBERED_ANSWERS).fill('');
  private readonly answeredAt = new Float64Array(REMEMBERED_ANSWERS);
  private answeredNext = 0;

  constructor(
    readonly address: string,
    readonly topic: string,
    readonly channel: string,
    options: ConnectionOptions,
    private readonly listener: SubscriptionListener,
  ) {
    this.connection = new NsqConnection(address, options, {
      onMessage: (data) => listener.message(this, data),
      onResponse: (text) => this.onResponse(text),
      onErrorFrame: (error, fatal) => fatal || this.refusedAnswer(error),
      onNotice: (notice) => listener.warning(notice),
      onWritten: () => (this.answersUnwritten = 0),
      onClose: (error) => {
        this.onSubscribed?.(error ?? new NsqError('connection closed'));
        this.onCloseWait?.();
        listener.closed(this, error);
      },
    });
  }

  /** Connects, negotiates and subscribes; rejects with nsqd's reason. */
  async subscribe(): Promise<Identity> {
    const identity = await this.connection.connect();
    this.msgTimeout = identity.msg_timeout || this.msgTimeout;
    const subscribed = new Promise<Error | undefined>((resolve) => (this.onSubscribed = resolve));
    this.connection.write(commands.sub(this.topic, this.channel));
    const error = await subscribed;
    this.onSubscribed = undefined;
    if (error) {
      throw new NsqError(
        `SUB ${this.topic} ${this.channel} failed on ${this.address}: ${error.message}`,
        { cause: error },
      );
    }
    this.subscribed = true;
    return identity;
  }

  /** Sends CLS and waits (bounded) for CLOSE_WAIT: after it nsqd sends no more messages. */
  async startClose(): Promise<void> {
    if (!this.subscribed || this.connection.state !== 'ready') return;
    const closeWait = new Promise<void>((resolve) => {
      this.onCloseWait = resolve;
      setTimeout(resolve, CLOSE_WAIT_TIMEOUT).unref();
    });
    this.connection.write(commands.CLS);
    await closeWait;
  }

  private onResponse(text: string): void {
    if (text === 'OK' && this.onSubscribed) this.onSubscribed();
    else if (text === 'CLOSE_WAIT') this.onCloseWait?.();
  }

  /** Only the consumer's RDY controller calls this. */
  sendRdy(count: number): void {
    this.connection.write(commands.rdy(count));
  }

  finish(message: NsqMessage): void {
    this.connection.write(commands.fin(message.id));
    this.answersUnwritten++;
    this.remember(message);
    this.listener.answered(this, message, 'finish');
  }

  requeue(message: NsqMessage, delayMs: number, backoff: boolean): void {
    // A delay past nsqd's --max-req-timeout would make nsqd drop the connection: clamped.
    this.connection.write(commands.req(message.id, Math.min(delayMs, MAX_REQUEUE_DELAY)));
    this.answersUnwritten++;
    this.remember(message);
    this.listener.answered(this, message, backoff ? 'failure' : 'neutral');
  }

  private remember(message: NsqMessage): void {
    const at = this.answeredNext;
    this.answeredIds[at] = message.id;
    this.answeredAt[at] = message.receivedAt;
    this.answeredNext = at + 1 === REMEMBERED_ANSWERS ? 0 : at + 1;
  }

  /** When the latest delivery of `id` among the answers remembered arrived, if it is one. */
  private receivedAtOf(id: string): number | undefined {
    for (let k = 1; k <= REMEMBERED_ANSWERS; k++) {
      const at = (this.answeredNext - k + REMEMBERED_ANSWERS) % REMEMBERED_ANSWERS;
      if (this.answeredIds[at] === id) return this.answeredAt[at];
    }
    return undefined;
  }

  /**
   * E_FIN_FAILED / E_REQ_FAILED / E_TOUCH_FAILED. For a message older than msg-timeout it only
   * means the handler was too slow; for a younger one nsqd delivered its id twice.
   */
  private refusedAnswer(error: Error): void {
    const id = /(?:FIN|REQ) ([0-9a-zA-Z]{16}) failed/.exec(error.message)?.[1];
    const receivedAt = id === undefined ? undefined : this.receivedAtOf(id);
    if (receivedAt !== undefined && Date.now() - receivedAt < this.msgTimeout) {
      this.listener.phantom(this, error);
      return;
    }
    error.message +=
      ` (the message timed out at nsqd after msgTimeout ${this.msgTimeout} ms and was or will be ` +
      'delivered again: call ctx.touch() / message.touch() during long work, or raise msgTimeout)';
    this.listener.warning(error);
  }

  touch(message: NsqMessage): void {
    this.connection.write(commands.touch(message.id));
  }
}
