import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../dist/runtime/errors/index.js';
import { startTestSystem, type TestSystem } from '../helpers/system.js';

/**
 * A generated battery of bad requests, on top of the hand-written cases in bad-input.test.ts:
 * mutations of valid bodies (seeded, so a failure is reproducible), odd paths and queries,
 * malformed Authorization headers, and raw malformed HTTP over a socket. Whatever comes in,
 * the answer is a 4xx with a stable code from the catalogue (or, for bytes that are not HTTP,
 * a closed connection), never a 5xx, never a hang; and the server keeps serving.
 */
const KEY = 'battery-key-0123456789abcdef';
const AUTH = { authorization: `Bearer ${KEY}` };
const CODES = new Set(Object.keys(ErrorCodes));

/** mulberry32: a small seeded PRNG, so the generated cases are the same on every run */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Values of every odd kind a field may be given instead of the right one. */
const ODD: Json[] = [
  null,
  true,
  0,
  -1,
  1e308,
  -1e308,
  1.5,
  '',
  ' ',
  'x'.repeat(300),
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\u202e\u0645',
  '{{ run.input.x }}',
  '{{',
  '../../etc/passwd',
  "'; DROP TABLE workflow_instances; --",
  [],
  [null],
  [1, 'a', {}],
  {},
  { $ref: '#' },
  { __proto__: { polluted: true } },
  { constructor: { prototype: { polluted: true } } },
  JSON.parse('{"a":'.repeat(60) + '1' + '}'.repeat(60)) as Json,
];

