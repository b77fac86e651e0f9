import { hostname } from 'node:os';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as S from '../../dist/runtime/api/schemas.js';
import { createLogger, createMetrics } from '../../dist/runtime/observability/index.js';
import { startSystem, type System } from '../../dist/runtime/system.js';
import { ROOT, waitFor } from '../helpers/env.js';
import { testModes } from '../helpers/modes.js';
import { startTestSystem, type TestSystem } from '../helpers/system.js';

FormatRegistry.Set('uuid', (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v));
FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const READER = 'reader-' + 'o'.repeat(24);
const ADMIN = 'admin-' + 'v'.repeat(24);

/** A request with a key (or none). */
async function call(base: string, method: string, path: string, key: string | undefined, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text };
}

interface Overview {
  now: string;
  window_s: number;
  bucket_s: number;
  series: { t: string; started: number; completed: number; failed: number; cancelled: number }[];
  totals: { started: number; completed: number; failed: number; cancelled: number; success_rate: number | null };
  run_duration_ms: { p50: number | null; p95: number | null; p99: number | null; samples: number };
  step_duration_ms: { p50: number | null; p95: number | null; p99: number | null; samples: number };
  runs_now: { queued: number; running: number; waiting: number };
  queue: { driver: string; pending: number | null; delivered: number | null };
  executors: { id: string; host: string; pid: number; slots: number; in_flight: number; threads: number; utilization: number }[];
}

