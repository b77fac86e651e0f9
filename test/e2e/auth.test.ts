import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

const ADMIN = 'adm1n-' + 'k'.repeat(24);
const RUNNER = 'run-' + 'r'.repeat(24);
const READER = 'read-' + 'x'.repeat(24);

/** A request with a key (or none). */
async function call(base: string, method: string, path: string, key?: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text.startsWith('{') ? JSON.parse(text) : text };
}

describe('API keys', () => {
  let t: TestSystem;
  const lines: string[] = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    t = await startTestSystem({
      set: [`auth.api_keys=admin=${ADMIN}, runner=${RUNNER}:execute+read, reader=${READER}:read`],
      log: pino({ level: 'debug' }, sink),
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('answers 401 E_UNAUTHENTICATED without a key or with an unknown one, saying how to send one', async () => {
    for (const key of [undefined, 'not-a-key-of-this-server-000']) {
      const r = await call(t.url, 'GET', '/api/v1/workflows', key);
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('E_UNAUTHENTICATED');
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect((await call(t.url, 'GET', '/api/v1/workflows')).body.error.message).toContain('Authorization: Bearer');
  });

  it('lets each key do what its scopes allow, and answers 403 E_FORBIDDEN naming the scope it lacks', async () => {
    const definition = { steps: [{ name: 'e', type: 'echo', config: { message: 'hi' } }] };
    const denied = await call(t.url, 'POST', '/api/v1/workflows', RUNNER, { name: 'keyed', definition });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: 'E_FORBIDDEN', details: { needed: 'admin', key: 'runner' } });
    expect((await call(t.url, 'POST', '/api/v1/workflows', ADMIN, { name: 'keyed', definition })).status).toBe(201);

    const refused = await call(t.url, 'POST', '/api/v1/execute', READER, { workflow_id: 'keyed', wait: true });
    expect(refused.status).toBe(403);
    expect(refused.body.error.details.needed).toBe('execute');
    const ran = await call(t.url, 'POST', '/api/v1/execute', RUNNER, { workflow_id: 'keyed', wait: true });
    expect(ran.status).toBe(200);
    expect(ran.body.status).toBe('completed');

    const read = await call(t.url, 'GET', `/api/v1/executions/${ran.body.run_id}`, READER);
    expect(read.status).toBe(200);
    expect(read.body.output.message).toBe('hi');
    expect((await call(t.url, 'POST', `/api/v1/executions/${ran.body.run_id}/cancel`, READER)).status).toBe(403);
  });

  it('refuses a keyless POST before reading its body', async () => {
    const big = { workflow_id: 'keyed', input_data: { pad: 'x'.repeat(500_000) } };
    const r = await call(t.url, 'POST', '/api/v1/execute', undefined, big);
    expect(r.status).toBe(401);
  });

  it('keeps /health, /ready and /metrics open (liveness, load balancers, a scraper inside the network)', async () => {
    expect((await call(t.url, 'GET', '/health')).status).toBe(200);
    expect((await call(t.url, 'GET', '/ready')).status).toBe(200);
    expect((await call(t.url, 'GET', '/metrics')).status).toBe(200);
  });

  it('never writes a key to the log', async () => {
    await call(t.url, 'GET', '/api/v1/workflows', 'wrong-key-but-secret-looking-123');
    const log = lines.join('');
    expect(log.length).toBeGreaterThan(0);
    for (const secret of [ADMIN, RUNNER, READER, 'wrong-key-but-secret-looking-123']) expect(log).not.toContain(secret);
  });
});

describe('API keys: metrics behind a key', () => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({ set: [`auth.api_keys=${READER}:read`, 'auth.metrics=key'] });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('asks for a key with the read scope on /metrics, and still not on /health', async () => {
    expect((await call(t.url, 'GET', '/metrics')).status).toBe(401);
    expect((await call(t.url, 'GET', '/metrics', READER)).status).toBe(200);
    expect((await call(t.url, 'GET', '/health')).status).toBe(200);
    expect((await api(t.url, 'GET', '/api/v1/functions')).status).toBe(401);
  });
});
