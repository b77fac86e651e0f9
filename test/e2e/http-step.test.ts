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
    t = await startTestSystem({ set: ['executor.retry_delay=20ms'] });
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
