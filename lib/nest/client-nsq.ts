import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { OnApplicationShutdown } from '@nestjs/common';
import {
  ClientProxy,
  type ProducerDeserializer,
  type ProducerSerializer,
  type ReadPacket,
  type WritePacket,
} from '@nestjs/microservices';
import { Observable, type Subscriber } from 'rxjs';
import { Consumer } from '../consumer/consumer.js';
import type { NsqMessage } from '../consumer/nsq-message.js';
import { checkProducerOptions, producerSchema, type ProducerOptions } from '../producer/options.js';
import { hasMethod, resolveOptions, spec, type OptionsSchema } from '../options.js';
import { Producer } from '../producer/producer.js';
import { NsqError, NsqValidationError } from '../errors.js';
import type { NsqStatus } from './constants.js';
import { encodeBody, encodeRequest, type ReplyEnvelope } from './payload.js';
import { NsqRecord } from './nsq-record.js';

export interface NsqClientOptions extends ProducerOptions {
  /** Turns `{ pattern, data }` into a message body; default: Buffer/string as is, else JSON. */
  serializer?: ProducerSerializer;
  /** Turns a reply into `{ id, response, err, isDisposed }`; default: Nest's. */
  deserializer?: ProducerDeserializer;
}

export const clientSchema: OptionsSchema<NsqClientOptions> = {
  ...producerSchema,
  serializer: spec<ProducerSerializer>(
    undefined,
    hasMethod('serialize'),
    'an object with serialize()',
    'turns `{ pattern, data }` into a body; as in Nest',
    { defaultText: 'Buffer/string as is, else JSON' },
  ),
  deserializer: spec<ProducerDeserializer>(
    undefined,
    hasMethod('deserialize'),
    'an object with deserialize()',
    'turns a reply into `{ id, response, err, isDisposed }`; as in Nest',
    { defaultText: "Nest's" },
  ),
};

export type NsqClientEvents = {
  connected: (address: string) => void;
  disconnected: (address: string, error: Error | undefined) => void;
  error: (error: Error) => void;
};

/**
 * Publishes to NSQ from Nest: `emit(topic, data)` is PUB (coalesced into MPUB), an NsqRecord
 * with a delay is DPUB; `send(topic, data)` is a request answered by a @MessagePattern handler.
 *
 * The base's status type stays `string` so that ClientNsq fits ClientsModule's `customClass`.
 */
export class ClientNsq extends ClientProxy<NsqClientEvents> implements OnApplicationShutdown {
  private readonly producer: Producer;
  private readonly events = new EventEmitter();
  private connection?: Promise<Producer>;
  private replies?: Promise<{ topic: string; consumer: Consumer }>;

  constructor(private readonly options: NsqClientOptions) {
    super();
    if (options && typeof options === 'object') {
      checkProducerOptions(
        'ClientNsq',
        options,
        resolveOptions('ClientNsq', clientSchema, options),
      );
    }
    this.producer = new Producer(options);
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
    this.events.on('error', () => {}); // listeners are optional
    this.producer.on('connected', (address) => {
      this._status$.next('connected');
      this.events.emit('connected', address);
    });
    this.producer.on('disconnected', (address, error) => {
      this._status$.next('disconnected');
      this.events.emit('disconnected', address, error);
    });
  }

  /** 'connected' | 'disconnected' | 'reconnecting', without repeats. */
  override get status(): Observable<NsqStatus> {
    return super.status as Observable<NsqStatus>;
  }

  /** Connects to the first reachable nsqd. Cached: every caller shares one attempt. */
  connect(): Promise<Producer> {
    this.connection ??= this.producer.connect().then(
      () => this.producer,
      (err: unknown) => {
        this.connection = undefined;
        throw err;
      },
    );
    return this.connection;
  }

  /**
   * Publishes at once (hot, like Nest's emit) without Nest's per-call connect and Observable
   * plumbing; the returned Observable completes when nsqd acknowledged, or errors.
   */
  override emit<TResult = any, TInput = any>(pattern: any, data: TInput): Observable<TResult> {
    if (pattern === undefined || pattern === null || data === undefined || data === null) {
      const error = new NsqValidationError(
        'ClientNsq.emit(topic, data): both a topic and data are required',
      );
      return new Observable((s) => s.error(error));
    }
    return settled(this.dispatchEvent(this.createPacket(pattern, data)));
  }

