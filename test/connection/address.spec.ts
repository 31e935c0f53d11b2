import fc from 'fast-check';
import {
  checkAddressList,
  isIp,
  joinHostPort,
  parseAddress,
} from '../../lib/connection/address.js';
import { NsqConnectionError, NsqError, NsqValidationError } from '../../lib/errors.js';
import { thrownBy } from '../harness/thrown.js';

describe('parseAddress', () => {
  it.each([
    ['127.0.0.1:4150', '127.0.0.1', 4150],
    ['localhost:4150', 'localhost', 4150],
    ['nsqd-0.nsqd.default.svc.cluster.local:4150', 'nsqd-0.nsqd.default.svc.cluster.local', 4150],
    ['h:1', 'h', 1],
    ['h:65535', 'h', 65535],
    ['[::1]:4150', '::1', 4150],
    ['[2001:db8::8a2e:370:7334]:4151', '2001:db8::8a2e:370:7334', 4151],
    ['[::ffff:127.0.0.1]:80', '::ffff:127.0.0.1', 80],
    ['[2001:db8:0:0:1:0:0:1]:4150', '2001:db8:0:0:1:0:0:1', 4150],
  ])('splits %j', (address, host, port) => {
    expect(parseAddress(address)).toEqual({ host, port });
  });

  it('returns the port as a number', () => {
    expect(typeof parseAddress('h:4150').port).toBe('number');
  });

  it.each([
    ['an empty string', ''],
    ['a missing port', 'localhost'],
    ['an empty port', 'localhost:'],
    ['a missing host', ':4150'],
    ['port 0', 'localhost:0'],
    ['port 65536', 'localhost:65536'],
    ['port 99999', 'localhost:99999'],
    ['a six-digit port', 'localhost:100000'],
    ['a negative port', 'localhost:-1'],
    ['a non-numeric port', 'localhost:http'],
    ['a fractional port', 'localhost:41.5'],
    ['a URL', 'http://x:1'],
    ['a URL with a path', 'x:1/path'],
    ['a leading space', ' localhost:4150'],
    ['a trailing space', 'localhost:4150 '],
    ['a space in the host', 'local host:4150'],
    ['a space before the port', 'localhost: 4150'],
    ['a trailing newline', 'localhost:4150\n'],
    ['a bare IPv6 address', '::1:4150'],
    ['an IPv6 address without a port', '[::1]'],
    ['empty brackets', '[]:4150'],
    ['two ports', 'h:1:2'],
  ])('throws NsqConnectionError for %s', (_what, address) => {
    const err = thrownBy(() => parseAddress(address));
    expect(err).toBeInstanceOf(NsqConnectionError);
    expect(err).toBeInstanceOf(NsqError);
    const e = err as NsqConnectionError;
    expect(e.code).toBe('ERR_NSQ_CONNECTION');
    expect(e.address).toBe(address);
    expect(e.message).toBe(
      `Invalid nsqd address ${JSON.stringify(address)}: expected 'host:port' ('[v6]:port'), e.g. '127.0.0.1:4150'`,
    );
  });

  it('accepts every port from 1 to 65535 and round-trips through joinHostPort', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constantFrom('localhost', '10.0.0.1', 'nsqd.example', '::1', 'fe80::1', '2001:db8::1'),
          fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/),
        ),
        fc.integer({ min: 1, max: 65535 }),
        (host, port) => {
          expect(parseAddress(joinHostPort(host, port))).toEqual({ host, port });
        },
      ),
    );
  });
});

describe('isIp', () => {
  it.each(['127.0.0.1', '10.1.2.3', '255.255.255.255', '::1', '::', 'fe80::1', '2001:db8::1'])(
    'is true for the IP literal %s',
    (host) => {
      expect(isIp(host)).toBe(true);
    },
  );

  it.each(['localhost', 'nsqd.example.com', 'nsqd-0', 'a1.b2', ''])(
    'is false for the host name %j',
    (host) => {
      expect(isIp(host)).toBe(false);
    },
  );
});

describe('joinHostPort', () => {
  it('joins a name or IPv4 host with a colon', () => {
    expect(joinHostPort('localhost', 4150)).toBe('localhost:4150');
    expect(joinHostPort('10.0.0.1', 1)).toBe('10.0.0.1:1');
  });

  it('brackets an IPv6 host', () => {
    expect(joinHostPort('::1', 4150)).toBe('[::1]:4150');
    expect(joinHostPort('2001:db8::1', 65535)).toBe('[2001:db8::1]:65535');
    expect(joinHostPort('2001:db8:0:0:1:0:0:1', 4150)).toBe('[2001:db8:0:0:1:0:0:1]:4150');
  });
});

