import { ClientNsq, Consumer, NsqValidationError, Producer, ServerNsq } from '../../lib/index.js';

const handler = () => undefined;

describe('options are checked up front, with errors that name the option', () => {
  it.each([
    [
      { nsqd: ['127.0.0.1:4150'], maxInFlight: 0 },
      /option maxInFlight must be an integer >= 1, got 0/,
    ],
    [
      { nsqd: ['127.0.0.1:4150'], maxAttempts: -1 },
      /option maxAttempts must be an integer 0\.\.65535/,
    ],
    [
      { nsqd: ['127.0.0.1:4150'], requeueDelay: 'soon' },
      /option requeueDelay must be an integer 0\.\.3600000 \(ms\) or a function/,
    ],
    [
      { nsqd: ['127.0.0.1:4150'], backoff: { multiplier: 0 } },
      /option backoff\.multiplier must be an integer 1\.\.2147483647 \(ms\)/,
    ],
    [
      { nsqd: ['127.0.0.1:4150'], heartbeatInterval: 10 },
      /option heartbeatInterval must be an integer 1000\.\.2147483647 \(ms\)/,
    ],
    [
      { nsqd: ['127.0.0.1:4150'], deflateLevel: 12 },
      /option deflateLevel must be an integer 1\.\.9/,
    ],
    [
      { nsqd: ['127.0.0.1:4150'], lookupdPollJitter: 2 },
      /option lookupdPollJitter must be a number 0\.\.1/,
    ],
    [
      { nsqd: ['localhost'] },
      /option nsqd has an invalid address "localhost"; expected 'host:port'/,
    ],
    [
      { nsqd: ['http://127.0.0.1:4150'] },
      /option nsqd has an invalid address "http:\/\/127\.0\.0\.1:4150"/,
    ],
    [{ nsqd: ['127.0.0.1:99999'] }, /option nsqd has an invalid address "127\.0\.0\.1:99999"/],
    [
      { lookupd: ['ftp://x:1'] },
      /option lookupd has an invalid address .*'http\(s\):\/\/host:port'/,
    ],
    [{}, /give nsqd .* and\/or lookupd addresses/],
  ])('Consumer %j', (options, message) => {
    expect(() => new Consumer('t', 'c', handler, options as never)).toThrow(message);
    expect(() => new Consumer('t', 'c', handler, options as never)).toThrow(NsqValidationError);
  });

  it('Consumer names a bad topic or channel', () => {
    expect(() => new Consumer('bad topic', 'c', handler, { nsqd: ['127.0.0.1:4150'] })).toThrow(
      /Invalid NSQ topic name "bad topic"/,
    );
    expect(() => new Consumer('t', 'c/d', handler, { nsqd: ['127.0.0.1:4150'] })).toThrow(
      /Invalid NSQ channel name "c\/d"/,
    );
  });

  it.each([
    [{ nsqd: [] }, /option nsqd must list at least one nsqd TCP address/],
    [
      { nsqd: ['127.0.0.1:4150'], maxBatchCount: 0 },
      /option maxBatchCount must be an integer >= 1/,
    ],
    [
      { nsqd: ['127.0.0.1:4150'], maxBodySize: 100, maxBatchBytes: 200 },
      /option maxBatchBytes must be an integer 1\.\.maxBodySize \(100\)/,
    ],
    [{ nsqd: ['127.0.0.1:4150'], tls: 'yes' }, /option tls must be a boolean or Node TLS options/],
  ])('Producer %j', (options, message) => {
    expect(() => new Producer(options as never)).toThrow(message);
  });

  it('ServerNsq and ClientNsq pass the same checks on', () => {
    expect(() => new ServerNsq({})).toThrow(/ServerNsq: give nsqd/);
    expect(() => new ServerNsq({ nsqd: ['127.0.0.1:4150'], maxInFlight: -1 })).toThrow(
      /^ServerNsq: option maxInFlight must be an integer >= 1, got -1$/,
    );
    expect(() => new ServerNsq({ nsqd: ['127.0.0.1:4150'], deadLetterTopic: 'no spaces' })).toThrow(
      /Invalid NSQ topic name "no spaces"/,
    );
    expect(() => new ClientNsq({ nsqd: ['127.0.0.1:4150'], maxMessageSize: -5 })).toThrow(
      /option maxMessageSize/,
    );
  });

  it('refuses outputBufferTimeout -1 without outputBufferSize -1 (nsqd would never flush a part-full buffer)', () => {
    const timerOff = { nsqd: ['127.0.0.1:4150'], outputBufferTimeout: -1 };
    const why = /outputBufferTimeout -1 turns nsqd's flush timer off.*give outputBufferSize: -1/;
    expect(() => new Consumer('t', 'c', handler, timerOff)).toThrow(why);
    expect(() => new Producer(timerOff)).toThrow(why);
    expect(() => new ServerNsq(timerOff)).toThrow(why);
    expect(() => new ClientNsq(timerOff)).toThrow(why);
    expect(() => new ServerNsq({ ...timerOff, outputBufferSize: -1 })).not.toThrow();
  });
});
