import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { NSQ_TRANSPORT, NsqContext } from 'nestjs-nsq';
import { CATALOGUE, FREE_SHIPPING_FROM_CENTS, SHIPPING_CENTS, type OrderLine } from './orders.js';
import { StatsService } from './stats.service.js';

export interface Quote {
  lines: { sku: string; qty: number; unitCents: number; cents: number }[];
  subtotalCents: number;
  shippingCents: number;
  totalCents: number;
  currency: 'EUR';
  /** The channel that answered, to show where the answer came from. */
  quotedBy: string;
}

/**
 * Request/response over NSQ: ClientNsq.send('quotes', ...) publishes a request envelope to the
 * 'quotes' topic; this handler consumes channel 'pricing' and its return value travels back on
 * the client's own ephemeral reply topic.
 */
@Controller()
export class PricingController {
  constructor(private readonly stats: StatsService) {}

  // A request is worth answering only while its caller waits: no retries (an answer that
  // cannot be published is logged and dropped).
  @MessagePattern<string>('quotes/pricing', NSQ_TRANSPORT, { maxAttempts: 1 })
  quote(@Payload() request: { items: OrderLine[] }, @Ctx() ctx: NsqContext): Quote {
    const items = Array.isArray(request?.items) ? request.items : [];
    if (items.length === 0) throw new RpcException('a quote needs at least one item');
    const lines = items.map(({ sku, qty }) => {
      const unitCents = CATALOGUE[sku];
      if (unitCents === undefined) {
        throw new RpcException(
          `unknown item ${JSON.stringify(sku)}; we sell ${Object.keys(CATALOGUE).join(', ')}`,
        );
      }
      if (!Number.isInteger(qty) || qty < 1 || qty > 1000) {
        throw new RpcException(`quantity of ${sku} must be an integer 1..1000`);
      }
      return { sku, qty, unitCents, cents: unitCents * qty };
    });
    const subtotalCents = lines.reduce((sum, l) => sum + l.cents, 0);
    const shippingCents = subtotalCents >= FREE_SHIPPING_FROM_CENTS ? 0 : SHIPPING_CENTS;
    this.stats.quoted();
    return {
      lines,
      subtotalCents,
      shippingCents,
      totalCents: subtotalCents + shippingCents,
      currency: 'EUR',
      quotedBy: `${ctx.getTopic()}/${ctx.getChannel()}`,
    };
  }
}
