import type { EventEmitter } from 'node:events';
import type { LoggerService } from '@nestjs/common';
import type { Consumer } from '../consumer/consumer.js';
import { describe, loggedByNest } from './describe-error.js';
import { NsqDecodeError } from './payload.js';

/**
 * What ServerNsq says about a pattern's consumer besides its connection state: log lines at the
 * levels the README gives, and the events forwarded through server.on().
 */
export function reportConsumer(
  consumer: Consumer,
  pattern: string,
  logger: LoggerService,
  events: EventEmitter,
): void {
  consumer.on('warning', (error) => {
    logger.warn(`${pattern}: ${error.message}`);
    events.emit('error', error);
  });
  // One line per failure: Nest's exception filter has logged an unknown error with its stack.
  consumer.on('failed', (message, error) => {
    if (error instanceof NsqDecodeError) {
      logger.warn(
        `Message ${message.id} of ${pattern} could not be decoded, so no handler ran: ${error.message}`,
      );
    } else if (!loggedByNest(error)) {
      logger.warn(
        `Handler for ${pattern} failed on message ${message.id} (attempt ${message.attempts}): ${describe(error)}`,
      );
    }
    events.emit('failed', message, pattern, error);
  });
  consumer.on('gaveUp', (message, reason) => events.emit('gaveUp', message, pattern, reason));
  consumer.on('backoff', (change) => {
    logger.debug?.(`${pattern}: backoff ${change.mode}, level ${change.level}`);
    events.emit('backoff', change, pattern);
  });
  consumer.on('discovered', (address) => {
    logger.log(`${pattern}: nsqlookupd lists nsqd ${address}, connecting`);
    events.emit('discovered', address, pattern);
  });
}
