import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasBrowser, keep, launch } from '../helpers/browser.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';
import { waitFor } from '../helpers/env.js';

const ORDER = {
  name: 'console-order',
  description: 'validate, check in parallel, pack each item, route, wait for approval',
  definition: {
    steps: [
      { name: 'validate', type: 'echo' },
      {
        name: 'checks',
        parallel: {
          branches: [
            { name: 'stock', steps: [{ name: 'reserve', type: 'delay', config: { ms: 200 } }] },
            {
              name: 'fraud',
              steps: [
                {
                  name: 'score',
                  type: 'fail',
                  config: { times: 1, code: 'E_FRAUD_API', message: 'fraud API timed out' },
                  retry: { max_retries: 3, retry_delay: 100 },
                },
              ],
            },
          ],
        },
      },
      {
        name: 'pack',
        map: { items: '{{ run.input.items }}', concurrency: 2, steps: [{ name: 'label', type: 'delay', config: { ms: 100 } }] },
      },
      {
        name: 'route',
        choice: {
          branches: [{ name: 'express', when: { path: 'run.input.express', equals: true }, steps: [{ name: 'courier', type: 'echo' }] }],
          default: [{ name: 'ship', type: 'echo' }],
        },
      },
      { name: 'slow', type: 'delay', config: { ms: 4000 } }, // long enough to be seen running on a loaded machine: the list, the click and the run page come first
      { name: 'approval', type: 'wait_for_signal', config: { signal: 'approved' } },
      { name: 'notify', type: 'transform', config: { template: { done: true, by: '{{ steps.approval.who }}' } } },
    ],
  },
};
const FAILS = {
  name: 'console-fails',
  definition: {
    steps: [
      { name: 'first', type: 'echo' },
      { name: 'boom', type: 'fail', config: { code: 'E_PAYMENT_DECLINED', message: 'card declined', retryable: false } },
    ],
  },
};
const INPUT = { items: [{ sku: 'a' }, { sku: 'b' }, { sku: 'c' }], express: false };

async function start(t: TestSystem, workflow: string, input: unknown = INPUT): Promise<string> {
  const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: workflow, input_data: input });
  expect(r.body.run_id, JSON.stringify(r.body)).toBeDefined();
  return r.body.run_id as string;
}

async function status(t: TestSystem, id: string): Promise<string | undefined> {
  return (await api(t.url, 'GET', `/api/v1/executions/${id}`)).body.status;
}

/** Waits for a step's row to show `status`; on a timeout, says what the API and the page each show. */
async function stepOnPage(t: TestSystem, page: Page, id: string, step: string, want: string): Promise<void> {
  try {
    await page.locator(`[data-step="${step}"][data-status="${want}"]`).waitFor({ timeout: 20_000 });
  } catch (err) {
    const run = (await api(t.url, 'GET', `/api/v1/executions/${id}`)).body;
    const shown = await page
      .locator('[data-step]')
      .evaluateAll((els) => els.map((e) => `${e.getAttribute('data-step')}:${e.getAttribute('data-status')}`));
    throw new Error(
      `${step} never showed ${want}: the API has ${run.status} [${run.steps?.map((s: any) => `${s.name}:${s.status}`).join(' ')}], the page [${shown.join(' ')}] (${(err as Error).message})`,
      { cause: err },
    );
  }
}

/** The console's files over HTTP: what a browser and a proxy see (runs without a browser). */
describe('the console, served', () => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('sends / to /console, serves the page uncached with a validator, and its hashed files as immutable, compressed', async () => {
    const root = await fetch(`${t.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/console');
    const page = await fetch(`${t.url}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const etag = page.headers.get('etag');
    expect(etag).toMatch(/^".+"$/);
    const html = await page.text();
    const script = /<script type="module" crossorigin src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script, html).toBeDefined();
    expect((await fetch(`${t.url}/console`, { headers: { 'if-none-match': etag! } })).status).toBe(304);
    const js = await fetch(`${t.url}${script}`, { headers: { 'accept-encoding': 'br' } });
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(js.headers.get('content-encoding')).toBe('br');
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(1000); // fetch decodes it: the bundle came through whole
    const missing = await api(t.url, 'GET', '/console/assets/nope.js');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('E_NOT_FOUND');
  });
});

