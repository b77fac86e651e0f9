import { defineFunction, NonRetryableError, RetryableError, Type } from '../runtime/sdk/index.js';

const Line = Type.Object({ sku: Type.String(), quantity: Type.Integer() });

/** What the inventory service answers on success; checked as `reservation` in the output. */
const Reservation = Type.Object({ reservation_id: Type.String({ minLength: 1 }), expires_at: Type.String() });

/**
 * Example: reserves the order's items at an inventory service over HTTP, then
 * passes the order on with the service's reply added as `reservation` (a step's
 * input is the previous step's output, so the next step, e.g. compute-price,
 * still gets the order).
 *
 * ```json
 * { "name": "reserve", "type": "reserve-stock",
 *   "config": { "url": "https://inventory.example.com/orders/{{ input.order_id }}/reservation" } }
 * ```
 * Sends `POST <config.url>` with `{"order_id", "items": [{"sku", "quantity"}]}` and an
 * `Idempotency-Key: <run id>/<step name>` header, the same on every attempt, so that the
 * service can answer a retried request without reserving twice. Expects
 * `2xx {"reservation_id", "expires_at"}`.
 *
 * Errors: 409 → `E_OUT_OF_STOCK`, any other 4xx (but 408 and 429) → `E_RESERVATION_REJECTED`;
 * both fail the step at once. 5xx, 408, 429 (`E_INVENTORY_UNAVAILABLE`), network errors and
 * timeouts are retried: 3 attempts, 100 ms then 200 ms apart. A reply of another shape
 * fails with `E_OUTPUT_INVALID`.
 */
export default defineFunction({
  name: 'reserve-stock',
  description: 'Reserves the order items at the inventory service at config.url (POST, JSON); adds the reply as `reservation`.',
  input: Type.Object({ order_id: Type.String({ minLength: 1 }), items: Type.Array(Line, { minItems: 1 }) }),
  output: Type.Object({ order_id: Type.String(), items: Type.Array(Line), reservation: Reservation }),
  timeoutMs: 5_000,
  retry: { maxRetries: 2, initialDelayMs: 100 },
  handler: async (order, ctx) => {
    const url = httpUrl(ctx.config.url);
    ctx.log.info('reserving stock', { items: order.items.length, attempt: ctx.attempt });
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'idempotency-key': `${ctx.runId}/${ctx.stepName}` },
      body: JSON.stringify({ order_id: order.order_id, items: order.items.map(({ sku, quantity }) => ({ sku, quantity })) }),
      signal: ctx.signal, // the step's timeout aborts the request
    });
    const text = await res.text();
    if (res.status === 409) throw new NonRetryableError('E_OUT_OF_STOCK', `inventory answered 409: ${text.slice(0, 200)}`);
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
      throw new NonRetryableError('E_RESERVATION_REJECTED', `inventory answered ${res.status}: ${text.slice(0, 200)}`);
    }
    if (!res.ok) {
      ctx.log.warn('inventory unavailable', { status: res.status, attempt: ctx.attempt });
      throw new RetryableError('E_INVENTORY_UNAVAILABLE', `inventory answered ${res.status}: ${text.slice(0, 200)}`);
    }
    const reservation = parseJson(text); // its shape is checked against the output schema
    ctx.log.info('stock reserved', { reservation_id: (reservation as { reservation_id?: unknown })?.reservation_id ?? null });
    // the whole input goes on (currency, ...), not only the fields this function reads
    return { ...order, reservation: reservation as { reservation_id: string; expires_at: string } };
  },
});

function httpUrl(value: unknown): string {
  let url: URL | null = null;
  try {
    url = typeof value === 'string' ? new URL(value) : null;
  } catch {
    /* not a URL */
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new NonRetryableError(
      'E_STEP_CONFIG',
      `reserve-stock needs config.url, an http:// or https:// URL (got ${JSON.stringify(value)})`,
    );
  }
  return url.href;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
