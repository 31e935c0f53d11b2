// The sample's domain: orders, a small price list and the rule that makes billing flaky.

export interface OrderLine {
  sku: string;
  qty: number;
}

export interface Order {
  id: string;
  /** ms since the epoch when the HTTP request accepted it: the start of emit->handled latency. */
  createdAt: number;
  customer: string;
  items: OrderLine[];
  /** A poison order fails in every handler, every time, and ends in the dead-letter topic. */
  poison?: true;
}

/** Topic and channels of the order flow. */
export const ORDERS_TOPIC = 'orders';
export const DEAD_LETTER_TOPIC = 'orders.dead';
export const QUOTES_TOPIC = 'quotes';

/** Prices in cents. */
export const CATALOGUE: Readonly<Record<string, number>> = {
  tea: 450,
  coffee: 600,
  mug: 990,
  teapot: 2490,
  kettle: 3900,
};

export const SHIPPING_CENTS = 495;
export const FREE_SHIPPING_FROM_CENTS = 5000;

/** 32-bit FNV-1a: a stable hash, so whether an order is flaky does not depend on luck. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Billing fails the first attempt of about `percent` % of orders (chosen by id). */
export function isFlaky(orderId: string, percent: number): boolean {
  return fnv1a(orderId) % 100 < percent;
}

/** 'tea:2,mug' -> [{ sku: 'tea', qty: 2 }, { sku: 'mug', qty: 1 }] */
export function parseItems(text: string): OrderLine[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const [sku, qty = '1'] = part.split(':');
      return { sku: sku.trim(), qty: Number(qty) };
    });
}