describe('checkAddressList', () => {
  it('returns [] for undefined', () => {
    expect(checkAddressList('Consumer', 'nsqd', undefined)).toEqual([]);
    expect(checkAddressList('Consumer', 'lookupd', undefined)).toEqual([]);
  });

  it('returns the same array when every nsqd address is host:port', () => {
    const list = ['127.0.0.1:4150', 'nsqd:4150', '[::1]:4150'];
    expect(checkAddressList('Producer', 'nsqd', list)).toBe(list);
    const empty: string[] = [];
    expect(checkAddressList('Producer', 'nsqd', empty)).toBe(empty);
  });

  it('accepts lookupd addresses as host:port or http(s)://host:port, with a trailing slash', () => {
    const list = [
      '127.0.0.1:4161',
      'http://lookupd:4161',
      'https://lookupd.example:4161',
      'http://lookupd:4161/',
      'http://[::1]:4161',
    ];
    expect(checkAddressList('Consumer', 'lookupd', list)).toBe(list);
  });

  it.each([['http://nsqd:4150'], ['https://nsqd:4150'], ['nsqd:4150/']])(
    'rejects the lookupd-only form %j for nsqd',
    (address) => {
      const err = thrownBy(() => checkAddressList('Producer', 'nsqd', [address]));
      expect(err).toBeInstanceOf(NsqValidationError);
      expect((err as NsqValidationError).code).toBe('ERR_NSQ_VALIDATION');
      expect((err as NsqValidationError).message).toBe(
        `Producer: option nsqd has an invalid address ${JSON.stringify(address)}; expected 'host:port'` +
          " (nsqd's TCP address, port 4150 by default)",
      );
    },
  );

  it.each([
    ['a missing port', 'lookupd'],
    ['another scheme', 'ftp://lookupd:4161'],
    ['an upper-case scheme', 'HTTP://lookupd:4161'],
    ['a path', 'http://lookupd:4161/nodes'],
    ['a doubled scheme', 'http://http://lookupd:4161'],
    ['port 0', 'http://lookupd:0'],
    ['port 65536', 'lookupd:65536'],
  ])('rejects a lookupd address with %s, naming owner, option and entry', (_what, address) => {
    const err = thrownBy(() => checkAddressList('ServerNsq', 'lookupd', [address]));
    expect(err).toBeInstanceOf(NsqValidationError);
    expect((err as NsqValidationError).message).toBe(
      `ServerNsq: option lookupd has an invalid address ${JSON.stringify(address)}; ` +
        "expected 'host:port' or 'http(s)://host:port'",
    );
  });

  it('names the first bad entry, after good ones', () => {
    const err = thrownBy(() =>
      checkAddressList('Consumer', 'nsqd', ['a:1', 'b:2', 'bad', 'also bad']),
    ) as NsqValidationError;
    expect(err.message).toContain('"bad"');
    expect(err.message).not.toContain('also bad');
  });

  it.each([
    ['a number entry', 4150],
    ['a null entry', null],
    ['an undefined entry', undefined],
  ])('rejects %s', (_what, entry) => {
    for (const name of ['nsqd', 'lookupd'] as const) {
      expect(() => checkAddressList('Consumer', name, ['a:1', entry])).toThrow(NsqValidationError);
    }
  });

  it.each([
    ['a string', 'localhost:4150'],
    ['an object', { host: 'h', port: 1 }],
    ['null', null],
    ['a number', 4150],
  ])('rejects %s where an array is expected, naming owner and option', (_what, value) => {
    const nsqd = thrownBy(() => checkAddressList('Producer', 'nsqd', value));
    expect(nsqd).toBeInstanceOf(NsqValidationError);
    expect((nsqd as Error).message).toBe(
      "Producer: option nsqd must be an array of 'host:port' strings",
    );
    const lookupd = thrownBy(() => checkAddressList('Consumer', 'lookupd', value));
    expect(lookupd).toBeInstanceOf(NsqValidationError);
    expect((lookupd as Error).message).toBe(
      "Consumer: option lookupd must be an array of 'host:port' or 'http(s)://host:port' strings",
    );
  });
});
