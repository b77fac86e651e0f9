import { defineFunction, NonRetryableError, Type } from '../runtime/sdk/index.js';

/**
 * Example: checks an order and normalises it. A bad order fails the step at
 * once (NonRetryableError): retrying cannot fix the data.
 *
 * ```json
 * { "name": "validate", "type": "validate-order" }
 * ```
 */
export default defineFunction({
  name: 'validate-order',
  description: 'Checks that an order has items with positive quantities and a known currency.',
  input: Type.Object({
    order_id: Type.String({ minLength: 1 }),
    currency: Type.String({ minLength: 3, maxLength: 3 }),
    items: Type.Array(Type.Object({ sku: Type.String(), quantity: Type.Integer(), unit_price: Type.Number() }), { minItems: 1 }),
  }),
  output: Type.Object({
    order_id: Type.String(),
    currency: Type.String(),
    items: Type.Array(Type.Object({ sku: Type.String(), quantity: Type.Integer(), unit_price: Type.Number() })),
  }),
  timeoutMs: 2_000,
  handler: (order, ctx) => {
    const currency = order.currency.toUpperCase();
    if (!['EUR', 'USD', 'GBP'].includes(currency)) throw new NonRetryableError('E_CURRENCY', `unsupported currency ${order.currency}`);
    const bad = order.items.find((i) => i.quantity <= 0 || i.unit_price < 0);
    if (bad) throw new NonRetryableError('E_BAD_ITEM', `item ${bad.sku} has quantity ${bad.quantity} and price ${bad.unit_price}`);
    ctx.log.info('order valid', { items: order.items.length });
    return { order_id: order.order_id, currency, items: order.items };
  },
});