// GET /api/v1/overview against the real system: runs through HTTP, the queue, executors and PostgreSQL
describe.each(testModes(['services', 'postgres']))('GET /api/v1/overview (%s)', (mode) => {
  let t: TestSystem;
  const overview = async (query = '') => {
    const r = await call(t.url, 'GET', `/api/v1/overview${query}`, READER);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body as Overview;
  };

  beforeAll(async () => {
    t = await startTestSystem({ mode, set: [`auth.api_keys=admin=${ADMIN}, reader=${READER}:read`] });
    const workflows = {
      'ov-ok': [
        { name: 'hello', type: 'echo', config: { message: 'hi' } },
        { name: 'pause', type: 'delay', config: { ms: 60 } },
      ],
      'ov-fail': [{ name: 'boom', type: 'fail', config: { retryable: false } }],
      'ov-wait': [{ name: 'approve', type: 'wait_for_signal', config: { signal: 'go' } }],
    };
    for (const [name, steps] of Object.entries(workflows)) {
      expect((await call(t.url, 'POST', '/api/v1/workflows', ADMIN, { name, definition: { steps } })).status).toBe(201);
    }
    const run = (workflow_id: string, wait: boolean) => call(t.url, 'POST', '/api/v1/execute', ADMIN, { workflow_id, wait });
    const results = await Promise.all([
      ...Array.from({ length: 5 }, () => run('ov-ok', true)),
      ...Array.from({ length: 3 }, () => run('ov-fail', true)),
    ]);
    expect(results.map((r) => r.body.status).sort()).toEqual([...Array(5).fill('completed'), ...Array(3).fill('failed')]);
    expect((await run('ov-wait', false)).status).toBe(200);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('counts the runs of the window, with their success rate, durations and every bucket', async () => {
    // the waiting run is recorded once its executor has parked it; the answer may be a second old
    const o = await waitFor(
      async () => {
        const o = await overview();
        return o.totals.completed === 5 && o.totals.failed === 3 && o.runs_now.waiting === 1 ? o : null;
      },
      15_000,
      'the runs in the overview',
      200,
    );
    const errors = [...Value.Errors(S.Overview, o)].slice(0, 3).map((e) => `${e.path}: ${e.message}`);
    expect(errors, JSON.stringify(o).slice(0, 500)).toEqual([]);

    expect(o.totals).toEqual({ started: 9, completed: 5, failed: 3, cancelled: 0, success_rate: 0.625 });
    expect(o.window_s).toBe(900);
    expect(o.bucket_s).toBe(10);
    expect(o.series).toHaveLength(90);
    const starts = o.series.map((p) => Date.parse(p.t));
    for (let i = 1; i < starts.length; i++) expect(starts[i] - starts[i - 1]).toBe(10_000);
    const now = Date.parse(o.now);
    expect(now).toBeGreaterThanOrEqual(starts.at(-1)!);
    expect(now).toBeLessThan(starts.at(-1)! + 10_000);
    const sum = (k: 'started' | 'completed' | 'failed' | 'cancelled') => o.series.reduce((n, p) => n + p[k], 0);
    expect({ started: sum('started'), completed: sum('completed'), failed: sum('failed'), cancelled: sum('cancelled') }).toEqual({
      started: 9,
      completed: 5,
      failed: 3,
      cancelled: 0,
    });

    expect(o.run_duration_ms.samples).toBe(8);
    expect(o.run_duration_ms.p50).toBeGreaterThan(0);
    expect(o.run_duration_ms.p99!).toBeGreaterThanOrEqual(o.run_duration_ms.p95!);
    expect(o.run_duration_ms.p95!).toBeGreaterThanOrEqual(o.run_duration_ms.p50!);
    expect(o.run_duration_ms.p99!).toBeGreaterThanOrEqual(55); // the 60 ms delay
    // echo and delay of the 5 runs, fail of the 3; the signal wait has not ended (and would not count)
    expect(o.step_duration_ms.samples).toBe(13);
    expect(o.step_duration_ms.p99!).toBeGreaterThanOrEqual(55);

    expect(o.runs_now).toEqual({ queued: 0, running: 0, waiting: 1 });
    expect(o.queue.driver).toBe(mode === 'services' ? 'nats' : 'postgres');
    expect(o.queue.pending).toBe(0);
  });

  it('lists the executors of the cluster with their slots, threads and load', async () => {
    const o = await overview();
    const mine = o.executors.find((e) => e.pid === process.pid);
    expect(mine, JSON.stringify(o.executors)).toBeDefined();
    expect(mine).toMatchObject({ host: hostname(), slots: t.config.executor.max_concurrent_workflows, in_flight: 0 });
    expect(mine!.threads).toBeGreaterThan(0);
    expect(mine!.utilization).toBeGreaterThanOrEqual(0);
    expect(mine!.utilization).toBeLessThanOrEqual(1);

    // a second executor process joins (on the same database and queue), then stops cleanly
    const second: System = await startSystem({
      role: 'executor',
      config: t.config,
      log: createLogger({ ...t.config.logging }),
      metrics: createMetrics(),
      root: ROOT,
    });
    let stopped = false;
    try {
      const both = await waitFor(async () => ((await overview()).executors.length === 2 ? true : null), 5_000, 'two executors');
      expect(both).toBe(true);
      await second.stop();
      stopped = true;
      // removed at once on a clean stop (the answer may be a second old)
      await waitFor(async () => ((await overview()).executors.length === 1 ? true : null), 5_000, 'the second executor to leave');
    } finally {
      if (!stopped) await second.stop();
    }
  });

  it('does not list an executor that stopped beating, and forgets it after a while', async () => {
    const sql = t.sql();
    try {
      await sql`
        INSERT INTO executors (id, host, pid, started_at, last_seen, slots, in_flight, threads, utilization) VALUES
          ('gone:1:quiet', 'gone', 1, now() - interval '1 hour', now() - interval '40 seconds', 8, 2, 2, 0.5),
          ('gone:2:long', 'gone', 2, now() - interval '1 hour', now() - interval '11 minutes', 8, 2, 2, 0.5)`;
      await new Promise((r) => setTimeout(r, 1100)); // past the cached answer
      expect((await overview()).executors.map((e) => e.host)).not.toContain('gone');
      // the next beat of a live executor deletes the rows of processes gone for 10 minutes
      await waitFor(
        async () => {
          const rows = await sql<{ id: string }[]>`SELECT id FROM executors WHERE host = 'gone'`;
          return rows.length === 1 ? rows : null;
        },
        8_000,
        'the long-gone executor to be forgotten',
      ).then((rows) => expect(rows[0].id).toBe('gone:1:quiet'));
    } finally {
      await sql.end();
    }
  });

  it('sizes the buckets by the window: at most 90', async () => {
    const hour = await overview('?minutes=60');
    expect([hour.window_s, hour.bucket_s, hour.series.length]).toEqual([3600, 40, 90]);
    expect(hour.totals.completed).toBe(5);
    const minute = await overview('?minutes=1');
    expect([minute.window_s, minute.bucket_s, minute.series.length]).toEqual([60, 1, 60]);
  });

  it('answers many requests at once with one answer (cached for a second)', async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => overview('?minutes=5')));
    expect(new Set(answers.map((a) => a.now)).size).toBeLessThanOrEqual(2);
  });

  it('answers 400 E_VALIDATION for a window outside 1 to 60 minutes, and 401 without a key', async () => {
    for (const bad of ['0', '61', 'abc', '1.5', '-5']) {
      const r = await call(t.url, 'GET', `/api/v1/overview?minutes=${bad}`, READER);
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toBe('E_VALIDATION');
      expect(r.body.error.message).toContain('minutes');
    }
    const r = await call(t.url, 'GET', '/api/v1/overview', undefined);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('E_UNAUTHENTICATED');
  });
});
