import {
  BadRequestException,
  Body,
  Controller,
  GatewayTimeoutException,
  Get,
  HttpCode,
  Post,
  Query,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { ClientNsq } from 'nestjs-nsq';
import { lastValueFrom, TimeoutError, timeout } from 'rxjs';
import type { Quote } from './pricing.controller.js';
import { ORDERS_TOPIC, QUOTES_TOPIC, parseItems, type Order, type OrderLine } from './orders.js';
import { StatsService } from './stats.service.js';

interface NewOrder {
  customer?: unknown;
  items?: unknown;
  poison?: unknown;
}

/** The HTTP side: takes orders and quote requests, hands them to NSQ. */
@Controller()
export class OrdersController {
  constructor(
    private readonly nsq: ClientNsq,
    private readonly stats: StatsService,
  ) {}

  /**
   * Publishes the order to the 'orders' topic and answers 202 once nsqd has it: from there NSQ
   * delivers it to every channel (billing, shipping), retrying until each handled it.
   */
  @Post('orders')
  @HttpCode(202)
  async create(@Body() body: NewOrder = {}): Promise<Order> {
    const order: Order = {
      id: randomUUID(),
      createdAt: Date.now(),
      customer: typeof body.customer === 'string' ? body.customer : 'guest',
      items: validItems(body.items),
      ...(body.poison === true ? { poison: true as const } : {}),
    };
    // emit() is hot; awaiting it waits for nsqd's OK (emits of the same tick share one MPUB).
    await lastValueFrom(this.nsq.emit(ORDERS_TOPIC, order));
    this.stats.orderAccepted(order.poison === true);
    return order;
  }

  /** GET /quote?items=tea:2,mug asks the pricing service over NSQ and waits for its answer. */
  @Get('quote')
  async quote(@Query('items') items = ''): Promise<Quote> {
    const lines = parseItems(items);
    if (lines.length === 0) throw new BadRequestException('give items, e.g. ?items=tea:2,mug');
    try {
      return await lastValueFrom(
        this.nsq.send<Quote>(QUOTES_TOPIC, { items: lines }).pipe(timeout(5_000)),
      );
    } catch (err) {
      if (err instanceof TimeoutError)
        throw new GatewayTimeoutException('no answer from pricing within 5 s');
      const message = (err as { message?: unknown })?.message;
      throw new BadRequestException(typeof message === 'string' ? message : String(err));
    }
  }
}

function validItems(items: unknown): OrderLine[] {
  if (items === undefined) return [{ sku: 'tea', qty: 1 }];
  if (
    !Array.isArray(items) ||
    !items.every(
      (i: Partial<OrderLine>) =>
        typeof i?.sku === 'string' && Number.isInteger(i.qty) && (i.qty as number) > 0,
    )
  ) {
    throw new BadRequestException('items must be an array of { sku: string, qty: integer > 0 }');
  }
  return items as OrderLine[];
}
