export * as commands from './commands.js';
export { MAGIC_V2, type IdentifyBody } from './commands.js';
export { FrameDecoder, FrameType, type FrameHandler } from './frames.js';
export { decodeMessage, DecodedMessage, MESSAGE_ID_LENGTH } from './message.js';
export { assertChannelName, assertTopicName, isValidName } from './names.js';
export { NsqConnectionError, NsqError, NsqResponseError, NsqValidationError } from './errors.js';
