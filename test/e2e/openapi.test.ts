import { Validator } from '@seriousme/openapi-schema-validator';
import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as S from '../../dist/runtime/api/schemas.js';
import { waitFor } from '../helpers/env.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

FormatRegistry.Set('uuid', (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v));
FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

/**
 * The OpenAPI document: valid OpenAPI 3.1 by a real validator; every route the server serves is
 * in it (its generation refuses a route without documentation) and every operation in it is
 * served; the answers of a real session match the schemas it gives them; /api-docs is a page
 * whose script and style come from the runtime itself.
 */
describe('OpenAPI document and /api-docs', () => {
  let t: TestSystem;
  let doc: any;
  beforeAll(async () => {
    t = await startTestSystem();
    const r = await api(t.url, 'GET', '/api/v1/openapi.json');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    doc = r.body;
  });
  afterAll(() => t?.stop());

  it('is valid OpenAPI 3.1', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('every documented operation is served (none answers "no such route"), with its error codes listed', async () => {
    const ops: [string, string][] = [];
    for (const [path, methods] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(methods)) {
        ops.push([method, path]);
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
        if (op['x-scope']) expect(op.responses['401'].description, `${method} ${path}`).toMatch(/E_UNAUTHENTICATED/);
      }
    }
    expect(ops.length).toBeGreaterThanOrEqual(25);
    // a file that exists under each route with {file}: Swagger UI's style, the console's (hashed) script
    const consoleScript = /src="\/console\/assets\/([^"]+)"/.exec(await (await fetch(`${t.url}/console`)).text())?.[1];
    expect(consoleScript).toBeDefined();
    for (const [method, path] of ops) {
      const concrete = path
        .replace('{run_id}', '01890000-0000-7000-8000-000000000000')
        .replace('{file}', path.startsWith('/console/') ? consoleScript! : 'swagger-ui.css')
        .replace(/\{\w+\}/g, 'x');
      const r = await fetch(t.url + concrete, {
        method: method.toUpperCase(),
        redirect: 'manual',
        headers: { 'content-type': 'application/json' },
        body: method === 'get' || method === 'delete' ? undefined : '{}',
      });
      const body = await r.text();
      expect(r.status, `${method} ${path}: ${body}`).not.toBe(405);
      if (r.status === 404) expect(JSON.parse(body).error.code, `${method} ${path}`).not.toBe('E_NOT_FOUND');
    }
  });

  it("a session's answers match the schemas the document gives them", async () => {
    const check = (schema: TSchema, v: unknown, what: string) => {
      const errors = [...Value.Errors(schema, v)].slice(0, 3).map((e) => `${e.path}: ${e.message}`);
      expect(errors, `${what}: ${JSON.stringify(v).slice(0, 400)}`).toEqual([]);
    };
    check(S.Health, (await api(t.url, 'GET', '/health')).body, 'health');
    check(S.Ready, (await api(t.url, 'GET', '/ready')).body, 'ready');
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'openapi-check',
      definition: {
        steps: [
          { name: 'e', type: 'echo' },
          { name: 'w', type: 'wait_for_signal', config: { signal: 'go' } },
        ],
      },
    });
    check(S.WorkflowView, wf.body, 'workflow');
    check(S.WorkflowList, (await api(t.url, 'GET', '/api/v1/workflows')).body, 'workflow list');
    check(S.FunctionList, (await api(t.url, 'GET', '/api/v1/functions')).body, 'functions');
    const ex = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: wf.body.id, input_data: { a: 1 } });
    check(S.ExecuteAnswer, ex.body, 'execute');
    const waiting = await waitFor(
      async () => {
        const r = await api(t.url, 'GET', `/api/v1/executions/${ex.body.run_id}`);
        return r.body.status === 'waiting' ? r.body : null;
      },
      15_000,
      'the run to wait',
    );
    check(S.RunView, waiting, 'waiting run');
    check(S.SignalAnswer, (await api(t.url, 'POST', `/api/v1/executions/${ex.body.run_id}/signals/go`, { ok: true })).body, 'signal');
    const done = await waitFor(
      async () => {
        const r = await api(t.url, 'GET', `/api/v1/executions/${ex.body.run_id}`);
        return r.body.status === 'completed' ? r.body : null;
      },
      15_000,
      'the run to complete',
    );
    check(S.RunView, done, 'completed run');
    check(S.RunList, (await api(t.url, 'GET', '/api/v1/executions')).body, 'run list');
    check(S.EventAnswer, (await api(t.url, 'POST', '/api/v1/events', { name: 'openapi.checked', data: {} })).body, 'event');
    const sched = await api(t.url, 'POST', '/api/v1/schedules', { workflow_id: 'openapi-check', cron: '0 0 1 1 *' });
    check(S.ScheduleView, sched.body, 'schedule');
    check(S.ScheduleList, (await api(t.url, 'GET', '/api/v1/schedules')).body, 'schedules');
    check(S.ScheduleView, (await api(t.url, 'POST', `/api/v1/schedules/${sched.body.id}/pause`)).body, 'paused schedule');
    check(S.Deleted, (await api(t.url, 'DELETE', `/api/v1/schedules/${sched.body.id}`)).body, 'deleted');
    const failedRun = await api(t.url, 'POST', `/api/v1/executions/${ex.body.run_id}/retry`);
    check(S.ErrorBody, failedRun.body, 'an error');
    expect(failedRun.body.error.code).toBe('E_RUN_NOT_FAILED');
  });

  it('/api-docs is a page whose script and style the runtime serves itself; / leads to the console', async () => {
    const page = await fetch(`${t.url}/api-docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain("url: '/api/v1/openapi.json'");
    for (const src of [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1])) {
      expect(src.startsWith('/'), `${src} is served from here, not a CDN`).toBe(true);
      const asset = await fetch(t.url + src);
      expect(asset.status, src).toBe(200);
      expect(asset.headers.get('cache-control')).toMatch(/max-age/);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    }
    const other = await api(t.url, 'GET', '/api-docs/../../package.json');
    expect(other.status).toBe(404);
    const root = await fetch(`${t.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/console');
  });
});
