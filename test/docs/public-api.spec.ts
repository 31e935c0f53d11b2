// What `nestjs-nsq` and `nestjs-nsq/protocol` export at run time: the Nest layer and the core
// client at the root, the wire layer only under its subpath, and no internal callbacks.
import * as root from '../../lib/index.js';
import * as protocol from '../../lib/protocol/index.js';

describe('public API', () => {
  it('the root entry exports the Nest layer and the core client, nothing of the wire', () => {
    expect(Object.keys(root).sort()).toEqual(
      [
        'ClientNsq',
        'Consumer',
        'DEFAULT_BACKOFF',
        'NSQ_MODULE_OPTIONS',
        'NSQ_TRANSPORT',
        'NsqAlreadyAnsweredError',
        'NsqBackpressureError',
        'NsqClosedError',
        'NsqConnectionError',
        'NsqContext',
        'NsqDecodeError',
        'NsqError',
        'NsqHealthIndicator',
        'NsqMessage',
        'NsqModule',
        'NsqProtocolError',
        'NsqRecord',
        'NsqRecordBuilder',
        'NsqRequestError',
        'NsqResponseError',
        'NsqValidationError',
        'PROMETHEUS_CONTENT_TYPE',
        'Producer',
        'ServerNsq',
        'defaultRequeueDelay',
        'lookupTopic',
        'parseDeadLetter',
        'prometheusText',
      ].sort(),
    );
  });

  it('the wire layer is under nestjs-nsq/protocol', () => {
    for (const name of ['commands', 'MAGIC_V2', 'FrameDecoder', 'DecodedMessage', 'FrameType']) {
      expect(protocol).toHaveProperty(name);
      expect(root).not.toHaveProperty(name);
    }
  });

  it('Consumer and Producer have no public internal callbacks', () => {
    const consumer = Object.getOwnPropertyNames(root.Consumer.prototype);
    for (const name of ['deliver', 'dropped', 'answered', 'updateRdy', 'giveUp'])
      expect(consumer).not.toContain(name);
    const producer = Object.getOwnPropertyNames(root.Producer.prototype);
    for (const name of ['dispatch', 'flushBatch', 'onErrorFrame', 'onClose'])
      expect(producer).not.toContain(name);
  });

  it('every error has a stable code', () => {
    expect(new root.NsqValidationError('x').code).toBe('ERR_NSQ_VALIDATION');
    expect(new root.NsqClosedError('x').code).toBe('ERR_NSQ_CLOSED');
    expect(new root.NsqAlreadyAnsweredError('x').code).toBe('ERR_NSQ_ALREADY_ANSWERED');
    expect(new root.NsqProtocolError('x').code).toBe('ERR_NSQ_PROTOCOL');
    expect(new root.NsqDecodeError('x').code).toBe('ERR_NSQ_DECODE');
    expect(new root.NsqResponseError('E_BAD_TOPIC', 'bad').code).toBe('E_BAD_TOPIC');
    expect(new root.NsqConnectionError('x').code).toBe('ERR_NSQ_CONNECTION');
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(new root.NsqConnectionError('x', 'a:1', { cause: refused }).code).toBe('ECONNREFUSED');
    expect(new root.NsqValidationError('x')).toBeInstanceOf(root.NsqError);
  });
});
