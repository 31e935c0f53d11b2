import { NsqValidationError } from '../errors.js';

const NAME = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/;
const MAX_NAME_LENGTH = 64;

function nameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return `must be a string, got ${typeof name}`;
  if (name.length < 1 || name.length > MAX_NAME_LENGTH) {
    return `must be 1 to ${MAX_NAME_LENGTH} characters long (including #ephemeral), got ${name.length}`;
  }
  if (!NAME.test(name)) {
    return 'may contain only letters, digits, ".", "_" and "-", optionally ending in "#ephemeral"';
  }
  return undefined;
}

export function isValidName(name: unknown): name is string {
  return nameProblem(name) === undefined;
}

/** Throws an NsqValidationError naming the problem if `name` is not a valid topic name. */
export function assertTopicName(name: unknown): asserts name is string {
  const problem = nameProblem(name);
  if (problem)
    throw new NsqValidationError(`Invalid NSQ topic name ${JSON.stringify(name)}: ${problem}`);
}

/** Throws an NsqValidationError naming the problem if `name` is not a valid channel name. */
export function assertChannelName(name: unknown): asserts name is string {
  const problem = nameProblem(name);
  if (problem) {
    throw new NsqValidationError(`Invalid NSQ channel name ${JSON.stringify(name)}: ${problem}`);
  }
}
