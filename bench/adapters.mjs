// One adapter per implementation under test: how to start a consumer whose handler does nothing
// (but count), and how to get a client that emits; for request/response (ours, NATS, Redis) an
// echo server and a client that sends. Loaded only by scenario children.
import 'reflect-metadata';
import net from 'node:net';
import { once } from 'node:events';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ClientProxyFactory,
  Ctx,
  EventPattern,
  MessagePattern,
  Payload,
  Transport,
} from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { MAX_IN_FLIGHT, NATS_URL, REDIS, RMQ_URL, withTimeout } from './common.mjs';
import { preloadForNest, requirePeer } from './peers.mjs';

/** How long a connect / listen may take before the row is reported as failed. */
const START_TIMEOUT = 20_000;
/** How long a close may take; a row never waits longer for a library to let go. */
const CLOSE_TIMEOUT = 5_000;

const closing = (what, fn) => withTimeout(Promise.resolve().then(fn), CLOSE_TIMEOUT, what);

/**
 * A Nest microservice with one controller whose handler, as a user would write it,
 * `@EventPattern(pattern) handle(@Payload() data, @Ctx() ctx)`, calls `onMessage(data, ctx)`
 * and returns nothing; with `reply`, `@MessagePattern(pattern)` and it returns what
 * `onMessage` returns. Decorators are applied by hand (plain JS).
 */
/** A Nest transport's ClientProxy, connected (the transport's own client library loaded first). */
async function nestClient(kind, transport, options) {
  await nestTransport(kind);
  const client = ClientProxyFactory.create({ transport, options });
  await withTimeout(client.connect(), START_TIMEOUT, `Nest ${kind} client connect()`);
  return client;
}

async function nestMicroservice(options, pattern, onMessage, { reply = false } = {}) {
  let flowing;
  const firstMessage = new Promise((resolve) => (flowing = resolve));
  class BenchController {
    handle(data, ctx) {
      if (flowing) flowing = flowing() ?? undefined;
      const result = onMessage(data, ctx);
      if (reply) return result;
    }
  }
  const descriptor = Object.getOwnPropertyDescriptor(BenchController.prototype, 'handle');
  Payload()(BenchController.prototype, 'handle', 0);
  Ctx()(BenchController.prototype, 'handle', 1);
  (reply ? MessagePattern : EventPattern)(pattern)(BenchController.prototype, 'handle', descriptor);
  Controller()(BenchController);
  class BenchModule {}
  Module({ controllers: [BenchController] })(BenchModule);
  const app = await NestFactory.createMicroservice(BenchModule, {
    ...options,
    logger: false,
    abortOnError: false,
  });
  // Messages that flow before listen() resolves count: a transport whose listen() never
  // resolves although it consumes is reported as such (see `issues`), not as a failure.
  let listening = false;
  const listen = app.listen().then(() => (listening = true));
  await withTimeout(Promise.race([listen, firstMessage]), START_TIMEOUT, 'microservice listen()');
  return {
    close: () => closing('microservice close()', () => app.close()),
    issues: () => (listening ? [] : ['listen() never resolved (messages flowed anyway)']),
  };
}

/** Subscribes to a Nest ClientProxy's emit() and resolves when it completes. */
const emitted = (client, pattern, data) => lastValueFrom(client.emit(pattern, data));

/** A Nest ClientProxy's send(), awaited as a user would: the first (only) reply. */
const answered = (client, pattern, data) => firstValueFrom(client.send(pattern, data));

/** The echo handler of the rpc scenario: the reply is the request's data. */
const echo = (data) => data;

let ours;
async function loadOurs() {
  ours ??= await import('../dist/index.js');
  return ours;
}

function nnt() {
  return requirePeer('nest-nsq-transport');
}

function nsqjs() {
  return requirePeer('nsqjs');
}

/** The client libraries Nest's own transports load, from bench/peers (see peers.mjs). */
const NEST_TRANSPORT_PEERS = {
  nats: ['@nats-io/transport-node'],
  redis: ['ioredis'],
  rmq: ['amqplib', 'amqp-connection-manager'],
};
const nestTransport = (name) => preloadForNest(NEST_TRANSPORT_PEERS[name]);

/** The address list a consumer is pointed at: direct nsqd, or lookupd for "scale". */
const where = (cfg) => (cfg.lookupd?.length ? { lookupd: cfg.lookupd } : { nsqd: cfg.nsqd });

