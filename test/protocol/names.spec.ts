import fc from 'fast-check';
import { NsqError, NsqValidationError } from '../../lib/errors.js';
import { assertChannelName, assertTopicName, isValidName } from '../../lib/protocol/names.js';

const ALLOWED = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-';
const allowedArb = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...ALLOWED), minLength, maxLength });

/** Asserts `name` is rejected by all three checks, with an error naming it and the problem. */
function expectRejected(name: unknown, problem: string | RegExp): void {
  expect(isValidName(name)).toBe(false);
  for (const [assert, kind] of [
    [assertTopicName, 'topic'],
    [assertChannelName, 'channel'],
  ] as const) {
    let thrown: unknown;
    try {
      assert(name);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(NsqValidationError);
    expect(thrown).toBeInstanceOf(NsqError);
    const error = thrown as NsqValidationError;
    expect(error.name).toBe('NsqValidationError');
    expect(error.message).toContain(`${kind} name ${JSON.stringify(name)}`);
    expect(error.message).toMatch(problem);
  }
}

function expectAccepted(name: string): void {
  expect(isValidName(name)).toBe(true);
  expect(() => assertTopicName(name)).not.toThrow();
  expect(() => assertChannelName(name)).not.toThrow();
}

const BAD_CHARS = /may contain only letters, digits/;

describe('topic and channel names', () => {
  it.each([
    'a',
    'orders',
    'Orders.v2_final-1',
    '.',
    '-',
    '_',
    '...',
    '0',
    'a#ephemeral',
    'ch.1_x-y#ephemeral',
  ])('accepts %j', (name) => expectAccepted(name));

  it('accepts exactly 64 characters and rejects 65', () => {
    expectAccepted('a'.repeat(64));
    expectRejected('a'.repeat(65), /1 to 64 characters.*got 65/);
    expectRejected('a'.repeat(200), /got 200/);
  });

  it('counts #ephemeral in the 64 characters', () => {
    expectAccepted(`${'a'.repeat(54)}#ephemeral`);
    expect(`${'a'.repeat(54)}#ephemeral`).toHaveLength(64);
    expectRejected(`${'a'.repeat(55)}#ephemeral`, /1 to 64 characters.*got 65/);
  });

  it('rejects the empty name', () => {
    expectRejected('', /1 to 64 characters.*got 0/);
  });

  it.each([
    'a b',
    ' a',
    'a ',
    'a/b',
    '/',
    'a\\b',
    'a:b',
    'a*',
    'a,b',
    'tópico',
    '日本',
    'emoji😀',
    'a\n',
    '\na',
    'a\tb',
    '#ephemeral',
    'a#',
    'a#eph',
    'a#Ephemeral',
    'a#ephemeral#ephemeral',
    'a#ephemeralx',
    'a#ephemeral ',
  ])('rejects %j as badly formed', (name) => expectRejected(name, BAD_CHARS));

  it.each([undefined, null, 42, {}, ['a']])('rejects the non-string %j', (name) => {
    expectRejected(name, /must be a string/);
  });

  it('accepts any 1..64 allowed characters, with #ephemeral while it fits', () => {
    fc.assert(
      fc.property(allowedArb(1, 64), fc.boolean(), (name, ephemeral) => {
        const full = ephemeral ? `${name}#ephemeral` : name;
        expect(isValidName(full)).toBe(full.length <= 64);
      }),
    );
  });

  it('rejects a valid name with any other character inserted', () => {
    const otherArb = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 1 })
      .filter((c) => ![...c].every((ch) => ALLOWED.includes(ch)));
    fc.assert(
      fc.property(allowedArb(1, 40), otherArb, fc.nat(), (name, other, at) => {
        const i = at % (name.length + 1);
        const bad = name.slice(0, i) + other + name.slice(i);
        expect(isValidName(bad)).toBe(false);
        expect(() => assertTopicName(bad)).toThrow(NsqValidationError);
      }),
    );
  });
});
