import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

// The http built-in against a real HTTP server on 127.0.0.1.
describe('http step', () => {
  let t: TestSystem;
  let server: Server;
  let base = '';
  let flaky = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.url === '/missing') return res.writeHead(404).end('no such thing');
        if (req.url === '/flaky' && flaky++ < 2) return res.writeHead(503).end('busy');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            method: req.method,
            url: req.url,
            header: req.headers['x-order'] ?? null,
            body: body ? JSON.parse(body) : null,
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // the test server is on 127.0.0.1: allowed here by name (the guard refuses loopback by default, below)
    t = await startTestSystem({ set: ['executor.retry_delay=20ms', 'steps.http.allow_hosts=[127.0.0.1]'] });
  });
  afterAll(async () => {
    await t?.stop();
    await new Promise((r) => server.close(r));
  });

  async function run(name: string, config: Record<string, unknown>, input: unknown = {}) {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', { name, definition: { steps: [{ name: 'call', type: 'http', config }] } });
    expect(wf.status).toBe(201);
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: name, input_data: input, wait: true, wait_timeout: '20s' });
    const stored = await api(t.url, 'GET', `/api/v1/executions/${r.body.run_id}`);
    return { result: r.body, step: stored.body.steps[0] };
  }

  it('sends method, templated headers and JSON body, and returns status and parsed body', async () => {
    const { result } = await run(
      'post-order',
      {
        method: 'post',
        url: `${base}/orders`,
        headers: { 'X-Order': '{{ run.input.id }}' },
        body: { id: '{{ input.id }}', n: 2 },
      },
      { id: 'o-1' },
    );
    expect(result.status).toBe('completed');
    expect(result.output.status).toBe(200);
    expect(result.output.body).toEqual({ method: 'POST', url: '/orders', header: 'o-1', body: { id: 'o-1', n: 2 } });
  });

  it('fails at once on an unexpected 4xx', async () => {
    const { result, step } = await run('get-missing', { url: `${base}/missing` });
    expect(result.status).toBe('failed');
    expect(result.error.code).toBe('E_HTTP_STATUS');
    expect(step).toMatchObject({ status: 'failed', attempts: 1 });
    expect(step.error.message).toContain('answered 404');
  });

  it('retries a 503 and completes', async () => {
    const { result, step } = await run('get-flaky', { url: `${base}/flaky` });
    expect(result.status).toBe('completed');
    expect(step.attempts).toBe(3);
  });

  it('refuses a config without an http(s) url without retrying', async () => {
    const { result, step } = await run('no-url', { url: 'file:///etc/passwd' });
    expect(result.error.code).toBe('E_STEP_CONFIG');
    expect(step.attempts).toBe(1);
  });
});

// By default the http step reaches no loopback, private, link-local or metadata address. Only
// 127.0.0.1 is used here (the guard refusing it is what is tested: nothing leaves the machine).
describe('http step: the outbound guard', () => {
  let t: TestSystem;
  let server: Server;
  let port = 0;
  let hits = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      if (req.url === '/redirect') return res.writeHead(302, { location: `http://127.0.0.1:${port}/target` }).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"reached":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    // localhost is allowed by name; its address (127.0.0.1) by itself is not
    t = await startTestSystem({ set: ['executor.retry_delay=20ms', 'steps.http.allow_hosts=[localhost]'] });
  });
  afterAll(async () => {
    await t?.stop();
    await new Promise((r) => server.close(r));
  });

  async function run(name: string, url: string) {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name,
      definition: { steps: [{ name: 'call', type: 'http', config: { url } }] },
    });
    expect(wf.status).toBe(201);
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: name, wait: true, wait_timeout: '20s' });
    const stored = await api(t.url, 'GET', `/api/v1/executions/${r.body.run_id}`);
    return { result: r.body, step: stored.body.steps[0] };
  }

  it('refuses a loopback address in the URL, at once and without retrying, naming the settings that allow it', async () => {
    const before = hits;
    const { result, step } = await run('to-loopback', `http://127.0.0.1:${port}/x`);
    expect(result.status).toBe('failed');
    expect(result.error.code).toBe('E_HTTP_FORBIDDEN_ADDRESS');
    expect(result.error.message).toContain('steps.http.allow_hosts');
    expect(step.attempts).toBe(1);
    expect(hits).toBe(before); // nothing was sent
  });

  it('reaches an allowed name, and refuses the redirect it answers to a forbidden address', async () => {
    const ok = await run('to-localhost', `http://localhost:${port}/x`);
    expect(ok.result.status).toBe('completed');
    expect(ok.result.output.body).toEqual({ reached: true });
    const before = hits;
    const redirected = await run('redirected', `http://localhost:${port}/redirect`);
    expect(redirected.result.error.code).toBe('E_HTTP_FORBIDDEN_ADDRESS');
    expect(hits).toBe(before + 1); // the redirect was answered; its target never reached
  });
});
