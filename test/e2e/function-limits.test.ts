import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

/**
 * Per-function limits from defineFunction: `concurrency` (fixtures
 * limited-sleep / unlimited-sleep) and `memoryMb` (alloc-capped /
 * alloc-default), through HTTP on one executor host.
 */
describe('per-function limits', () => {
  let t: TestSystem;
  const run = (workflow: string, input: unknown = {}) =>
    api(t.url, 'POST', '/api/v1/execute', { workflow_id: workflow, input_data: input, wait: true, wait_timeout: '30s' });

  beforeAll(async () => {
    t = await startTestSystem({ set: ['executor.function_dirs=[steps, test/fixtures/functions]', 'executor.max_retries=0'] });
    const workflows: [string, unknown[]][] = [
      // 6 at once in waves of 2 take ~450 ms: a timeout of 400 ms passes only if waiting for a slot is not counted
      ['limited', [{ name: 'sleep', type: 'limited-sleep', config: { sleep_ms: 150 }, timeout: '400ms' }]],
      // long enough that six started together overlap even on a busy machine (the first runs on fresh threads are slow)
      ['unlimited', [{ name: 'sleep', type: 'unlimited-sleep', config: { sleep_ms: 400 } }]],
      ['alloc-capped', [{ name: 'big', type: 'alloc-capped', config: { mb: 200 } }]],
      ['alloc-default', [{ name: 'big', type: 'alloc-default', config: { mb: 200 } }]],
      ['alloc-capped-small', [{ name: 'small', type: 'alloc-capped', config: { mb: 16 } }]],
      ['healthy', [{ name: 'hello', type: 'hostile', config: { mode: 'ok' } }]],
    ];
    for (const [name, steps] of workflows) {
      const r = await api(t.url, 'POST', '/api/v1/workflows', { name, definition: { steps } });
      expect(r.status).toBe(201);
    }
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** The most windows open at one instant. */
  function maxOverlap(windows: { start: number; end: number }[]): number {
    const edges = windows
      .flatMap(
        (w) =>
          [
            [w.start, 1],
            [w.end, -1],
          ] as const,
      )
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let open = 0;
    let max = 0;
    for (const [, d] of edges) max = Math.max(max, (open += d));
    return max;
  }

  it('runs at most `concurrency` attempts of a function at once, and holds back nothing else', async () => {
    const [limited, unlimited] = await Promise.all([
      Promise.all(Array.from({ length: 6 }, (_, i) => run('limited', { i }))),
      Promise.all(Array.from({ length: 6 }, (_, i) => run('unlimited', { i }))),
    ]);
    for (const r of [...limited, ...unlimited]) expect(r.body).toMatchObject({ status: 'completed' });
    const lw = limited.map((r) => r.body.output as { start: number; end: number });
    const uw = unlimited.map((r) => r.body.output as { start: number; end: number });
    // the limit holds and is reached
    expect(maxOverlap(lw)).toBe(2);
    expect(Math.max(...lw.map((w) => w.end)) - Math.min(...lw.map((w) => w.start))).toBeGreaterThanOrEqual(3 * 150 - 20);
    // the unlimited function ran side by side, not behind the waiting ones
    expect(maxOverlap(uw)).toBe(6);
  });

  it('lists concurrency and memory_mb at GET /api/v1/functions', async () => {
    const r = await api(t.url, 'GET', '/api/v1/functions');
    const byName = Object.fromEntries(r.body.functions.map((f: { name: string }) => [f.name, f]));
    expect(byName['limited-sleep']).toMatchObject({ concurrency: 2, memory_mb: null });
    expect(byName['alloc-capped']).toMatchObject({ concurrency: null, memory_mb: 64 });
    expect(byName['unlimited-sleep']).toMatchObject({ concurrency: null, memory_mb: null });
  });

  it('fails a step over its memoryMb with E_WORKER_CRASHED naming the limit; the same allocation fits the default', async () => {
    expect(t.config.executor.worker_max_old_generation_mb).toBeGreaterThanOrEqual(256);
    // other runs on the host keep moving while the capped thread fills up and dies
    const t0 = Date.now();
    const [capped, ...others] = await Promise.all([run('alloc-capped'), ...Array.from({ length: 10 }, (_, i) => run('healthy', { i }))]);
    expect(others.map((r) => r.body.status)).toEqual(Array(10).fill('completed'));
    expect(Date.now() - t0).toBeLessThan(5000);

    expect(capped.body.status).toBe('failed');
    expect(capped.body.error.code).toBe('E_WORKER_CRASHED');
    const rec = await api(t.url, 'GET', `/api/v1/executions/${capped.body.run_id}`);
    expect(rec.body.steps[0]).toMatchObject({ status: 'failed', error: { code: 'E_WORKER_CRASHED' } });
    expect(rec.body.steps[0].error.message).toMatch(/out of memory \(limit 64 MB, memoryMb of function "alloc-capped"\)/);

    const fits = await run('alloc-default');
    expect(fits.body).toMatchObject({ status: 'completed', output: { allocated_mb: 200 } });

    // the pool replaced the thread: the capped function runs within its limit, and so does the rest
    expect((await run('alloc-capped-small')).body).toMatchObject({ status: 'completed', output: { allocated_mb: 16 } });
    expect((await run('healthy', { after: 'oom' })).body.status).toBe('completed');
  });
});
