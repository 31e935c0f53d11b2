import { Controller, Inject, Logger } from '@nestjs/common';
import { Ctx, EventPattern, Payload, RpcException } from '@nestjs/microservices';
import { NSQ_TRANSPORT, NsqContext, parseDeadLetter, type NsqHandlerOptions } from 'nestjs-nsq';
import { SAMPLE_CONFIG, type SampleConfig } from './config.js';
import { DEAD_LETTER_TOPIC, isFlaky, type Order } from './orders.js';
import { StatsService } from './stats.service.js';

/**
 * Retry policy of both order channels: 5 attempts, a short growing delay between them, and a
 * short backoff (intake pauses after a failure); given up orders go to 'orders.dead'.
 * The defaults (90 s per attempt, 1 s backoff) suit production; these suit a demo.
 */
const MAX_ATTEMPTS = 5;
const RETRY: NsqHandlerOptions = {
  maxAttempts: MAX_ATTEMPTS,
  requeueDelay: (attempts: number) => Math.min(attempts * 100, 1_000),
  backoff: { multiplier: 20, maxDelay: 1_000 },
  deadLetterTopic: DEAD_LETTER_TOPIC,
};

/**
 * The consumers: NSQ gives every channel of a topic its own copy of each message, so billing and
 * shipping both see every order. A handler that returns FINs the message; one that throws REQs it.
 */
@Controller()
export class FulfilmentController {
  private readonly logger = new Logger(FulfilmentController.name);

  constructor(
    private readonly stats: StatsService,
    @Inject(SAMPLE_CONFIG) private readonly config: SampleConfig,
  ) {}

  @EventPattern<string>('orders/billing', NSQ_TRANSPORT, RETRY)
  async bill(@Payload() order: Order, @Ctx() ctx: NsqContext): Promise<void> {
    const { attempts } = ctx.getMessage();
    this.check(order, ctx, 'the card processor declines it');
    if (attempts === 1 && isFlaky(order.id, this.config.flakyPercent)) {
      this.fail(ctx, `payment gateway timed out for order ${order.id} (simulated)`);
    }
    await charge(order, this.config.chargeDelayMs);
    this.stats.handled(
      ctx.getTopic() + '/' + ctx.getChannel(),
      order.id,
      attempts,
      order.createdAt,
    );
  }

  @EventPattern<string>('orders/shipping', NSQ_TRANSPORT, RETRY)
  ship(@Payload() order: Order, @Ctx() ctx: NsqContext): void {
    this.check(order, ctx, 'no parcel service takes it');
    const { attempts } = ctx.getMessage();
    this.stats.handled(
      ctx.getTopic() + '/' + ctx.getChannel(),
      order.id,
      attempts,
      order.createdAt,
    );
  }

  /**
   * Given up orders: the dead letter holds where and why, and the original body byte for byte.
   * `raw: true` hands over the Buffer as it came.
   */
  @EventPattern<string>('orders.dead/inspect', NSQ_TRANSPORT, { raw: true })
  inspect(@Payload() message: Buffer): void {
    const letter = parseDeadLetter(message);
    if (letter) {
      this.logger.warn(
        `Dead letter from ${letter.topic}/${letter.channel} after ${letter.attempts} attempts ` +
          `(${letter.reason}: ${letter.error}): ${(letter.payload ?? letter.body).toString().slice(0, 200)}`,
      );
    } else {
      this.logger.warn(`Not a dead letter on orders.dead: ${message.toString().slice(0, 200)}`);
    }
    this.stats.deadLettered(letter);
  }

  private check(order: Order, ctx: NsqContext, why: string): void {
    if (order.poison) this.fail(ctx, `poison order ${order.id}: ${why}`);
  }

  /**
   * Throws, so the message is requeued (or dead-lettered on its last attempt). An RpcException
   * keeps its message in the dead letter; Nest's exception filter turns other errors into
   * 'Internal server error' (after logging them with their stack).
   */
  private fail(ctx: NsqContext, message: string): never {
    const { attempts } = ctx.getMessage();
    this.stats.failed(ctx.getTopic() + '/' + ctx.getChannel(), attempts >= MAX_ATTEMPTS);
    throw new RpcException(message);
  }
}

/** Stands in for a call to a payment provider (CHARGE_DELAY_MS long; a slow one shows the drain). */
function charge(_order: Order, delayMs: number): Promise<void> {
  return delayMs > 0 ? new Promise((resolve) => setTimeout(resolve, delayMs)) : Promise.resolve();
}
