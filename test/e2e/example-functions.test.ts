import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    const order = { order_id: 'o-1', currency: 'eur', items: [{ sku: 'a', quantity: 2, unit_price: 9.99 }, { sku: 'b', quantity: 1, unit_price: 5 }] };
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'checkout', input_data: order, wait: true });
    expect(r.body.status).toBe('completed');
    expect(r.body.output.input).toEqual({
      order_id: 'o-1', currency: 'EUR', subtotal_cents: 2498, discount_cents: 250, vat_cents: 450, total_cents: 2698,
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
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'checkout', input_data: { order_id: 'o-3', currency: 'EUR', items: [] }, wait: true });
    expect(r.body.status).toBe('failed');
    expect(r.body.error.code).toBe('E_INPUT_INVALID');
    expect(r.body.error.message).toContain('/items');
  });

  it('refuses to register a workflow naming a function no executor has', async () => {
    const r = await api(t.url, 'POST', '/api/v1/workflows', { name: 'typo', definition: { steps: [{ name: 'x', type: 'validate-ordr' }] } });
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
          { name: 'summary', type: 'transform', config: { template: {
            order: '{{ run.input.order_id }}',
            total: '{{ steps.price.total_cents }}',
            first_sku: '{{ steps.validate.items[0].sku }}',
            label: 'Order {{ run.input.order_id }} in {{ input.currency }}',
          } } },
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
    const r = await api(t.url, 'POST', '/api/v1/workflows', { name: 'bad-template', definition: { steps: [{ name: 't', type: 'transform', config: { template: '{{ input.a * 2 }}' } }] } });
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
    expect(problems[0]!.message).toContain('comes later');
    expect(problems[1]!.message).toContain('does not exist');
    expect(problems[2]!.message).toContain('comes later');
  });
});
