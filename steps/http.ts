import { guardedFetch, outboundPolicy } from '../runtime/net/index.js';
import { defineFunction, NonRetryableError, RetryableError } from '../runtime/sdk/index.js';

/**
 * `http`: one HTTP request. config: `url` (required), `method` (GET), `headers`, `body` (JSON,
 * sent as application/json; strings in url, headers and body may use the `{{ path }}` template
 * syntax of `transform`), `timeout_ms` (10000; also bounded by the step's timeout),
 * `expected_status` (a list; default any 2xx).
 *
 * ```json
 * { "name": "notify", "type": "http", "config": {
 *     "method": "POST", "url": "https://hooks.example.com/orders",
 *     "headers": { "x-order": "{{ run.input.order_id }}" },
 *     "body": { "total": "{{ steps.price.total_cents }}" }, "expected_status": [200, 202] } }
 * ```
 * output: `{ "status": 200, "headers": {...}, "body": <JSON if the response is JSON, else text> }`.
 * An unexpected 4xx fails the step without retries (E_HTTP_STATUS); 5xx, 429 and network errors
 * are retried per the step's retry policy. It reaches no loopback, private, link-local or cloud
 * metadata address (checked after DNS resolution, on the address it then connects to, and on
 * every redirect): `E_HTTP_FORBIDDEN_ADDRESS`, not retried, unless the config's
 * `steps.http.allow_hosts` (names, `*.suffix`, subnets) or `steps.http.allow_private` allow it.
 */
export default defineFunction({
  name: 'http',
  description: 'Sends one HTTP request; fails on an unexpected status.',
  timeoutMs: 30_000,
  handler: async (_input, ctx) => {
    const c = ctx.config; // templates already rendered by the engine
    if (typeof c.url !== 'string' || !/^https?:\/\//.test(c.url))
      throw new NonRetryableError('E_STEP_CONFIG', 'http needs config.url, an http:// or https:// URL');
    const method = typeof c.method === 'string' ? c.method.toUpperCase() : 'GET';
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((c.headers as Record<string, unknown>) ?? {})) headers[k.toLowerCase()] = String(v);
    let body: string | undefined;
    if (c.body !== undefined && method !== 'GET' && method !== 'HEAD') {
      body = typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
      headers['content-type'] ??= 'application/json';
    }
    const timeout = AbortSignal.timeout(Number(c.timeout_ms ?? 10_000));
    // within steps.http: no loopback, private, link-local or metadata address unless allowed
    const res = await guardedFetch(c.url, { method, headers, body, signal: AbortSignal.any([ctx.signal, timeout]) }, outboundPolicy());
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        /* keep the text */
      }
    }
    const expected = Array.isArray(c.expected_status) ? c.expected_status.map(Number) : null;
    const ok = expected ? expected.includes(res.status) : res.status >= 200 && res.status < 300;
    if (!ok) {
      const message = `${method} ${c.url} answered ${res.status}${expected ? ` (expected ${expected.join(', ')})` : ''}: ${text.slice(0, 200)}`;
      if (res.status >= 400 && res.status < 500 && res.status !== 429 && res.status !== 408)
        throw new NonRetryableError('E_HTTP_STATUS', message);
      throw new RetryableError('E_HTTP_STATUS', message);
    }
    return { status: res.status, headers: Object.fromEntries(res.headers), body: parsed };
  },
});
