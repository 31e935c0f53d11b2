// The wire layer: `nestjs-nsq/protocol`. Encoders, the frame decoder and name rules; no I/O.
export * as commands from './commands.js';
export { MAGIC_V2, type IdentifyBody } from './commands.js';
export { FrameDecoder, FrameType, type Frame, type FrameHandler } from './frames.js';
export { DecodedMessage, MESSAGE_ID_LENGTH } from './message-frame.js';
export { assertChannelName, assertTopicName, isValidName } from './names.js';
export { SnappyFrameDecoder, SnappyFrameEncoder, type SnappyBlockCodec } from './snappy-framing.js';
export { isFatalError, parseErrorFrame } from './error-frame.js';
