import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrashHarness } from '../helpers/crash.js';
import { testSql, waitFor } from '../helpers/env.js';
import { testModes } from '../helpers/modes.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

// POST /api/v1/executions/:run_id/cancel through HTTP, NATS, the executor, a worker thread and Postgres
describe.each(testModes())('cancelling a run (%s)', (mode) => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({ mode });
    for (const [name, steps] of [
      [
        'long',
        [
          { name: 'first', type: 'echo', config: { message: 'one' } },
          { name: 'wait', type: 'delay', config: { ms: 20_000 } },
          { name: 'never', type: 'echo' },
        ],
      ],
      ['backoff', [{ name: 'flaky', type: 'fail', retry: { max_retries: 5, retry_delay: '20s' } }]],
      ['quick', [{ name: 'hi', type: 'echo', config: { message: 'hi' } }]],
    ] as const) {
      const r = await api(t.url, 'POST', '/api/v1/workflows', { name, definition: { steps } });
      expect(r.status).toBe(201);
    }
  });
  afterAll(async () => {
    await t?.stop();
  });

  async function startAndWaitRunning(workflow: string) {
    const waiting = api(t.url, 'POST', '/api/v1/execute', { workflow_id: workflow, input_data: {}, wait: true, wait_timeout: '30s' });
    // find the run and wait until an executor has it
    for (let i = 0; i < 100; i++) {
      const list = await api(t.url, 'GET', `/api/v1/executions?limit=5`);
      const run = list.body.executions.find(
        (e: { workflow_name: string; status: string }) => e.workflow_name === workflow && e.status === 'running',
      );
      if (run) return { runId: run.run_id as string, waiting };
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no running run of ${workflow}`);
  }

  it('stops a step in flight on a worker thread (its signal fires) and records the run cancelled', async () => {
    const { runId, waiting } = await startAndWaitRunning('long');
    await new Promise((r) => setTimeout(r, 200)); // the 20 s delay is under way
    const c = await api(t.url, 'POST', `/api/v1/executions/${runId}/cancel`);
    expect(c.status).toBe(202);
    expect(c.body).toEqual({ run_id: runId, status: 'cancelling' });

    const result = (await waiting).body;
    expect(result.status).toBe('cancelled');
    expect(result.error.code).toBe('E_CANCELLED');
    const run = await api(t.url, 'GET', `/api/v1/executions/${runId}`);
    expect(run.body.status).toBe('cancelled');
    const steps = Object.fromEntries(run.body.steps.map((s: { name: string }) => [s.name, s]));
    expect(steps.first.status).toBe('completed');
    expect(steps.wait).toMatchObject({ status: 'failed', error: { code: 'E_CANCELLED' } });
    expect(steps.wait.duration_ms).toBeLessThan(20_000); // it did not run its course
    expect(steps.never).toBeUndefined();
  });

  it('ends a retry backoff at once', async () => {
    const { runId, waiting } = await startAndWaitRunning('backoff');
    await new Promise((r) => setTimeout(r, 200));
    expect((await api(t.url, 'POST', `/api/v1/executions/${runId}/cancel`)).status).toBe(202);
    const result = (await waiting).body;
    expect(result.status).toBe('cancelled');
    const run = await api(t.url, 'GET', `/api/v1/executions/${runId}`);
    expect(run.body.steps[0]).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it('answers 409 for a run that has ended, 404 for an unknown one, 400 for a bad id', async () => {
    const done = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'quick', input_data: {}, wait: true });
    expect(done.body.status).toBe('completed');
    // the final row is written in batches: wait until GET sees it
    for (let i = 0; i < 50 && (await api(t.url, 'GET', `/api/v1/executions/${done.body.run_id}`)).body.status !== 'completed'; i++)
      await new Promise((r) => setTimeout(r, 20));
    const again = await api(t.url, 'POST', `/api/v1/executions/${done.body.run_id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'E_RUN_FINAL', details: { status: 'completed' } });
    expect((await api(t.url, 'POST', '/api/v1/executions/01a21c07-6cf9-74de-b82a-3e7741101033/cancel')).status).toBe(404);
    expect((await api(t.url, 'POST', '/api/v1/executions/nope/cancel')).body.error.code).toBe('E_VALIDATION');
  });
});

/** A cancel sent while no executor runs: the executor that starts later must still skip the run. */
describe.each(testModes(['services', 'postgres']))('cancelling a queued run before any executor runs (%s)', (mode) => {
  const h = new CrashHarness(10, mode as 'services' | 'postgres');
  let base = '';
  beforeAll(async () => {
    base = await h.startApi();
  });
  afterAll(() => h.stop());

  it('is skipped by an executor started after the cancel', async () => {
    const wf = await api(base, 'POST', '/api/v1/workflows', {
      name: 'later',
      definition: { steps: [{ name: 'count', type: 'count-invocations' }] },
    });
    expect(wf.status).toBe(201);
    const cancelled = await api(base, 'POST', '/api/v1/execute', { workflow_id: 'later', input_data: {} });
    const kept = await api(base, 'POST', '/api/v1/execute', { workflow_id: 'later', input_data: {} });
    const c = await api(base, 'POST', `/api/v1/executions/${cancelled.body.run_id}/cancel`);
    expect(c.status).toBe(202);

    await h.startExecutor('after');
    const sql = testSql(h.config);
    try {
      const rows = await waitFor(
        async () => {
          const r =
            await sql`SELECT id::text AS id, status, error_code FROM workflow_instances WHERE status IN ('completed', 'failed', 'cancelled')`;
          return r.length >= 2 ? r : null;
        },
        30_000,
        'both runs to end',
      );
      const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
      expect(byId[cancelled.body.run_id]).toMatchObject({ status: 'cancelled', error_code: 'E_CANCELLED' });
      expect(byId[kept.body.run_id]).toMatchObject({ status: 'completed' });
      // the cancelled one never ran a step
      expect(h.invocations('after').map((l) => l.split(' ')[0])).toEqual([kept.body.run_id]);
    } finally {
      await sql.end({ timeout: 2 });
    }
  }, 60_000);
});