export const adapters = {
  ours: {
    label: 'nestjs-nsq (ours)',
    async consumer(cfg, onMessage) {
      const { ServerNsq } = await loadOurs();
      return nestMicroservice(
        {
          strategy: new ServerNsq({
            ...where(cfg),
            maxInFlight: MAX_IN_FLIGHT,
            ...cfg.serverOptions,
          }),
        },
        `${cfg.topic}/${cfg.channel}`,
        (data) => onMessage(data),
      );
    },
    async client(cfg) {
      const { ClientNsq } = await loadOurs();
      const client = new ClientNsq({ nsqd: cfg.nsqd });
      await withTimeout(client.connect(), START_TIMEOUT, 'ClientNsq.connect()');
      return {
        emit: (data) => emitted(client, cfg.topic, data),
        close: () => closing('ClientNsq.close()', () => client.close()),
      };
    },
    async rpcServer(cfg) {
      const { ServerNsq } = await loadOurs();
      return nestMicroservice(
        { strategy: new ServerNsq({ nsqd: cfg.nsqd, maxInFlight: MAX_IN_FLIGHT }) },
        `${cfg.topic}/${cfg.channel}`,
        echo,
        { reply: true },
      );
    },
    async rpcClient(cfg) {
      const { ClientNsq } = await loadOurs();
      const client = new ClientNsq({ nsqd: cfg.nsqd });
      await withTimeout(client.connect(), START_TIMEOUT, 'ClientNsq.connect()');
      return {
        send: (data) => answered(client, cfg.topic, data),
        close: () => closing('ClientNsq.close()', () => client.close()),
      };
    },
  },

  // Our core client without Nest: the same JSON decode / encode as the Nest rows, so the gap
  // between this row and ours is what Nest's handler pipeline and ClientProxy cost.
  'ours-core': {
    label: 'ours, core Consumer/Producer (no Nest)',
    async consumer(cfg, onMessage) {
      const { Consumer } = await loadOurs();
      const consumer = new Consumer(
        cfg.topic,
        cfg.channel,
        (message) => onMessage(JSON.parse(message.body.toString())),
        { ...where(cfg), maxInFlight: MAX_IN_FLIGHT },
      );
      await withTimeout(consumer.start(), START_TIMEOUT, 'Consumer.start()');
      return { close: () => closing('Consumer.close()', () => consumer.close()) };
    },
    async client(cfg) {
      const { Producer } = await loadOurs();
      const producer = new Producer({ nsqd: cfg.nsqd });
      await withTimeout(producer.connect(), START_TIMEOUT, 'Producer.connect()');
      return {
        emit: (data) => producer.publish(cfg.topic, JSON.stringify(data)),
        close: () => closing('Producer.close()', () => producer.close()),
      };
    },
  },

  // No library at all: one socket, PUB, wait for its OK. The floor of one awaited emit.
  wire: {
    label: 'bare socket PUB (no library)',
    async client(cfg) {
      const [host, port] = cfg.nsqd[0].split(':');
      const socket = net.connect(Number(port), host);
      socket.setNoDelay(true);
      await withTimeout(once(socket, 'connect'), START_TIMEOUT, 'socket connect');
      socket.write('  V2');
      const header = Buffer.from(`PUB ${cfg.topic}\n`);
      let waiting;
      let received = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        received = received.length ? Buffer.concat([received, chunk]) : chunk;
        // Frames: size, type, data. Only OK (or an error) answers a PUB here.
        while (received.length >= 8 && received.length >= 4 + received.readUInt32BE(0)) {
          const size = received.readUInt32BE(0);
          const type = received.readUInt32BE(4);
          const text = received.toString('utf8', 8, 4 + size);
          received = received.subarray(4 + size);
          if (text === '_heartbeat_') socket.write('NOP\n');
          else waiting?.(type === 0 ? undefined : new Error(text));
        }
      });
      const publish = (body) =>
        new Promise((resolve, reject) => {
          waiting = (err) => (err ? reject(err) : resolve());
          const size = Buffer.allocUnsafe(4);
          size.writeUInt32BE(body.length);
          socket.write(Buffer.concat([header, size, body]));
        });
      return {
        emit: (data) => publish(Buffer.from(JSON.stringify(data))),
        close: () => socket.destroy(),
      };
    },
  },

  nnt: {
    label: 'nest-nsq-transport 0.4.0',
    async consumer(cfg, onMessage) {
      const { NSQStrategy, JSONDeserializer } = nnt();
      const channelOptions = cfg.lookupd?.length
        ? { lookupdHTTPAddresses: cfg.lookupd }
        : { nsqdTCPAddresses: cfg.nsqd };
      return nestMicroservice(
        {
          strategy: new NSQStrategy({
            deserializer: new JSONDeserializer(),
            defaultChannelOptions: { ...channelOptions, maxInFlight: MAX_IN_FLIGHT },
          }),
        },
        `${cfg.topic}/${cfg.channel}`,
        (data) => onMessage(data),
      );
    },
    async client(cfg) {
      const { NSQClient, JSONSerializer } = nnt();
      const client = new NSQClient({ nsqdURL: cfg.nsqd[0], serializer: new JSONSerializer() });
      await withTimeout(client.connect(), START_TIMEOUT, 'NSQClient.connect()');
      return {
        emit: (data) => emitted(client, cfg.topic, data),
        close: () => closing('NSQClient.close()', () => client.close()),
      };
    },
  },

  nsqjs: {
    label: 'nsqjs 0.13.0 raw (no Nest)',
    async consumer(cfg, onMessage) {
      const { Reader } = nsqjs();
      const reader = new Reader(cfg.topic, cfg.channel, {
        ...(cfg.lookupd?.length
          ? { lookupdHTTPAddresses: cfg.lookupd }
          : { nsqdTCPAddresses: cfg.nsqd }),
        maxInFlight: MAX_IN_FLIGHT,
      });
      reader.on('message', (msg) => {
        onMessage(JSON.parse(msg.body));
        msg.finish();
      });
      // nsqjs emits 'ready' only when it reads from a single nsqd: with several (scale) it
      // never comes, so the first connection is enough to go on.
      let ready = false;
      await withTimeout(
        new Promise((resolve, reject) => {
          reader.once('ready', () => resolve((ready = true)));
          reader.once('nsqd_connected', resolve);
          reader.once('error', reject);
          reader.connect();
        }),
        START_TIMEOUT,
        'nsqjs Reader connect',
      );
      reader.on('error', () => {});
      return {
        close: () => closing('nsqjs Reader.close()', () => reader.close()),
        issues: () => (ready ? [] : ["Reader never emitted 'ready' (messages flowed anyway)"]),
      };
    },
    async client(cfg, { batch = 1 } = {}) {
      const { Writer } = nsqjs();
      const [host, port] = cfg.nsqd[0].split(':');
      const writer = new Writer(host, Number(port));
      await withTimeout(
        new Promise((resolve, reject) => {
          writer.once('ready', resolve);
          writer.once('error', reject);
          writer.connect();
        }),
        START_TIMEOUT,
        'nsqjs Writer ready',
      );
      writer.on('error', () => {});
      const publish = (msgs) =>
        new Promise((resolve, reject) =>
          writer.publish(cfg.topic, msgs, (err) => (err ? reject(err) : resolve())),
        );
      // With batch > 1 the caller hands over arrays of data: one MPUB each.
      const encode = (data) => Buffer.from(JSON.stringify(data));
      return {
        emit: batch > 1 ? (datas) => publish(datas.map(encode)) : (data) => publish(encode(data)),
        close: () =>
          closing(
            'nsqjs Writer.close()',
            () =>
              new Promise((resolve) => {
                writer.once('closed', resolve);
                writer.close();
              }),
          ),
      };
    },
  },

  nats: {
    label: 'Nest NATS transport',
    retains: false,
    async consumer(cfg, onMessage) {
      await nestTransport('nats');
      return nestMicroservice(
        { transport: Transport.NATS, options: { servers: [NATS_URL] } },
        cfg.subject,
        (data) => onMessage(data),
      );
    },
    async client(cfg) {
      const client = await nestClient('nats', Transport.NATS, { servers: [NATS_URL] });
      return {
        emit: (data) => emitted(client, cfg.subject, data),
        // NATS publish is fire-and-forget: "acknowledged" = flushed to the server.
        flush: () => client.unwrap().flush(),
        close: () => closing('ClientNats.close()', () => client.close()),
      };
    },
    async rpcServer(cfg) {
      await nestTransport('nats');
      return nestMicroservice(
        { transport: Transport.NATS, options: { servers: [NATS_URL] } },
        cfg.subject,
        echo,
        { reply: true },
      );
    },
    async rpcClient(cfg) {
      const client = await nestClient('nats', Transport.NATS, { servers: [NATS_URL] });
      return {
        send: (data) => answered(client, cfg.subject, data),
        close: () => closing('ClientNats.close()', () => client.close()),
      };
    },
  },

  redis: {
    label: 'Nest Redis transport',
    retains: false,
    async consumer(cfg, onMessage) {
      await nestTransport('redis');
      return nestMicroservice(
        { transport: Transport.REDIS, options: { ...REDIS } },
        cfg.subject,
        (data) => onMessage(data),
      );
    },
    async client(cfg) {
      const client = await nestClient('redis', Transport.REDIS, { ...REDIS });
      return {
        emit: (data) => emitted(client, cfg.subject, data),
        close: () => closing('ClientRedis.close()', () => client.close()),
      };
    },
    async rpcServer(cfg) {
      await nestTransport('redis');
      return nestMicroservice(
        { transport: Transport.REDIS, options: { ...REDIS } },
        cfg.subject,
        echo,
        { reply: true },
      );
    },
    async rpcClient(cfg) {
      const client = await nestClient('redis', Transport.REDIS, { ...REDIS });
      return {
        send: (data) => answered(client, cfg.subject, data),
        close: () => closing('ClientRedis.close()', () => client.close()),
      };
    },
  },

  rmq: {
    label: 'Nest RabbitMQ transport',
    async consumer(cfg, onMessage) {
      await nestTransport('rmq');
      return nestMicroservice(
        {
          transport: Transport.RMQ,
          options: {
            urls: [RMQ_URL],
            queue: cfg.queue,
            queueOptions: { durable: false },
            noAck: false,
            prefetchCount: MAX_IN_FLIGHT,
          },
        },
        cfg.subject,
        (data, ctx) => {
          onMessage(data);
          ctx.getChannelRef().ack(ctx.getMessage());
        },
      );
    },
    async client(cfg) {
      const client = await nestClient('rmq', Transport.RMQ, {
        urls: [RMQ_URL],
        queue: cfg.queue,
        queueOptions: { durable: false },
      });
      return {
        emit: (data) => emitted(client, cfg.subject, data),
        close: () => closing('ClientRMQ.close()', () => client.close()),
      };
    },
  },
};
