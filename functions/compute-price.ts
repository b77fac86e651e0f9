import { defineFunction, Type } from '../runtime/sdk/index.js';

/** What this function returns; other functions import it to take a priced order as input (see render-notification.ts). */
export const PricedOrder = Type.Object({
  order_id: Type.String(),
  currency: Type.String(),
  subtotal_cents: Type.Integer(),
  discount_cents: Type.Integer(),
  vat_cents: Type.Integer(),
  total_cents: Type.Integer(),
});

const Item = Type.Object({ sku: Type.String(), quantity: Type.Integer(), unit_price: Type.Number() });

/**
 * Example: prices a validated order (the previous step's output): subtotal,
 * a discount from the step's config, VAT, total, in integer cents.
 *
 * ```json
 * { "name": "price", "type": "compute-price", "config": { "discount_pct": 10, "vat_pct": 20 } }
 * ```
 */
export default defineFunction({
  name: 'compute-price',
  description: 'Subtotal, discount (config.discount_pct), VAT (config.vat_pct) and total in cents.',
  input: Type.Object({ order_id: Type.String(), currency: Type.String(), items: Type.Array(Item) }),
  // checked when a workflow is registered and before each attempt; types ctx.config
  config: Type.Object({
    discount_pct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    vat_pct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
  }),
  output: PricedOrder,
  handler: (order, ctx) => {
    const discountPct = ctx.config.discount_pct ?? 0;
    const vatPct = ctx.config.vat_pct ?? 0;
    const subtotal = order.items.reduce((sum, i) => sum + Math.round(i.unit_price * 100) * i.quantity, 0);
    const discount = Math.round((subtotal * discountPct) / 100);
    const vat = Math.round(((subtotal - discount) * vatPct) / 100);
    return {
      order_id: order.order_id,
      currency: order.currency,
      subtotal_cents: subtotal,
      discount_cents: discount,
      vat_cents: vat,
      total_cents: subtotal - discount + vat,
    };
  },
});