describe.runIf(hasBrowser)('the console, in a real browser (Chromium)', () => {
  let t: TestSystem;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  beforeAll(async () => {
    t = await startTestSystem();
    for (const w of [ORDER, FAILS]) expect((await api(t.url, 'POST', '/api/v1/workflows', w)).status).toBe(201);
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (e) => errors.push(e.message));
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('lists runs, and a run started elsewhere appears and changes live, without reload', async () => {
    await page.goto(`${t.url}/`);
    await page.waitForURL(/\/console#\/runs$/);
    await page.locator('.empty').waitFor();
    const id = await start(t, 'console-fails');
    const row = page.locator(`tr[data-run="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    await row.locator('[data-status="failed"]').waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('E_PAYMENT_DECLINED');
    expect(await row.textContent()).toContain('console-fails');
    expect(errors).toEqual([]);
  });

  it('opens a run and fills its timeline live, nested, then sends the signal it waits for', async () => {
    const id = await start(t, 'console-order');
    await page.goto(`${t.url}/console#/runs`);
    await page.locator(`tr[data-run="${id}"]`).click();
    await page.waitForURL(new RegExp(`#/runs/${id}$`));
    // the slow step is seen running, then the run waits for its signal: all without reload
    await stepOnPage(t, page, id, 'slow', 'running');
    await keep(page, 'run-live');
    await stepOnPage(t, page, id, 'approval', 'waiting');
    expect(await page.locator('[data-step="approval"]').textContent()).toContain('signal "approved"');
    // nested rows: a parallel branch's step, each map item, the chosen branch, one retry shown
    for (const name of [
      'checks',
      'checks/stock/reserve',
      'checks/fraud/score',
      'pack',
      'pack[0]/label',
      'pack[2]/label',
      'route/default/ship',
    ])
      expect(await page.locator(`[data-step="${name}"]`).count(), name).toBe(1);
    expect(await page.locator('[data-step="checks/fraud/score"]').textContent()).toContain('2 attempts');
    expect(await page.locator('[data-step="checks/stock/reserve"] .tl-name').textContent()).toContain('stock');
    const depth = async (n: string) =>
      page.locator(`[data-step="${n}"]`).evaluate((el) => getComputedStyle(el).getPropertyValue('--depth').trim());
    expect(await depth('checks')).toBe('0');
    expect(await depth('pack[1]/label')).toBe('1');
    // a step's detail: its logs hold the failed first attempt
    await page.locator('[data-step="checks/fraud/score"]').click();
    await page.getByRole('tab', { name: /logs/ }).click();
    expect(await page.locator('table.logs').textContent()).toMatch(/attempt 1 failed: E_FRAUD_API: fraud API timed out/);
    await keep(page, 'run-waiting');
    // signal it from the page
    await page.getByRole('button', { name: 'Signal…' }).click();
    expect(await page.locator('input[name="signal"]').inputValue()).toBe('approved');
    await page.locator('textarea[name="signal-data"]').fill('{"who":"ana"}');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('.facts [data-status="completed"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-step="notify"][data-status="completed"]').waitFor();
    expect(await page.locator('.two .card').nth(1).textContent()).toContain('"by": "ana"');
    await keep(page, 'run-completed');
    expect(await status(t, id)).toBe('completed');
    expect(errors).toEqual([]);
  });

  it('cancels a run and retries it from the page', async () => {
    const id = await start(t, 'console-order');
    await page.goto(`${t.url}/console#/runs/${id}`);
    await stepOnPage(t, page, id, 'approval', 'waiting');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('.facts [data-status="cancelled"]').waitFor({ timeout: 10_000 });
    expect(await status(t, id)).toBe('cancelled');
    await page.getByRole('button', { name: 'Retry from the failed step' }).click();
    await stepOnPage(t, page, id, 'approval', 'waiting');
    expect(await status(t, id)).toBe('waiting');
    expect((await api(t.url, 'GET', `/api/v1/executions/${id}`)).body.redrives).toBe(1);
    expect(errors).toEqual([]);
  });

  it('filters runs by status and workflow (kept in the URL), shows a failure with its error, and finds a run by id', async () => {
    const failed = await start(t, 'console-fails');
    await waitFor(async () => (await status(t, failed)) === 'failed', 10_000, 'the run to fail');
    await page.goto(`${t.url}/console#/runs`);
    await page.locator('select[name="status"]').selectOption('failed');
    await page.waitForURL(/status=failed/);
    await page.locator(`tr[data-run="${failed}"]`).waitFor();
    const statuses = await page.locator('tr[data-run] [data-status]').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set(['failed'])); // the unfiltered rows are gone as soon as the filter is
    await page.locator('select[name="status"]').selectOption('');
    await page.locator('select[name="workflow"]').selectOption('console-order');
    await page.waitForURL(/workflow=console-order/);
    await page.locator('tr[data-run]').first().waitFor();
    expect(await page.locator(`tr[data-run="${failed}"]`).count()).toBe(0);
    await keep(page, 'runs');
    await page.locator('input[name="run-id"]').fill('not-a-run');
    await page.locator('input[name="run-id"]').press('Enter');
    await page.locator('.field-error').waitFor();
    await page.locator('input[name="run-id"]').fill(failed);
    await page.locator('input[name="run-id"]').press('Enter');
    await page.waitForURL(new RegExp(`#/runs/${failed}$`));
    await page.locator('[data-step="boom"]').click();
    expect(await page.locator('.tab-body').textContent()).toContain('E_PAYMENT_DECLINED');
    expect(errors).toEqual([]);
  });

  it('draws a workflow as a graph and starts a run from it; lists functions with their schemas', async () => {
    await page.goto(`${t.url}/console#/workflows`);
    await page.locator('tr[data-workflow="console-order"]').click();
    await page.locator('.graph').waitFor();
    for (const n of ['validate', 'checks', 'reserve', 'score', 'pack', 'label', 'route', 'courier', 'ship', 'approval'])
      expect(await page.locator(`.graph [data-node="${n}"]`).count(), n).toBe(1);
    expect(await page.locator('.g-parallel .g-branch-name').allTextContents()).toEqual(['stock', 'fraud']);
    expect(await page.locator('.g-choice .g-branch-name').first().textContent()).toContain('run.input.express equals true');
    await keep(page, 'workflow');
    await page.locator('textarea[name="input"]').fill(JSON.stringify({ items: [], express: true }));
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
    await page.locator('[data-step="route/express/courier"][data-status="completed"]').waitFor({ timeout: 15_000 });
    await page.goto(`${t.url}/console#/functions`);
    await page.locator('tr[data-function="compute-price"]').click();
    expect(await page.locator('tr.detail').textContent()).toContain('"vat_pct"');
    expect(errors).toEqual([]);
  });
});

describe.runIf(hasBrowser)('the console: overview', () => {
  let t: TestSystem;
  let browser: Browser;
  beforeAll(async () => {
    t = await startTestSystem();
    expect((await api(t.url, 'POST', '/api/v1/workflows', FAILS)).status).toBe(201);
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('shows the runs of the last minutes, the success rate, and this executor', async () => {
    const ids = await Promise.all([1, 2, 3].map(() => start(t, 'console-fails')));
    await waitFor(async () => (await Promise.all(ids.map((id) => status(t, id)))).every((s) => s === 'failed'), 10_000, 'the runs to fail');
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${t.url}/console#/overview`);
    const rate = page.locator('[data-tile="success rate"] .tile-value');
    await rate.waitFor();
    // refreshed every 2 s: the three failed runs show up within a poll or two
    await waitFor(async () => /0\.0 %/.test((await rate.textContent()) ?? ''), 10_000, 'the failed runs in the success rate');
    expect(await page.locator('[data-tile="success rate"] .tile-hint').textContent()).toContain('3 failed');
    expect(await page.locator('.chart canvas').count()).toBe(1);
    const executor = page.locator('tr[data-executor]');
    await executor.first().waitFor();
    expect(await executor.first().textContent()).toContain(`pid ${process.pid}`);
  });
});

describe.runIf(hasBrowser)('the console with API keys on', () => {
  let t: TestSystem;
  let browser: Browser;
  const KEY = 'console-test-key-0123456789';
  beforeAll(async () => {
    t = await startTestSystem({ set: [`auth.api_keys=viewer=${KEY}:read`] });
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('asks for a key, refuses a wrong one, and keeps a right one for the tab', async () => {
    const page = await browser.newPage();
    await page.goto(`${t.url}/console#/runs`);
    const prompt = page.locator('form[aria-label="API key"]');
    await prompt.waitFor();
    await prompt.locator('input').fill('wrong-key');
    await prompt.getByRole('button', { name: 'Sign in' }).click();
    await prompt.locator('.problem').waitFor();
    await prompt.locator('input').fill(KEY);
    await prompt.getByRole('button', { name: 'Sign in' }).click();
    await prompt.waitFor({ state: 'detached' });
    await page.locator('.empty').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('wf.apiKey'))).toBe(KEY);
    await page.reload();
    await page.locator('.empty').waitFor();
    expect(await page.locator('form[aria-label="API key"]').count()).toBe(0);
  });
});
