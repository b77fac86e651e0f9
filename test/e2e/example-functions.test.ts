import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/env.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

// The examples in functions/ run as a workflow, through worker threads, with their schemas checked.
describe('example functions', () => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem();
    const r = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'checkout',
      definition: {
        steps: [
          { name: 'validate', type: 'validate-order' },
          { name: 'price', type: 'compute-price', config: { discount_pct: 10, vat_pct: 20 } },
          { name: 'done', type: 'echo', config: { message: 'priced' } },
        ],
      },
    });
    expect(r.status).toBe(201);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('validates and prices an order', async () => {
    const order = {
      order_id: 'o-1',
      currency: 'eur',
      items: [
        { sku: 'a', quantity: 2, unit_price: 9.99 },
        { sku: 'b', quantity: 1, unit_price: 5 },
      ],
    };
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'checkout', input_data: order, wait: true });
    expect(r.body.status).toBe('completed');
    expect(r.body.output.input).toEqual({
      order_id: 'o-1',
      currency: 'EUR',
      subtotal_cents: 2498,
      discount_cents: 250,
      vat_cents: 450,
      total_cents: 2698,
    });
    const run = await api(t.url, 'GET', `/api/v1/executions/${r.body.run_id}`);
    expect(run.body.steps[0].logs[0]).toMatchObject({ level: 'info', msg: 'order valid', data: { items: 2 } });
  });

  it('fails at once, without retries, on a bad order', async () => {
    const order = { order_id: 'o-2', currency: 'XYZ', items: [{ sku: 'a', quantity: 1, unit_price: 1 }] };
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'checkout', input_data: order, wait: true });
    expect(r.body.status).toBe('failed');
    expect(r.body.error.code).toBe('E_CURRENCY');
    const run = await api(t.url, 'GET', `/api/v1/executions/${r.body.run_id}`);
    expect(run.body.steps[0]).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it('rejects input that does not match the schema with E_INPUT_INVALID and the path', async () => {
    const r = await api(t.url, 'POST', '/api/v1/execute', {
      workflow_id: 'checkout',
      input_data: { order_id: 'o-3', currency: 'EUR', items: [] },
      wait: true,
    });
    expect(r.body.status).toBe('failed');
    expect(r.body.error.code).toBe('E_INPUT_INVALID');
    expect(r.body.error.message).toContain('/items');
  });

  it("checks compute-price's config: at registration when it is literal, before the attempt when it is a template", async () => {
    const bad = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'bad-vat',
      definition: {
        steps: [
          { name: 'validate', type: 'validate-order' },
          { name: 'price', type: 'compute-price', config: { vat_pct: 150 } },
        ],
      },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.problems[0].path).toBe('/definition/steps/1/config/vat_pct');

    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'vat-from-input',
      definition: {
        steps: [
          { name: 'validate', type: 'validate-order' },
          { name: 'price', type: 'compute-price', config: { vat_pct: '{{ run.input.vat }}' } },
        ],
      },
    });
    expect(wf.status).toBe(201);
    const order = { order_id: 'o-9', currency: 'EUR', items: [{ sku: 'a', quantity: 1, unit_price: 10 }] };
    const ok = await api(t.url, 'POST', '/api/v1/execute', {
      workflow_id: 'vat-from-input',
      input_data: { ...order, vat: 10 },
      wait: true,
    });
    expect(ok.body.status).toBe('completed');
    expect(ok.body.output.total_cents).toBe(1100);
    const r = await api(t.url, 'POST', '/api/v1/execute', {
      workflow_id: 'vat-from-input',
      input_data: { ...order, vat: 'ten' },
      wait: true,
    });
    expect(r.body.status).toBe('failed');
    expect(r.body.error.code).toBe('E_STEP_CONFIG');
    expect(r.body.error.message).toContain('/vat_pct');
    const run = await api(t.url, 'GET', `/api/v1/executions/${r.body.run_id}`);
    expect(run.body.steps[1]).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it('refuses to register a workflow naming a function no executor has', async () => {
    const r = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'typo',
      definition: { steps: [{ name: 'x', type: 'validate-ordr' }] },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('E_WORKFLOW_INVALID');
    expect(r.body.error.details.problems[0].path).toBe('/definition/steps/0/type');
  });

  it('lists what executors can run, with schemas, at GET /api/v1/functions', async () => {
    const r = await api(t.url, 'GET', '/api/v1/functions');
    expect(r.status).toBe(200);
    const byName = Object.fromEntries(r.body.functions.map((f: { name: string }) => [f.name, f]));
    expect(Object.keys(byName)).toEqual(expect.arrayContaining(['echo', 'delay', 'fail', 'validate-order', 'compute-price']));
    expect(byName.echo.kind).toBe('builtin');
    expect(byName['validate-order']).toMatchObject({ kind: 'function', timeout_ms: 2000 });
    expect(byName['validate-order'].input_schema.required).toEqual(['order_id', 'currency', 'items']);
    expect(byName['compute-price'].output_schema.properties.total_cents.type).toBe('integer');
  });

  it('builds an object from earlier outputs and the run input with transform', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'checkout-summary',
      definition: {
        steps: [
          { name: 'validate', type: 'validate-order' },
          { name: 'price', type: 'compute-price', config: { vat_pct: 20 } },
          {
            name: 'summary',
            type: 'transform',
            config: {
              template: {
                order: '{{ run.input.order_id }}',
                total: '{{ steps.price.total_cents }}',
                first_sku: '{{ steps.validate.items[0].sku }}',
                label: 'Order {{ run.input.order_id }} in {{ input.currency }}',
              },
            },
          },
        ],
      },
    });
    expect(wf.status).toBe(201);
    const order = { order_id: 'o-9', currency: 'usd', items: [{ sku: 'z', quantity: 3, unit_price: 1.5 }] };
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'checkout-summary', input_data: order, wait: true });
    expect(r.body.status).toBe('completed');
    expect(r.body.output).toEqual({ order: 'o-9', total: 540, first_sku: 'z', label: 'Order o-9 in USD' });
  });

  it('refuses a template that is not a path at registration, naming the step config', async () => {
    const r = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'bad-template',
      definition: { steps: [{ name: 't', type: 'transform', config: { template: '{{ input.a * 2 }}' } }] },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('E_WORKFLOW_INVALID');
    expect(r.body.error.details.problems[0]).toMatchObject({ path: '/definition/steps/0/config' });
    expect(r.body.error.details.problems[0].message).toContain('is not a path');
  });

  it('lets any step config read the run input and earlier outputs by name', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'references',
      definition: {
        steps: [
          { name: 'a', type: 'echo', config: { message: 'first' } },
          { name: 'b', type: 'echo', config: { message: '{{ steps.a.message }} then {{ run.input.who }}', whole: '{{ steps.a }}' } },
        ],
      },
    });
    expect(wf.status).toBe(201);
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'references', input_data: { who: 'me' }, wait: true });
    expect(r.body.status).toBe('completed');
    expect(r.body.output.message).toBe('first then me');
  });

  it('refuses references to steps that do not exist or come later, with the offending path', async () => {
    const r = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'bad-references',
      definition: {
        steps: [
          { name: 'a', type: 'echo', config: { message: '{{ steps.b.message }}' } },
          { name: 'b', type: 'echo', config: { message: '{{ steps.nope.x }}' } },
          { name: 'c', type: 'echo', config: { message: '{{ steps.c.x }}' } },
        ],
      },
    });
    expect(r.status).toBe(400);
    const problems = r.body.error.details.problems as { path: string; message: string }[];
    expect(problems.map((p) => p.path)).toEqual(['/definition/steps/0/config', '/definition/steps/1/config', '/definition/steps/2/config']);
    expect(problems[0].message).toContain('comes later');
    expect(problems[1].message).toContain('does not exist');
    expect(problems[2].message).toContain('comes later');
  });
});