/** Every path of an object (a.b.0.c), for mutations to aim at. */
function paths(v: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

function mutate(base: Json, r: () => number): Json {
  const doc = structuredClone(base);
  const all = paths(doc).filter((p) => p.length > 0);
  const p = all[Math.floor(r() * all.length)];
  const parent = p.slice(0, -1).reduce<Json>((o, k) => (o as Record<string, Json>)[k]!, doc) as Record<string | number, Json>;
  const last = p[p.length - 1];
  const kind = r();
  if (kind < 0.25 && !Array.isArray(parent)) delete parent[last];
  else if (kind < 0.35 && !Array.isArray(parent)) parent[`unknown_${Math.floor(r() * 100)}`] = ODD[Math.floor(r() * ODD.length)]!;
  else parent[last] = ODD[Math.floor(r() * ODD.length)]!;
  return doc;
}

const VALID_WORKFLOW: Json = {
  name: 'battery',
  version: '1.0.0',
  description: 'generated',
  definition: {
    steps: [
      { name: 'a', type: 'echo', config: { message: 'hi {{ run.input.x }}' }, timeout: '5s', retry: { max_retries: 1 } },
      { name: 'b', type: 'transform', config: { template: { from_a: '{{ steps.a.message }}' } } },
    ],
  },
};

describe('a generated battery of bad input', () => {
  let t: TestSystem;
  let port = 0;
  let workflowId = '';
  const answers: { what: string; status: number; code?: string }[] = [];

  const send = async (what: string, method: string, path: string, body?: string, headers: Record<string, string> = AUTH) => {
    const res = await fetch(`${t.url}${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body,
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
    } catch {
      /* a success body need not be an error */
    }
    answers.push({ what, status: res.status, code });
    return { status: res.status, code, text };
  };

  /** A 4xx with a catalogued code and a message, or a success; never a 5xx. */
  const expectHandled = (r: { status: number; code?: string; text: string }, what: string) => {
    expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeLessThan(500);
    if (r.status >= 400) {
      expect(CODES.has(r.code ?? ''), `${what}: code ${r.code}`).toBe(true);
      expect((JSON.parse(r.text) as { error: { message: string } }).error.message.length, what).toBeGreaterThan(0);
    }
  };

  beforeAll(async () => {
    t = await startTestSystem({ set: [`auth.api_keys=battery=${KEY}`, 'api.max_body_bytes=65536', 'api.read_timeout=1s'] });
    port = Number(new URL(t.url).port);
    const wf = await send('register the valid workflow', 'POST', '/api/v1/workflows', JSON.stringify(VALID_WORKFLOW));
    expect(wf.status).toBe(201);
    workflowId = (JSON.parse(wf.text) as { id: string }).id;
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('120 mutations of a valid workflow registration: each a 4xx with a stable code, or a 201', async () => {
    const r = rng(1);
    for (let i = 0; i < 120; i++) {
      const body = mutate(VALID_WORKFLOW, r) as Record<string, Json>;
      // a mutation that leaves the workflow valid registers it: give it a name of its own
      if (body && typeof body === 'object' && typeof body.name === 'string' && body.name === 'battery') body.name = `battery-${i}`;
      const what = `workflow mutation ${i}: ${JSON.stringify(body).slice(0, 200)}`;
      expectHandled(await send(what, 'POST', '/api/v1/workflows', JSON.stringify(body)), what);
    }
  });

  it('100 mutations of a valid execute: each a 4xx with a stable code, or an accepted run', async () => {
    const r = rng(2);
    const valid: Json = { workflow_id: workflowId, input_data: { x: 1, nested: { list: [1, 2] } }, idempotency_key: 'k-1', wait: false };
    for (let i = 0; i < 100; i++) {
      const body = mutate(valid, r) as Record<string, Json>;
      if (body && typeof body === 'object' && body.idempotency_key === 'k-1') body.idempotency_key = `k-${i}`;
      const what = `execute mutation ${i}: ${JSON.stringify(body).slice(0, 200)}`;
      expectHandled(await send(what, 'POST', '/api/v1/execute', JSON.stringify(body)), what);
    }
  });

  it('60 odd paths and queries: each a 4xx with a stable code, or an answer', async () => {
    const r = rng(3);
    const junk = [
      '',
      '%',
      '%zz',
      '%00',
      '..',
      '%2e%2e',
      'a'.repeat(2000),
      '\u00e9',
      '%ED%A0%80',
      "' OR 1=1 --",
      '-1',
      '1e999',
      'NaN',
      '[]',
      '{}',
    ];
    const templates = [
      (j: string) => `/api/v1/executions?limit=${j}`,
      (j: string) => `/api/v1/executions?before=${j}`,
      (j: string) => `/api/v1/executions?workflow_id=${j}&status=${j}`,
      (j: string) => `/api/v1/executions/${j}`,
      (j: string) => `/api/v1/workflows/${j}`,
      (j: string) => `/api/v1/workflows?limit=${j}&before=${j}`,
      (j: string) => `/api/v1/executions/${j}/cancel`,
      (j: string) => `/api/v1/${j}`,
    ];
    for (let i = 0; i < 60; i++) {
      const j = encodeURI(junk[Math.floor(r() * junk.length)]).replace(/%25/g, '%');
      const path = templates[Math.floor(r() * templates.length)](j);
      const method = path.endsWith('/cancel') ? 'POST' : r() < 0.2 ? 'DELETE' : 'GET';
      const what = `${method} ${path.slice(0, 200)}`;
      let res;
      try {
        res = await send(what, method, path);
      } catch (err) {
        // fetch itself refuses a few of these (an invalid URL): nothing reached the server
        expect(String(err), what).toMatch(/Invalid URL|TypeError/);
        continue;
      }
      expectHandled(res, what);
    }
  });

  it('30 malformed Authorization headers: each 401 E_UNAUTHENTICATED', async () => {
    const bad = [
      '',
      'Bearer',
      'Bearer ',
      'bearer',
      `Basic ${Buffer.from(`u:${KEY}`).toString('base64')}`,
      `Bearer ${KEY}x`,
      `Bearer ${KEY.slice(0, -1)}`,
      `Bearer ${KEY} ${KEY}`,
      `Bearer  ${KEY.toUpperCase()}`,
      `Token ${KEY}`,
      `Bearer ${'k'.repeat(4000)}`,
      'Bearer \u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9',
      `Bearer "${KEY}"`,
      `Bearer ${KEY},`,
      KEY,
    ];
    let n = 0;
    for (const h of bad) {
      for (const [method, path, body] of [
        ['POST', '/api/v1/execute', JSON.stringify({ workflow_id: workflowId })],
        ['GET', '/api/v1/executions', undefined],
      ] as const) {
        const what = `Authorization ${JSON.stringify(h.slice(0, 60))} on ${method} ${path}`;
        let res;
        try {
          res = await send(what, method, path, body, h === '' ? {} : { authorization: h });
        } catch (err) {
          // undici refuses a header value it cannot encode (non-Latin-1): nothing was sent
          expect(String(err), what).toMatch(/TypeError|invalid/i);
          continue;
        }
        expect({ what, status: res.status, code: res.code }).toEqual({ what, status: 401, code: 'E_UNAUTHENTICATED' });
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(28);
  });

  /**
   * Raw bytes on a socket: the answer is a 4xx status line, or the connection is closed; either
   * within the deadline. Never a 5xx, never a connection held for ever.
   */
  function raw(text: string | Buffer, deadlineMs: number): Promise<{ status: number | null; closed: boolean; head: string }> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      let buf = '';
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`neither an answer nor a close within ${deadlineMs} ms; got ${JSON.stringify(buf.slice(0, 200))}`));
      }, deadlineMs);
      const finish = (closed: boolean) => {
        clearTimeout(timer);
        s.destroy();
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
        resolve({ status: m ? Number(m[1]) : null, closed, head: buf.slice(0, 200) });
      };
      s.on('data', (d) => {
        buf += d.toString('latin1');
        if (buf.includes('\r\n\r\n')) finish(false);
      });
      s.on('end', () => finish(true));
      s.on('close', () => finish(true));
      s.on('error', () => finish(true));
      s.write(text);
    });
  }

  const host = () => `Host: 127.0.0.1:${port}\r\n`;
  const RAW: [string, () => string | Buffer][] = [
    ['garbage', () => 'HELLO\r\n\r\n'],
    ['binary noise', () => Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256))],
    ['only a CRLF', () => '\r\n\r\n'],
    ['a request line without a version', () => `GET /health\r\n${host()}\r\n`],
    ['HTTP/2 preface', () => 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['HTTP/9.9', () => `GET /health HTTP/9.9\r\n${host()}\r\n`],
    ['HTTP/1.0 (uWS does not answer it)', () => 'GET /health HTTP/1.0\r\n\r\n'],
    ['no Host header', () => 'GET /health HTTP/1.1\r\n\r\n'],
    ['a header without a colon', () => `GET /health HTTP/1.1\r\n${host()}NoColonHere\r\n\r\n`],
    ['a header name with a space', () => `GET /health HTTP/1.1\r\n${host()}Bad Name: x\r\n\r\n`],
    ['a header with a NUL', () => `GET /health HTTP/1.1\r\n${host()}X-A: a\u0000b\r\n\r\n`],
    ['obsolete line folding', () => `GET /health HTTP/1.1\r\n${host()}X-A: a\r\n b\r\n\r\n`],
    ['bare LF line ends', () => `GET /health HTTP/1.1\n${host().trim()}\n\n`],
    ['a 64 KiB header', () => `GET /health HTTP/1.1\r\n${host()}X-Big: ${'a'.repeat(65536)}\r\n\r\n`],
    ['200 headers', () => `GET /health HTTP/1.1\r\n${host()}${Array.from({ length: 200 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`],
    ['a 100 KB URL', () => `GET /api/v1/executions/${'a'.repeat(100_000)} HTTP/1.1\r\n${host()}\r\n`],
    ['an absolute-form target', () => `GET http://169.254.169.254/latest HTTP/1.1\r\n${host()}\r\n`],
    ['an asterisk target', () => `OPTIONS * HTTP/1.1\r\n${host()}\r\n`],
    ['a lowercase method', () => `get /health HTTP/1.1\r\n${host()}\r\n`],
    ['an unknown method', () => `BREW /health HTTP/1.1\r\n${host()}\r\n`],
    ['CONNECT', () => `CONNECT 127.0.0.1:22 HTTP/1.1\r\n${host()}\r\n`],
    ['a NUL in the path', () => `GET /api/v1/workflows/a\u0000b HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\n\r\n`],
    [
      'invalid UTF-8 in the path',
      () =>
        Buffer.concat([
          Buffer.from('GET /api/v1/workflows/'),
          Buffer.from([0xc3, 0x28, 0xff]),
          Buffer.from(` HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\n\r\n`),
        ]),
    ],
    [
      'a negative Content-Length',
      () => `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nContent-Length: -5\r\n\r\n{}`,
    ],
    [
      'a non-numeric Content-Length',
      () => `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nContent-Length: abc\r\n\r\n{}`,
    ],
    [
      'two different Content-Lengths',
      () => `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}`,
    ],
    [
      'Content-Length and Transfer-Encoding (smuggling)',
      () =>
        `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\n${host()}\r\n`,
    ],
    [
      'an invalid chunk size',
      () =>
        `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
    ],
    [
      'a chunk larger than announced',
      () =>
        `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{}}}}\r\n0\r\n\r\n`,
    ],
    [
      'an unknown Transfer-Encoding',
      () => `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nTransfer-Encoding: gzip\r\n\r\n{}`,
    ],
    [
      'a huge chunk size',
      () =>
        `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{}\r\n`,
    ],
    [
      'a body with no Content-Type',
      () => `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nContent-Length: 2\r\n\r\n{}`,
    ],
    [
      'a Content-Length over max_body_bytes',
      () => `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nContent-Length: 99999999\r\n\r\n{`,
    ],
    [
      'a body that is not JSON',
      () =>
        `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n<xml>`,
    ],
    ['pipelined: a valid request, then garbage', () => `GET /health HTTP/1.1\r\n${host()}\r\nGARBAGE\r\n\r\n`],
    [
      'no key on a raw execute',
      () => `POST /api/v1/execute HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    ],
    [
      'Expect: 100-continue with no body following',
      () => `POST /api/v1/execute HTTP/1.1\r\n${host()}Authorization: Bearer ${KEY}\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n`,
    ],
    [
      'Upgrade: websocket',
      () =>
        `GET /health HTTP/1.1\r\n${host()}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ],
    ['a header line of only spaces', () => `GET /health HTTP/1.1\r\n${host()}    \r\n\r\n`],
    ['a request line with tabs', () => `GET\t/health\tHTTP/1.1\r\n${host()}\r\n`],
  ];

  // uWS answers what it can parse, closes most of what it cannot, and leaves a few (bytes that
  // might still become a request) to its idle timeout: 10 s, fixed in uWS. All at once, then.
  it(`${RAW.length} raw malformed HTTP requests over a socket: a 4xx or a closed connection, never a 5xx, never held past uWS's idle timeout`, async () => {
    const results = await Promise.all(
      RAW.map(([what, make]) =>
        raw(make(), 13_000).then(
          (r) => ({ what, ...r }),
          (err: Error) => {
            throw new Error(`${what}: ${err.message}`);
          },
        ),
      ),
    );
    const outcomes: string[] = [];
    for (const r of results) {
      answers.push({ what: `raw: ${r.what}`, status: r.status ?? 0 });
      outcomes.push(`${r.what}: ${r.status ?? 'closed'}`);
      if (r.status !== null) expect(r.status, `${r.what}: ${r.head}`).toBeLessThan(500);
    }
    if (process.env.BATTERY_VERBOSE) console.log(outcomes.join('\n'));
    // the server still serves after all of it
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    // some requests are well-formed enough to get an HTTP answer: they do (no blanket close)
    expect(outcomes.filter((o) => /: 4\d\d$/.test(o)).length, outcomes.join('\n')).toBeGreaterThan(3);
  });

  it('counted: at least 300 generated requests, no 5xx among them, and the server still runs a workflow', async () => {
    expect(answers.length).toBeGreaterThanOrEqual(300);
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    const run = await send(
      'a valid execute after the battery',
      'POST',
      '/api/v1/execute',
      JSON.stringify({ workflow_id: workflowId, input_data: { x: 'ok' }, wait: true }),
    );
    expect(run.status).toBe(200);
    expect((JSON.parse(run.text) as { status: string }).status).toBe('completed');
  });
});
