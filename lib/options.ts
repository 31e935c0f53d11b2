// One description per option (default, check, doc): validation and defaults come from it here,
// and a test holds the README's option tables to it.
import { NsqValidationError } from './errors.js';

export interface OptionSpec<T> {
  /** The value used when the option is not given (undefined: none). */
  default: T | undefined;
  /** How the README shows the default, when not the value itself. */
  defaultText?: string;
  check: (value: unknown) => boolean;
  /** What a valid value is, completing "option X must be ...". */
  expected: string;
  /** One line for the README's option table. */
  doc: string;
  /** Never printed, not even in a validation error. */
  secret?: boolean;
  /** A check that throws its own, more precise error (used instead of `check`). */
  assert?: (owner: string, name: string, value: unknown) => void;
}

/** A spec for every key of O. */
export type OptionsSchema<O> = { [K in keyof O]-?: OptionSpec<Exclude<O[K], undefined>> };

/** Options with their defaults filled in (a key without a default stays optional). */
export type Resolved<O> = { [K in keyof O]: O[K] };

/** Throws a validation error naming the owner, the option and the expected form. */
export function invalidOption(
  owner: string,
  name: string,
  expected: string,
  value: unknown,
  secret = false,
): NsqValidationError {
  const shown = secret ? `a ${typeof value} (not shown: it is a secret)` : show(value);
  return new NsqValidationError(`${owner}: option ${name} must be ${expected}, got ${shown}`);
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A key the schema does not know is a mistake (a typo reads nothing): an error, did-you-mean. */
export function rejectUnknownOptions(
  owner: string,
  schema: object,
  input: unknown,
  /** The schemas of the components users mix this one up with, by name: a hint when it fits. */
  elsewhere: Record<string, object> = {},
): void {
  if (typeof input !== 'object' || input === null) return;
  for (const [key, value] of Object.entries(input)) {
    if (key in schema || value === undefined) continue;
    throw new NsqValidationError(
      `${owner}: unknown option ${key}${hintFor(key, owner, schema, elsewhere)}`,
    );
  }
}

/** A near name of the owner's own, else the other component that has one; '' when none. */
function hintFor(
  key: string,
  owner: string,
  schema: object,
  elsewhere: Record<string, object>,
): string {
  const near = closest(key, Object.keys(schema));
  if (near) return `; did you mean ${near}?`;
  for (const [name, other] of Object.entries(elsewhere)) {
    const there = closest(key, Object.keys(other));
    if (there) return `; ${there} is an option of ${name}, not of ${owner}`;
  }
  return '';
}

/** Checks every option the schema knows and fills in defaults; other keys are ignored here. */
export function resolveOptions<O extends object>(
  owner: string,
  schema: OptionsSchema<O>,
  input: Partial<O> | undefined,
): Resolved<O> {
  const out: Record<string, unknown> = {};
  const given = (input ?? {}) as Record<string, unknown>;
  for (const [name, spec] of Object.entries(schema) as [string, OptionSpec<unknown>][]) {
    const value = given[name];
    if (value === undefined) {
      out[name] = spec.default;
    } else if (spec.assert) {
      spec.assert(owner, name, value);
      out[name] = value;
    } else if (!spec.check(value)) {
      throw invalidOption(owner, name, spec.expected, value, spec.secret);
    } else {
      out[name] = value;
    }
  }
  return out as Resolved<O>;
}

// Checks shared by the schemas. Numbers that become timers are capped below 2^31 ms, past which
// Node fires a timer at once.
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const isInt =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (v: unknown): boolean =>
    Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
/** A duration in ms that becomes a timer: at least `min`, below 2^31. */
export const isMs = (min: number) => isInt(min, MAX_TIMER_MS);
export const msExpected = (min: number) => `an integer ${min}..${MAX_TIMER_MS} (ms)`;
export const isBoolean = (v: unknown): boolean => typeof v === 'boolean';
export const isFunction = (v: unknown): boolean => typeof v === 'function';
/** An object with a method of that name (a serializer, a deserializer). */
export const hasMethod =
  (name: string) =>
  (v: unknown): boolean =>
    typeof v === 'object' && v !== null && isFunction((v as Record<string, unknown>)[name]);
export const isNonEmptyString = (v: unknown): boolean => typeof v === 'string' && v.length > 0;

/** A spec in one line: `spec(default, check, expected, doc)`. */
export function spec<T>(
  defaultValue: T | undefined,
  check: (value: unknown) => boolean,
  expected: string,
  doc: string,
  extra: Pick<OptionSpec<T>, 'defaultText' | 'secret' | 'assert'> = {},
): OptionSpec<T> {
  return { default: defaultValue, check, expected, doc, ...extra };
}

/** How the README shows an option's default. */
export function defaultText(s: OptionSpec<unknown>): string {
  if (s.defaultText !== undefined) return s.defaultText;
  const v = s.default;
  if (v === undefined) return 'none';
  if (typeof v === 'number') return v.toLocaleString('en-US').replace(/,/g, ' ');
  if (typeof v === 'string') return `\`${v}\``;
  return String(v);
}

/** The known name nearest to `name` (case-insensitive edit distance <= 3), if any. */
function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const k of known) {
    const d = distance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}
