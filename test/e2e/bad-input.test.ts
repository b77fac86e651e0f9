import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../dist/runtime/config/index.js';
import { cleanup, isolatedSettings, ROOT } from '../helpers/env.js';
import { startRuntimeProcess, type RuntimeProcess } from '../helpers/processes.js';
import { testModes } from '../helpers/modes.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

// Bad input through HTTP: every answer is a 4xx with `{error:{code,message}}`,
// a stable E_* code, and the server keeps serving afterwards.

const MAX_BODY = 2048;
const UNKNOWN_UUID = '00000000-0000-7000-8000-000000000000';
const OK_DEF = { steps: [{ name: 'echo-step', type: 'echo', config: { message: 'still alive' } }] };

type Res = { status: number; body: any; headers: Headers };

function expectError(res: Res, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.error?.code }, JSON.stringify(res.body)).toEqual({ status, code });
  expect(typeof res.body.error.message).toBe('string');
  expect(res.body.error.message.length).toBeGreaterThan(0);
  expect(res.headers.get('content-type')).toBe('application/json');
}

/** A raw HTTP/1.1 exchange on a socket: for requests fetch cannot make (a body that stops half way). */
function rawRequest(port: number, text: string, timeoutMs: number): Promise<{ status: number; body: any; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms; got ${JSON.stringify(buf)}`));
    }, timeoutMs);
    s.on('data', (d) => {
      buf += d.toString('utf8');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/content-length:\s*(\d+)/i.exec(buf.slice(0, end))?.[1] ?? -1);
      const body = buf.slice(end + 4);
      if (len >= 0 && Buffer.byteLength(body) >= len) {
        clearTimeout(timer);
        s.destroy();
        resolve({ status: Number(buf.slice(9, 12)), body: JSON.parse(body), ms: Date.now() - t0 });
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.write(text);
  });
}

describe.each(testModes())('bad input through HTTP (%s)', (mode) => {
  let t: TestSystem;
  let okWf: { id: string; name: string };

  beforeAll(async () => {
    t = await startTestSystem({ mode, set: [`api.max_body_bytes=${MAX_BODY}`, 'api.read_timeout=1s'] });
    const created = await api(t.url, 'POST', '/api/v1/workflows', { name: 'bad-input-ok', definition: OK_DEF, version: '1.0.0' });
    expect(created.status).toBe(201);
    okWf = created.body;
  });
  afterAll(async () => {
    await t?.stop();
  });

  describe('POST /api/v1/workflows', () => {
    const path = '/api/v1/workflows';

    it('malformed JSON → 400 E_BAD_JSON', async () => {
      expectError(await api(t.url, 'POST', path, undefined, '{"name": "x", "definition": '), 400, 'E_BAD_JSON');
      expectError(await api(t.url, 'POST', path, undefined, "{'name': 'single quotes'}"), 400, 'E_BAD_JSON');
      expectError(await api(t.url, 'POST', path, undefined, '{"name":"x",}'), 400, 'E_BAD_JSON');
      expectError(await api(t.url, 'POST', path, undefined, '   '), 400, 'E_BAD_JSON');
    });

    it('empty body and no body → 400 E_VALIDATION', async () => {
      expectError(await api(t.url, 'POST', path, undefined, ''), 400, 'E_VALIDATION');
      expectError(await api(t.url, 'POST', path), 400, 'E_VALIDATION');
    });

    it('a JSON array, string, number or null instead of an object → 400 E_VALIDATION', async () => {
      for (const raw of ['[]', '[{"name":"x","definition":{}}]', '"a string"', '42', 'null', 'true']) {
        const res = await api(t.url, 'POST', path, undefined, raw);
        expectError(res, 400, 'E_VALIDATION');
        expect(res.body.error.message).toContain('JSON object');
      }
    });

    it('wrong field types → 400 E_VALIDATION naming the field', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ name: 123, definition: OK_DEF }, '/name'],
        [{ name: 'x', definition: OK_DEF, description: 5 }, '/description'],
        [{ name: 'x', definition: OK_DEF, version: 1 }, '/version'],
        [{ name: 'x', definition: OK_DEF, created_by: {} }, '/created_by'],
        [{ name: '', definition: OK_DEF }, '/name'],
        [{ name: 'x'.repeat(256), definition: OK_DEF }, '/name'],
        [{ name: 'x', definition: OK_DEF, version: '' }, '/version'],
      ];
      for (const [body, field] of cases) {
        const res = await api(t.url, 'POST', path, body);
        expectError(res, 400, 'E_VALIDATION');
        expect(res.body.error.message).toContain(field);
      }
    });

    it('missing required fields → 400 E_VALIDATION naming the field', async () => {
      const noName = await api(t.url, 'POST', path, { definition: OK_DEF });
      expectError(noName, 400, 'E_VALIDATION');
      expect(noName.body.error.message).toContain('/name');
      const noDef = await api(t.url, 'POST', path, { name: 'no-definition' });
      expectError(noDef, 400, 'E_VALIDATION');
      expect(noDef.body.error.message).toContain('/definition');
      expectError(await api(t.url, 'POST', path, {}), 400, 'E_VALIDATION');
    });

    it('unknown fields → 400 E_VALIDATION naming the field', async () => {
      const res = await api(t.url, 'POST', path, { name: 'x', definition: OK_DEF, steps: [] });
      expectError(res, 400, 'E_VALIDATION');
      expect(res.body.error.message).toContain('unknown field /steps');
    });

    it('duplicate step names → 400 E_WORKFLOW_INVALID at /definition/steps/1/name', async () => {
      const res = await api(t.url, 'POST', path, {
        name: 'dup-steps',
        definition: {
          steps: [
            { name: 'same', type: 'echo' },
            { name: 'same', type: 'echo' },
          ],
        },
      });
      expectError(res, 400, 'E_WORKFLOW_INVALID');
      expect(res.body.error.message).toContain('/definition/steps/1/name');
      expect(res.body.error.details.problems[0].path).toBe('/definition/steps/1/name');
    });

    it('unknown step type → 400 E_WORKFLOW_INVALID at /definition/steps/N/type', async () => {
      const res = await api(t.url, 'POST', path, {
        name: 'unknown-type',
        definition: {
          steps: [
            { name: 'a', type: 'echo' },
            { name: 'b', type: 'no-such-step-type' },
          ],
        },
      });
      expectError(res, 400, 'E_WORKFLOW_INVALID');
      expect(res.body.error.details.problems).toEqual([
        expect.objectContaining({ path: '/definition/steps/1/type', message: expect.stringContaining('no-such-step-type') }),
      ]);
    });

    it('other invalid definitions → 400 E_WORKFLOW_INVALID with the path', async () => {
      const cases: [unknown, string][] = [
        [{ steps: [] }, '/definition/steps'],
        [{}, '/definition/steps'],
        ['a string', '/definition'],
        [null, '/definition'],
        [[{ name: 'a', type: 'echo' }], '/definition'],
        [{ steps: [{ name: 'a', type: 'echo', colour: 'red' }] }, '/definition/steps/0/colour'],
        [{ steps: [{ name: 'a', type: 'echo', timeout: 'soon' }] }, '/definition/steps/0/timeout'],
        [{ steps: [{ type: 'echo' }] }, '/definition/steps/0/name'],
      ];
      for (const [definition, where] of cases) {
        const res = await api(t.url, 'POST', path, { name: 'invalid-def', definition });
        expectError(res, 400, 'E_WORKFLOW_INVALID');
        expect(res.body.error.details.problems[0].path, JSON.stringify(definition)).toBe(where);
      }
    });

    it('stored none of the rejected workflows', async () => {
      for (const name of ['x', 'no-definition', 'dup-steps', 'unknown-type', 'invalid-def']) {
        const res = await api(t.url, 'GET', `/api/v1/workflows?name=${encodeURIComponent(name)}`);
        expect(res.status).toBe(200);
        expect(res.body.workflows, name).toEqual([]);
      }
      const all = await api(t.url, 'GET', '/api/v1/workflows');
      expect(all.body.workflows.map((w: { name: string }) => w.name)).toEqual(['bad-input-ok']);
    });

    it('the same name and version again → 409 E_WORKFLOW_EXISTS; the first stays unchanged', async () => {
      const again = await api(t.url, 'POST', path, {
        name: 'bad-input-ok',
        version: '1.0.0',
        definition: { steps: [{ name: 'other', type: 'echo', config: { message: 'replaced?' } }] },
      });
      expectError(again, 409, 'E_WORKFLOW_EXISTS');
      // the default version is 1.0.0 too
      expectError(await api(t.url, 'POST', path, { name: 'bad-input-ok', definition: OK_DEF }), 409, 'E_WORKFLOW_EXISTS');
      const stored = await api(t.url, 'GET', `/api/v1/workflows/${okWf.id}`);
      expect(stored.status).toBe(200);
      expect(stored.body.definition).toEqual(OK_DEF);
      const list = await api(t.url, 'GET', '/api/v1/workflows?name=bad-input-ok');
      expect(list.body.workflows).toHaveLength(1);
    });
  });

  describe('GET /api/v1/workflows', () => {
    it('a bad limit → 400 E_VALIDATION', async () => {
      for (const limit of ['0', '-1', '501', 'abc', '1.5', 'NaN', '10abc']) {
        const res = await api(t.url, 'GET', `/api/v1/workflows?limit=${limit}`);
        expectError(res, 400, 'E_VALIDATION');
        expect(res.body.error.message, limit).toContain('limit');
      }
    });

    it('a "before" that is not a workflow id → 400 E_VALIDATION', async () => {
      expectError(await api(t.url, 'GET', '/api/v1/workflows?before=not-a-uuid'), 400, 'E_VALIDATION');
      expectError(await api(t.url, 'GET', '/api/v1/workflows?limit=5&before=1234'), 400, 'E_VALIDATION');
    });

    it('valid limits still work (control)', async () => {
      const one = await api(t.url, 'GET', '/api/v1/workflows?limit=1');
      expect(one.status).toBe(200);
      expect(one.body.workflows).toHaveLength(1);
      expect(one.body.next).toBe(okWf.id);
      const empty = await api(t.url, 'GET', '/api/v1/workflows?limit=');
      expect(empty.status).toBe(200);
      const unknownBefore = await api(t.url, 'GET', `/api/v1/workflows?before=${UNKNOWN_UUID}`);
      expect(unknownBefore.status).toBe(200);
      expect(unknownBefore.body).toEqual({ workflows: [], next: null });
    });
  });

  describe('GET and DELETE /api/v1/workflows/:id', () => {
    it('an unknown workflow by uuid → 404 E_WORKFLOW_NOT_FOUND', async () => {
      expectError(await api(t.url, 'GET', `/api/v1/workflows/${UNKNOWN_UUID}`), 404, 'E_WORKFLOW_NOT_FOUND');
      expectError(await api(t.url, 'GET', `/api/v1/workflows/${UNKNOWN_UUID.toUpperCase()}`), 404, 'E_WORKFLOW_NOT_FOUND');
      expectError(await api(t.url, 'DELETE', `/api/v1/workflows/${UNKNOWN_UUID}`), 404, 'E_WORKFLOW_NOT_FOUND');
    });

    it('an unknown workflow by name → 404 E_WORKFLOW_NOT_FOUND', async () => {
      expectError(await api(t.url, 'GET', '/api/v1/workflows/no-such-workflow'), 404, 'E_WORKFLOW_NOT_FOUND');
      expectError(await api(t.url, 'GET', `/api/v1/workflows/${encodeURIComponent('no such workflow')}`), 404, 'E_WORKFLOW_NOT_FOUND');
      expectError(await api(t.url, 'DELETE', '/api/v1/workflows/no-such-workflow'), 404, 'E_WORKFLOW_NOT_FOUND');
    });

    it('a known name with an unknown version → 404 E_WORKFLOW_NOT_FOUND', async () => {
      expectError(await api(t.url, 'GET', '/api/v1/workflows/bad-input-ok?version=9.9.9'), 404, 'E_WORKFLOW_NOT_FOUND');
    });

    it('the known workflow by id and by name still answers 200 (control)', async () => {
      expect((await api(t.url, 'GET', `/api/v1/workflows/${okWf.id}`)).body.id).toBe(okWf.id);
      expect((await api(t.url, 'GET', '/api/v1/workflows/bad-input-ok')).body.id).toBe(okWf.id);
    });
  });

  describe('POST /api/v1/execute', () => {
    const path = '/api/v1/execute';

    it('malformed JSON → 400 E_BAD_JSON', async () => {
      expectError(await api(t.url, 'POST', path, undefined, '{"workflow_id": '), 400, 'E_BAD_JSON');
      expectError(await api(t.url, 'POST', path, undefined, 'workflow_id=bad-input-ok'), 400, 'E_BAD_JSON');
    });

    it('empty body and no body → 400 E_VALIDATION', async () => {
      expectError(await api(t.url, 'POST', path, undefined, ''), 400, 'E_VALIDATION');
      expectError(await api(t.url, 'POST', path), 400, 'E_VALIDATION');
    });

    it('a JSON array, string or null instead of an object → 400 E_VALIDATION', async () => {
      for (const raw of ['[]', '["bad-input-ok"]', '"bad-input-ok"', 'null', '7']) {
        expectError(await api(t.url, 'POST', path, undefined, raw), 400, 'E_VALIDATION');
      }
    });

    it('missing workflow_id → 400 E_VALIDATION naming it', async () => {
      const res = await api(t.url, 'POST', path, { input_data: { a: 1 } });
      expectError(res, 400, 'E_VALIDATION');
      expect(res.body.error.message).toContain('/workflow_id');
    });

    it('wrong field types → 400 E_VALIDATION naming the field', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ workflow_id: 123 }, '/workflow_id'],
        [{ workflow_id: '' }, '/workflow_id'],
        [{ workflow_id: null }, '/workflow_id'],
        [{ workflow_id: 'bad-input-ok', version: 2 }, '/version'],
        [{ workflow_id: 'bad-input-ok', wait: 'yes' }, '/wait'],
        [{ workflow_id: 'bad-input-ok', wait: 1 }, '/wait'],
        [{ workflow_id: 'bad-input-ok', wait: true, wait_timeout: 'soon' }, '/wait_timeout'],
        [{ workflow_id: 'bad-input-ok', wait: true, wait_timeout: -5 }, '/wait_timeout'],
        [{ workflow_id: 'bad-input-ok', wait: true, wait_timeout: 1.5 }, '/wait_timeout'],
      ];
      for (const [body, field] of cases) {
        const res = await api(t.url, 'POST', path, body);
        expectError(res, 400, 'E_VALIDATION');
        expect(res.body.error.message, JSON.stringify(body)).toContain(field);
      }
    });

    it('unknown fields → 400 E_VALIDATION naming the field', async () => {
      const res = await api(t.url, 'POST', path, { workflow_id: 'bad-input-ok', input: { a: 1 } });
      expectError(res, 400, 'E_VALIDATION');
      expect(res.body.error.message).toContain('unknown field /input');
    });

    it('an unknown workflow by uuid → 404 E_WORKFLOW_NOT_FOUND (also with wait)', async () => {
      expectError(await api(t.url, 'POST', path, { workflow_id: UNKNOWN_UUID, input_data: {} }), 404, 'E_WORKFLOW_NOT_FOUND');
      expectError(await api(t.url, 'POST', path, { workflow_id: UNKNOWN_UUID, wait: true }), 404, 'E_WORKFLOW_NOT_FOUND');
    });

    it('an unknown workflow by name, or a known name with an unknown version → 404 E_WORKFLOW_NOT_FOUND', async () => {
      expectError(await api(t.url, 'POST', path, { workflow_id: 'no-such-workflow' }), 404, 'E_WORKFLOW_NOT_FOUND');
      expectError(await api(t.url, 'POST', path, { workflow_id: 'bad-input-ok', version: '9.9.9' }), 404, 'E_WORKFLOW_NOT_FOUND');
    });

    it('accepted none of the rejected runs', async () => {
      const runs = await api(t.url, 'GET', '/api/v1/executions');
      expect(runs.status).toBe(200);
      expect(runs.body.executions).toEqual([]);
    });
  });

  describe('GET /api/v1/executions', () => {
    it('a bad limit → 400 E_VALIDATION', async () => {
      for (const limit of ['0', '501', 'abc', '-3', '2.5']) {
        const res = await api(t.url, 'GET', `/api/v1/executions?limit=${limit}`);
        expectError(res, 400, 'E_VALIDATION');
        expect(res.body.error.message, limit).toContain('limit');
      }
    });

    it('a "before" that is not a uuid, a status that does not exist → 400 E_VALIDATION; a workflow_id that is not a uuid is a name', async () => {
      const before = await api(t.url, 'GET', '/api/v1/executions?limit=10&before=yesterday');
      expectError(before, 400, 'E_VALIDATION');
      expect(before.body.error.message).toContain('before');
      const status = await api(t.url, 'GET', '/api/v1/executions?status=finished');
      expectError(status, 400, 'E_VALIDATION');
      expect(status.body.error.message).toContain('status');
      const byName = await api(t.url, 'GET', '/api/v1/executions?workflow_id=no-such-workflow-name');
      expect(byName.status).toBe(200);
      expect(byName.body.executions).toEqual([]);
    });

    it('valid paging parameters still answer 200 (control)', async () => {
      const res = await api(t.url, 'GET', `/api/v1/executions?limit=1&before=${UNKNOWN_UUID}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ executions: [], next: null });
    });
  });

  describe('GET /api/v1/executions/:run_id', () => {
    it('a run id that is not a uuid → 400 E_VALIDATION', async () => {
      for (const id of ['not-a-uuid', '12345', `${UNKNOWN_UUID}x`, UNKNOWN_UUID.replaceAll('-', '')]) {
        expectError(await api(t.url, 'GET', `/api/v1/executions/${id}`), 400, 'E_VALIDATION');
      }
    });

    it('an unknown run id → 404 E_RUN_NOT_FOUND', async () => {
      expectError(await api(t.url, 'GET', `/api/v1/executions/${UNKNOWN_UUID}`), 404, 'E_RUN_NOT_FOUND');
      expectError(await api(t.url, 'GET', '/api/v1/executions/01A21B0E-ABAF-78A7-9034-1108F2136876'), 404, 'E_RUN_NOT_FOUND');
    });
  });

  describe('archived workflows', () => {
    let archived: { id: string };

    it('an archived version cannot be executed → 409 E_WORKFLOW_INACTIVE', async () => {
      const created = await api(t.url, 'POST', '/api/v1/workflows', { name: 'to-archive', version: '1.0.0', definition: OK_DEF });
      expect(created.status).toBe(201);
      archived = created.body;
      // started once by name first, so that a cached name → id is in play
      const before = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'to-archive', input_data: { n: 1 } });
      expect(before.status).toBe(200);

      const del = await api(t.url, 'DELETE', `/api/v1/workflows/${archived.id}`);
      expect(del.status).toBe(200);
      expect(del.body.status).toBe('archived');

      expectError(await api(t.url, 'POST', '/api/v1/execute', { workflow_id: archived.id, input_data: {} }), 409, 'E_WORKFLOW_INACTIVE');
      expectError(await api(t.url, 'POST', '/api/v1/execute', { workflow_id: archived.id, wait: true }), 409, 'E_WORKFLOW_INACTIVE');
      expectError(await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'to-archive', version: '1.0.0' }), 409, 'E_WORKFLOW_INACTIVE');
    });

    it('by name alone an archived workflow has no active version → 404 E_WORKFLOW_NOT_FOUND', async () => {
      expectError(await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'to-archive' }), 404, 'E_WORKFLOW_NOT_FOUND');
      expectError(await api(t.url, 'GET', '/api/v1/workflows/to-archive'), 404, 'E_WORKFLOW_NOT_FOUND');
      // by id it is still readable, as archived
      const byId = await api(t.url, 'GET', `/api/v1/workflows/${archived.id}`);
      expect(byId.status).toBe(200);
      expect(byId.body.status).toBe('archived');
    });
  });

  describe('unknown paths and wrong methods', () => {
    it('an unknown path → 404 E_NOT_FOUND', async () => {
      for (const [method, path] of [
        ['GET', '/nope'],
        ['GET', '/api/v1/nope'],
        ['POST', '/api/v2/execute'],
        ['GET', '/api/v1/workflows/x/y'],
        ['DELETE', '/api/v1/executions'],
      ] as const) {
        const res = await api(t.url, method, path, method === 'POST' ? { workflow_id: 'bad-input-ok' } : undefined);
        if (method === 'DELETE')
          expectError(res, 405, 'E_METHOD_NOT_ALLOWED'); // exists with GET
        else expectError(res, 404, 'E_NOT_FOUND');
      }
    });

    it('a wrong method → 405 E_METHOD_NOT_ALLOWED with an Allow header', async () => {
      const cases: [string, string, string][] = [
        ['PUT', '/api/v1/workflows', 'POST, GET'],
        ['DELETE', '/api/v1/execute', 'POST'],
        ['GET', '/api/v1/execute', 'POST'],
        ['PATCH', `/api/v1/workflows/${UNKNOWN_UUID}`, 'GET, DELETE'],
        ['POST', `/api/v1/executions/${UNKNOWN_UUID}`, 'GET'],
        ['POST', '/health', 'GET'],
      ];
      for (const [method, path, allow] of cases) {
        const res = await api(t.url, method, path, method === 'GET' || method === 'DELETE' ? undefined : {});
        expectError(res, 405, 'E_METHOD_NOT_ALLOWED');
        expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      }
    });
  });

  describe('body size and read timeout', () => {
    const wfBody = (descLen: number, name = `sized-${descLen}`) =>
      JSON.stringify({ name, description: 'd'.repeat(descLen), definition: OK_DEF });
    /** a valid create body of exactly n bytes */
    const exactly = (n: number) => wfBody(n - Buffer.byteLength(wfBody(0, `exact-${n}`)), `exact-${n}`);

    it(`a body over api.max_body_bytes (${MAX_BODY}) → 413 E_BODY_TOO_LARGE on both POST endpoints`, async () => {
      expectError(await api(t.url, 'POST', '/api/v1/workflows', undefined, wfBody(10_000)), 413, 'E_BODY_TOO_LARGE');
      expectError(
        await api(
          t.url,
          'POST',
          '/api/v1/execute',
          undefined,
          JSON.stringify({ workflow_id: 'bad-input-ok', input_data: { pad: 'p'.repeat(10_000) } }),
        ),
        413,
        'E_BODY_TOO_LARGE',
      );
    });

    it('one byte over the limit → 413; exactly at the limit is accepted', async () => {
      const over = exactly(MAX_BODY + 1);
      expect(Buffer.byteLength(over)).toBe(MAX_BODY + 1);
      expectError(await api(t.url, 'POST', '/api/v1/workflows', undefined, over), 413, 'E_BODY_TOO_LARGE');
      const at = exactly(MAX_BODY);
      expect(Buffer.byteLength(at)).toBe(MAX_BODY);
      expect((await api(t.url, 'POST', '/api/v1/workflows', undefined, at)).status).toBe(201);
    });

    it('an oversized chunked body (no content-length) → 413 E_BODY_TOO_LARGE', async () => {
      const bytes = Buffer.from(wfBody(20_000));
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < bytes.length; i += 512) c.enqueue(bytes.subarray(i, i + 512));
          c.close();
        },
      });
      const res = await fetch(`${t.url}/api/v1/workflows`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      expect(res.headers.get('content-length')).not.toBeNull();
      expectError({ status: res.status, body: await res.json(), headers: res.headers }, 413, 'E_BODY_TOO_LARGE');
    });

    it('stored none of the oversized workflows', async () => {
      expect((await api(t.url, 'GET', '/api/v1/workflows?name=sized-10000')).body.workflows).toEqual([]);
      expect((await api(t.url, 'GET', '/api/v1/workflows?name=sized-20000')).body.workflows).toEqual([]);
    });

    it('a body that stops half way → 408 E_READ_TIMEOUT after api.read_timeout', async () => {
      const port = Number(new URL(t.url).port);
      const partial = await rawRequest(
        port,
        'POST /api/v1/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"workflow_id":',
        8000,
      );
      expect(partial.status).toBe(408);
      expect(partial.body.error.code).toBe('E_READ_TIMEOUT');
      expect(partial.ms).toBeGreaterThanOrEqual(900);
      const none = await rawRequest(
        port,
        'POST /api/v1/workflows HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n',
        8000,
      );
      expect(none.status).toBe(408);
      expect(none.body.error.code).toBe('E_READ_TIMEOUT');
    });
  });

  describe('NUL characters (Postgres cannot store U+0000 in text)', () => {
    it('in the workflow name or description → 400 E_VALIDATION, not 500', async () => {
      expectError(await api(t.url, 'POST', '/api/v1/workflows', { name: 'nul\u0000name', definition: OK_DEF }), 400, 'E_VALIDATION');
      expectError(
        await api(t.url, 'POST', '/api/v1/workflows', { name: 'nul-desc', description: 'a\u0000b', definition: OK_DEF }),
        400,
        'E_VALIDATION',
      );
    });

    it('inside the definition → 400 (E_WORKFLOW_INVALID or E_VALIDATION), not 500', async () => {
      const res = await api(t.url, 'POST', '/api/v1/workflows', {
        name: 'nul-def',
        definition: { steps: [{ name: 'a', type: 'echo', config: { message: 'x\u0000y' } }] },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(['E_WORKFLOW_INVALID', 'E_VALIDATION']).toContain(res.body.error.code);
    });

    it('in execute workflow_id → 400 E_VALIDATION, not 500', async () => {
      expectError(await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'bad\u0000input' }), 400, 'E_VALIDATION');
    });

    it('in query parameters → 400 E_VALIDATION, not 500', async () => {
      expectError(await api(t.url, 'GET', '/api/v1/workflows?name=a%00b'), 400, 'E_VALIDATION');
      expectError(await api(t.url, 'GET', '/api/v1/workflows?status=a%00b'), 400, 'E_VALIDATION');
      expectError(await api(t.url, 'GET', '/api/v1/executions?status=a%00b'), 400, 'E_VALIDATION');
    });

    it('in a workflow path parameter → 4xx (400 E_VALIDATION or 404 E_WORKFLOW_NOT_FOUND), not 500', async () => {
      for (const method of ['GET', 'DELETE']) {
        const res = await api(t.url, method, '/api/v1/workflows/a%00b');
        expect(
          [
            [400, 'E_VALIDATION'],
            [404, 'E_WORKFLOW_NOT_FOUND'],
          ],
          `${method}: ${JSON.stringify(res.body)}`,
        ).toContainEqual([res.status, res.body?.error?.code]);
      }
    });

    it('in input_data: refused at the door with 400 E_VALIDATION naming the path, and no run starts', async () => {
      const res = await api(t.url, 'POST', '/api/v1/execute', {
        workflow_id: 'bad-input-ok',
        input_data: { s: 'x\u0000y' },
        wait: true,
        wait_timeout: '20s',
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('E_VALIDATION');
      expect(res.body.error.message).toContain('/input_data/s');
    });
  });

  describe('after all the bad requests', () => {
    it('GET /health answers 200', async () => {
      const res = await api(t.url, 'GET', '/health');
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('ok');
      const ready = await api(t.url, 'GET', '/ready');
      expect(ready.status).toBe(200);
    });

    it('a valid execute with wait:true still completes', async () => {
      const res = await api(t.url, 'POST', '/api/v1/execute', {
        workflow_id: 'bad-input-ok',
        input_data: { after: 'bad input' },
        wait: true,
        wait_timeout: '20s',
      });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('completed');
      expect(res.body.workflow_id).toBe(okWf.id);
      expect(res.body.output).toEqual({ message: 'still alive', input: { after: 'bad input' } });
      expect(res.body.error).toBeNull();
      const stored = await api(t.url, 'GET', `/api/v1/executions/${res.body.run_id}`);
      expect(stored.status).toBe(200);
      expect(stored.body.status).toBe('completed');
      expect(stored.body.steps).toHaveLength(1);
      expect(stored.body.steps[0]).toMatchObject({ name: 'echo-step', status: 'completed', attempts: 1 });
    });
  });
});

