import { defineFunction, NonRetryableError, Type } from '../runtime/sdk/index.js';
import { PricedOrder } from './compute-price.js';

/**
 * Example: renders the order-confirmation e-mail for a priced order (the output
 * of compute-price): recipient, subject, a plain-text body and an HTML body.
 * Pure: the same input and config always give the same output, so a retried or
 * resumed step renders the same message.
 *
 * The customer comes from the step's config, which the workflow fills from the
 * run's data, so the function does not depend on the names of other steps or on
 * the shape of the run input:
 *
 * ```json
 * { "name": "notify", "type": "render-notification", "config": {
 *     "to": "{{ run.input.customer.email }}", "customer_name": "{{ run.input.customer.name }}" } }
 * ```
 * config: `to` (required, one e-mail address, else `E_RECIPIENT_INVALID`), `customer_name`
 * (optional; "Hello," without it), `locale` (default `en-US`) for the money format:
 * `Intl.NumberFormat` with the order's currency, amounts in cents. Every value put into
 * the HTML is escaped; line breaks are removed from the subject.
 */
export default defineFunction({
  name: 'render-notification',
  description: 'Renders an order-confirmation e-mail (to, subject, text, html) for a priced order; customer from config.',
  input: PricedOrder, // the output schema of compute-price, shared by importing it
  output: Type.Object({ to: Type.String(), subject: Type.String(), text: Type.String(), html: Type.String() }),
  timeoutMs: 2_000,
  handler: (order, ctx) => {
    const to = recipient(ctx.config.to);
    const name = typeof ctx.config.customer_name === 'string' ? ctx.config.customer_name.trim() : '';
    const money = moneyFormat(ctx.config.locale ?? 'en-US', order.currency);
    const rows: [string, number][] = [['Subtotal', order.subtotal_cents]];
    if (order.discount_cents) rows.push(['Discount', -order.discount_cents]);
    rows.push(['VAT', order.vat_cents]);
    const total = money(order.total_cents);
    const greeting = name ? `Hello ${name},` : 'Hello,';
    const thanks = `Thank you for your order ${order.order_id}.`;

    const text =
      [greeting, '', thanks, '', ...rows.map(([label, cents]) => `${label}: ${money(cents)}`), `Total: ${total}`].join('\n') + '\n';
    const html =
      [
        `<p>${escapeHtml(greeting)}</p>`,
        `<p>${escapeHtml(thanks)}</p>`,
        '<table>',
        ...rows.map(([label, cents]) => `<tr><td>${label}</td><td>${escapeHtml(money(cents))}</td></tr>`),
        `<tr><th>Total</th><th>${escapeHtml(total)}</th></tr>`,
        '</table>',
      ].join('\n') + '\n';
    ctx.log.info('notification rendered', { order_id: order.order_id });
    return { to, subject: oneLine(`Order ${order.order_id} confirmed: ${total}`), text, html };
  },
});

function recipient(value: unknown): string {
  // one address, nothing that could add another recipient or a header (control characters on purpose)
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || !/^[^\s@<>,;"\u0000-\u001f]+@[^\s@<>,;"\u0000-\u001f]+$/.test(value)) {
    throw new NonRetryableError('E_RECIPIENT_INVALID', `config.to must be one e-mail address (got ${JSON.stringify(value)})`);
  }
  return value;
}

function moneyFormat(locale: unknown, currency: string): (cents: number) => string {
  let f: Intl.NumberFormat;
  try {
    f = new Intl.NumberFormat(String(locale), { style: 'currency', currency });
  } catch (err) {
    throw new NonRetryableError(
      'E_STEP_CONFIG',
      `cannot format ${currency} for locale ${JSON.stringify(locale)}: ${(err as Error).message}`,
    );
  }
  return (cents) => f.format(cents / 100); // compute-price works in hundredths of the currency
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it removes
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ');
}