// validate → reserve (HTTP, against a local inventory service) → price → notify, with data passed by templates.
describe('checkout with a stock reservation and a notification', () => {
  let t: TestSystem;
  let server: Server;
  let base = '';
  /** what the inventory service received, and which requests were dropped by the client before an answer */
  let requests: { method?: string; url?: string; headers: IncomingHttpHeaders; body: any }[] = [];
  let dropped: string[] = [];
  let flaky = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        const body = JSON.parse(text);
        requests.push({ method: req.method, url: req.url, headers: req.headers, body });
        const reply = (status: number, json: unknown) =>
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
        switch (body.order_id) {
          case 'o-oos':
            return reply(409, { error: 'sku a: 1 left' });
          case 'o-bad':
            return reply(422, { error: 'unknown sku zz' });
          case 'o-flaky':
            if (flaky++ === 0) return reply(503, { error: 'busy' });
            break;
          case 'o-garbled':
            return reply(200, { ok: true });
          case 'o-slow':
            res.on('close', () => dropped.push(body.order_id));
            return; // never answers
        }
        reply(201, { reservation_id: `r-${body.order_id}`, expires_at: '2030-01-01T00:00:00.000Z' });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await startTestSystem();
    const r = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'checkout-reserve',
      definition: {
        steps: [
          { name: 'validate', type: 'validate-order' },
          { name: 'reserve', type: 'reserve-stock', config: { url: `${base}/orders/{{ steps.validate.order_id }}/reservation` } },
          { name: 'price', type: 'compute-price', config: { discount_pct: 10, vat_pct: 20 } },
          {
            name: 'notify',
            type: 'render-notification',
            config: { to: '{{ run.input.customer.email }}', customer_name: '{{ run.input.customer.name }}' },
          },
        ],
      },
    });
    expect(r.status).toBe(201);
  });
  beforeEach(() => {
    requests = [];
    dropped = [];
  });
  afterAll(async () => {
    await t?.stop();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  const items = [
    { sku: 'a', quantity: 2, unit_price: 9.99 },
    { sku: 'b', quantity: 1, unit_price: 5 },
  ];
  async function checkout(
    orderId: string,
    customer: unknown = { name: 'Ada Lovelace', email: 'ada@example.com' },
    workflow = 'checkout-reserve',
  ) {
    const r = await api(t.url, 'POST', '/api/v1/execute', {
      workflow_id: workflow,
      input_data: { order_id: orderId, currency: 'eur', items, customer },
      wait: true,
      wait_timeout: '20s',
    });
    const run = await api(t.url, 'GET', `/api/v1/executions/${r.body.run_id}`);
    const steps = Object.fromEntries(run.body.steps.map((s: { name: string }) => [s.name, s]));
    return { result: r.body, steps };
  }

  it('reserves the items, prices the order and renders the e-mail', async () => {
    const { result, steps } = await checkout('o-1');
    expect(result.status).toBe('completed');
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      method: 'POST',
      url: '/orders/o-1/reservation',
      body: {
        order_id: 'o-1',
        items: [
          { sku: 'a', quantity: 2 },
          { sku: 'b', quantity: 1 },
        ],
      },
    });
    expect(requests[0].headers['content-type']).toBe('application/json');
    expect(requests[0].headers['idempotency-key']).toBe(`${result.run_id}/reserve`);
    expect(steps.reserve.output).toEqual({
      order_id: 'o-1',
      currency: 'EUR',
      items,
      reservation: { reservation_id: 'r-o-1', expires_at: '2030-01-01T00:00:00.000Z' },
    });
    expect(steps.reserve.logs.map((l: { msg: string }) => l.msg)).toEqual(['reserving stock', 'stock reserved']);
    expect(steps.price.output).toEqual({
      order_id: 'o-1',
      currency: 'EUR',
      subtotal_cents: 2498,
      discount_cents: 250,
      vat_cents: 450,
      total_cents: 2698,
    });
    expect(result.output).toEqual({
      to: 'ada@example.com',
      subject: 'Order o-1 confirmed: €26.98',
      text: 'Hello Ada Lovelace,\n\nThank you for your order o-1.\n\nSubtotal: €24.98\nDiscount: -€2.50\nVAT: €4.50\nTotal: €26.98\n',
      html: [
        '<p>Hello Ada Lovelace,</p>',
        '<p>Thank you for your order o-1.</p>',
        '<table>',
        '<tr><td>Subtotal</td><td>€24.98</td></tr>',
        '<tr><td>Discount</td><td>-€2.50</td></tr>',
        '<tr><td>VAT</td><td>€4.50</td></tr>',
        '<tr><th>Total</th><th>€26.98</th></tr>',
        '</table>',
        '',
      ].join('\n'),
    });
    expect(Object.values(steps).map((s: any) => [s.name, s.status, s.attempts])).toEqual([
      ['validate', 'completed', 1],
      ['reserve', 'completed', 1],
      ['price', 'completed', 1],
      ['notify', 'completed', 1],
    ]);
  });

  it('escapes a hostile customer name in the HTML and keeps the text and subject plain', async () => {
    const { result } = await checkout('o-2', { name: '<script>alert("x")</script> & \'Sons\'', email: 'eve@example.com' });
    expect(result.status).toBe('completed');
    expect(result.output.html).not.toContain('<script>');
    expect(result.output.html.split('\n')[0]).toBe('<p>Hello &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Sons&#39;,</p>');
    expect(result.output.text.split('\n')[0]).toBe('Hello <script>alert("x")</script> & \'Sons\',');
    expect(result.output.subject).toBe('Order o-2 confirmed: €26.98');
    const injected = await checkout('o-6\r\nBcc: eve@example.com');
    expect(injected.result.output.subject).toBe('Order o-6 Bcc: eve@example.com confirmed: €26.98');
  });

  it('fails at once, without retries, when the service answers 409 (out of stock)', async () => {
    const { result, steps } = await checkout('o-oos');
    expect(result.status).toBe('failed');
    expect(result.error.code).toBe('E_OUT_OF_STOCK');
    expect(result.error.message).toContain('inventory answered 409: {"error":"sku a: 1 left"}');
    expect(steps.reserve).toMatchObject({ status: 'failed', attempts: 1 });
    expect(Object.keys(steps)).toEqual(['validate', 'reserve']);
    expect(requests).toHaveLength(1);
  });

  it('fails at once, without retries, when the service answers 422', async () => {
    const { result, steps } = await checkout('o-bad');
    expect(result.error.code).toBe('E_RESERVATION_REJECTED');
    expect(steps.reserve).toMatchObject({ status: 'failed', attempts: 1 });
    expect(requests).toHaveLength(1);
  });

  it('retries a 503 with the same idempotency key and completes', async () => {
    const { result, steps } = await checkout('o-flaky');
    expect(result.status).toBe('completed');
    expect(steps.reserve).toMatchObject({ status: 'completed', attempts: 2 });
    expect(steps.reserve.output.reservation.reservation_id).toBe('r-o-flaky');
    expect(requests.map((r) => r.headers['idempotency-key'])).toEqual([`${result.run_id}/reserve`, `${result.run_id}/reserve`]);
    expect(result.output.subject).toBe('Order o-flaky confirmed: €26.98');
  });

  it('checks the reply against the output schema', async () => {
    const { result, steps } = await checkout('o-garbled');
    expect(result.error.code).toBe('E_OUTPUT_INVALID');
    expect(result.error.message).toContain('/reservation/reservation_id');
    expect(steps.reserve).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it('aborts the request when the step times out', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'reserve-with-short-timeout',
      definition: {
        steps: [
          { name: 'validate', type: 'validate-order' },
          { name: 'reserve', type: 'reserve-stock', config: { url: `${base}/reservations` }, timeout: '300ms', retry: { max_retries: 0 } },
        ],
      },
    });
    expect(wf.status).toBe(201);
    const { result, steps } = await checkout('o-slow', undefined, 'reserve-with-short-timeout');
    expect(result.error.code).toBe('E_STEP_TIMEOUT');
    expect(steps.reserve).toMatchObject({ status: 'failed', attempts: 1 });
    await waitFor(async () => dropped.includes('o-slow'), 5_000, 'the inventory service to see the request aborted');
  });

  it('refuses a recipient that is missing, or that is not one address, without retrying', async () => {
    const missing = await checkout('o-3', { name: 'Nobody' });
    expect(missing.result.error.code).toBe('E_RECIPIENT_INVALID');
    expect(missing.result.error.message).toContain('config.to must be one e-mail address (got null)');
    expect(missing.steps.notify).toMatchObject({ status: 'failed', attempts: 1 });
    const two = await checkout('o-4', { name: 'Mallory', email: 'a@example.com,b@example.com' });
    expect(two.result.error.code).toBe('E_RECIPIENT_INVALID');
  });

  it('refuses a url that is not http(s) without retrying', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'reserve-from-a-file',
      definition: {
        steps: [
          { name: 'validate', type: 'validate-order' },
          { name: 'reserve', type: 'reserve-stock', config: { url: 'file:///etc/passwd' } },
        ],
      },
    });
    expect(wf.status).toBe(201);
    const { result, steps } = await checkout('o-5', undefined, 'reserve-from-a-file');
    expect(result.error.code).toBe('E_STEP_CONFIG');
    expect(steps.reserve).toMatchObject({ status: 'failed', attempts: 1 });
    expect(requests).toHaveLength(0);
  });

  it('lists both functions with their policies', async () => {
    const r = await api(t.url, 'GET', '/api/v1/functions');
    const byName = Object.fromEntries(r.body.functions.map((f: { name: string }) => [f.name, f]));
    expect(byName['reserve-stock']).toMatchObject({ kind: 'function', timeout_ms: 5000, retry: { maxRetries: 2, initialDelayMs: 100 } });
    expect(byName['render-notification']).toMatchObject({ kind: 'function', timeout_ms: 2000 });
    expect(byName['render-notification'].input_schema.required).toEqual([
      'order_id',
      'currency',
      'subtotal_cents',
      'discount_cents',
      'vat_cents',
      'total_cents',
    ]);
  });
});