// A malformed percent-escape in a path parameter must be a 400, not a crash. This
// runs against a separate `--role api` process so that a crash cannot take the
// test runner (and the in-process system above) down with it.
describe('malformed percent-escapes in path parameters', () => {
  const iso = isolatedSettings();
  const set = [...iso.set, 'api.address=127.0.0.1:0', 'metrics.port=0'];
  const config = loadConfig({ file: `${ROOT}config/default.yaml`, set });
  const procs: RuntimeProcess[] = [];
  let proc: RuntimeProcess;
  let base = '';

  // a fresh process for each case when the previous one died, so each case stands on its own
  beforeEach(async () => {
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) return;
    proc = startRuntimeProcess('api', set);
    procs.push(proc);
    base = `http://127.0.0.1:${await proc.port}`;
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await cleanup(config);
  });

  const attempt = async (method: string, path: string): Promise<Res> => {
    try {
      const res = await fetch(base + path, { method, signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      return { status: res.status, body: JSON.parse(text), headers: res.headers };
    } catch (err) {
      await new Promise((r) => setTimeout(r, 200)); // let a dying process finish dying
      return {
        status: -1,
        body: { transport_error: String((err as Error).cause ?? err), exit_code: proc.child.exitCode, signal: proc.child.signalCode },
        headers: new Headers(),
      };
    }
  };

  for (const [method, path] of [
    ['GET', '/api/v1/workflows/%E0%A4%A'],
    ['DELETE', '/api/v1/workflows/%ZZ'],
    ['GET', '/api/v1/executions/%'],
  ] as const) {
    it(`${method} ${path} → 400 E_VALIDATION and the process keeps serving`, async () => {
      const health0 = await attempt('GET', '/health');
      expect(health0.status).toBe(200);
      const res = await attempt(method, path);
      expectError(res, 400, 'E_VALIDATION');
      const health = await attempt('GET', '/health');
      expect(health.status).toBe(200);
      expect(proc.child.exitCode).toBeNull();
    });
  }
});