  protected dispatchEvent<T = any>(packet: ReadPacket): Promise<T> {
    const topic = topicOf(packet.pattern);
    const record = packet.data instanceof NsqRecord ? packet.data : undefined;
    const data = record ? record.data : packet.data;
    if (this.options.serializer) {
      return Promise.resolve(this.serializer.serialize({ pattern: packet.pattern, data })).then(
        (serialized) => this.publishBody(topic, asBody(serialized), record) as Promise<T>,
      );
    }
    // No async wrapper on the common path: one promise per emit, the producer's own.
    try {
      return this.publishBody(topic, encodeBody(data), record) as Promise<T>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private publishBody(topic: string, body: Buffer | string, record?: NsqRecord): Promise<void> {
    const delay = record?.options.delay;
    return delay !== undefined
      ? this.producer.publishDeferred(topic, delay, body)
      : this.producer.publish(topic, body);
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const id = randomUUID();
    this.routingMap.set(id, callback);
    this.replyTopic()
      .then((replyTo) =>
        this.producer.publish(topicOf(packet.pattern), encodeRequest(id, replyTo, packet.data)),
      )
      .catch((err: unknown) => {
        if (this.routingMap.delete(id)) callback({ err, isDisposed: true });
      });
    return () => this.routingMap.delete(id);
  }

  /** The ephemeral topic this client receives replies on, subscribed on every nsqd it uses. */
  private async replyTopic(): Promise<string> {
    this.replies ??= (async () => {
      const topic = `reply.${randomBytes(8).toString('hex')}#ephemeral`;
      const { serializer: _s, deserializer: _d, ...settings } = this.options;
      const consumer = new Consumer(topic, 'client#ephemeral', (m) => this.onReply(m), {
        ...settings,
        maxInFlight: 1000,
        maxAttempts: 1,
        backoff: false,
      });
      consumer.on('warning', (error) => this.events.emit('error', error));
      await consumer.start();
      return { topic, consumer };
    })().catch((err: unknown) => {
      this.replies = undefined;
      throw err;
    });
    return (await this.replies).topic;
  }

  private async onReply(message: NsqMessage): Promise<void> {
    let reply: ReplyEnvelope;
    try {
      reply = (await this.deserializer.deserialize(
        JSON.parse(message.body.toString()),
      )) as ReplyEnvelope;
    } catch {
      this.events.emit(
        'error',
        new NsqError(
          `Undecodable reply on ${message.topic}: ${message.body.toString().slice(0, 200)}`,
        ),
      );
      return;
    }
    const callback = this.routingMap.get(reply.id);
    if (!callback) return; // the caller unsubscribed or the request timed out
    if (reply.isDisposed || reply.err !== undefined) this.routingMap.delete(reply.id);
    callback(reply);
  }

  /** Publishes what is batched, waits for acknowledgements, then disconnects. */
  async close(): Promise<void> {
    const replies = this.replies;
    this.replies = undefined;
    this.connection = undefined;
    await Promise.all([
      this.producer.close(),
      replies?.then(
        (r) => r.consumer.close(),
        () => undefined,
      ),
    ]);
    this._status$.next('disconnected');
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  override on<K extends keyof NsqClientEvents, C extends NsqClientEvents[K] = NsqClientEvents[K]>(
    event: K,
    callback: C,
  ): void {
    this.events.on(event, callback as (...args: any[]) => void);
  }

  /** The underlying Producer. */
  unwrap<T = Producer>(): T {
    return this.producer as T;
  }
}

/** 'orders' or 'orders/billing' -> 'orders': a pattern names the topic to publish to. */
function topicOf(pattern: unknown): string {
  const p = typeof pattern === 'string' ? pattern : JSON.stringify(pattern);
  const slash = p.indexOf('/');
  return slash < 0 ? p : p.slice(0, slash);
}

function asBody(value: unknown): Buffer | string {
  return Buffer.isBuffer(value) || typeof value === 'string' ? value : JSON.stringify(value);
}

/** A hot result: the work already runs; subscribers learn how it ended, late ones too. */
function settled<T>(work: Promise<unknown>): Observable<T> {
  let outcome: { error?: unknown } | undefined;
  const waiting: Subscriber<T>[] = [];
  work.then(
    () => {
      outcome = {};
      for (const s of waiting.splice(0)) s.complete();
    },
    (error: unknown) => {
      outcome = { error };
      for (const s of waiting.splice(0)) s.error(error);
    },
  );
  return new Observable<T>((subscriber) => {
    if (!outcome) waiting.push(subscriber);
    else if ('error' in outcome) subscriber.error(outcome.error);
    else subscriber.complete();
  });
}
