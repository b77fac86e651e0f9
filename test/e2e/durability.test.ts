import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrashHarness } from '../helpers/crash.js';
import { testSql, waitFor } from '../helpers/env.js';
import { testModes } from '../helpers/modes.js';
import { api } from '../helpers/system.js';

const RUNS = 1000;

/**
 * Start 1,000 runs, kill -9 the executor while they run, start another:
 * every accepted run reaches a final state in Postgres, and no step that was
 * recorded completed before the kill runs again.
 */
describe.each(testModes(['services', 'postgres']))('durability across an executor crash (%s)', (mode) => {
  const h = new CrashHarness(100, mode as 'services' | 'postgres');
  let base = '';

  beforeAll(async () => {
    base = await h.startApi();
  });
  afterAll(() => h.stop());

  it('loses no accepted run and re-runs no recorded step', async () => {
    const wf = await api(base, 'POST', '/api/v1/workflows', {
      name: 'durable',
      definition: {
        steps: ['one', 'two', 'three'].map((name) => ({ name, type: 'count-invocations', config: { sleep_ms: 100 } })),
      },
    });
    expect(wf.status).toBe(201);

    const first = await h.startExecutor('before');

    const runIds: string[] = [];
    for (let i = 0; i < RUNS; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, RUNS - i) }, () =>
          api(base, 'POST', '/api/v1/execute', { workflow_id: wf.body.id, input_data: { n: 0 } }),
        ),
      );
      for (const r of batch) {
        expect(r.status).toBe(200);
        runIds.push(r.body.run_id);
      }
    }
    expect(new Set(runIds).size).toBe(RUNS);

    const sql = testSql(h.config);
    try {
      // kill while runs are in progress: some done, most not
      await waitFor(
        async () => {
          const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'completed'`;
          return n >= 100;
        },
        60_000,
        '100 runs to complete before the kill',
        20,
      );
      first.child.kill('SIGKILL');
      await first.exited;

      const recordedKeys = await h.recordedCompleted(sql);
      const [{ n: doneBefore }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'completed'`;
      expect(doneBefore).toBeLessThan(RUNS); // the kill landed mid-way

      await h.startExecutor('after');

      await waitFor(
        async () => {
          const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status IN ('completed', 'failed')`;
          return n >= RUNS;
        },
        120_000,
        'every run to reach a final state',
        250,
      );

      const finals = await sql`SELECT id::text AS id, status FROM workflow_instances WHERE id IN ${sql(runIds)}`;
      expect(finals).toHaveLength(RUNS);
      expect(finals.filter((r) => r.status !== 'completed')).toEqual([]);

      const steps = await sql`SELECT count(*)::int AS n FROM workflow_steps WHERE status = 'completed'`;
      expect(steps[0].n).toBe(RUNS * 3);

      const after = h.invocations('after');
      expect(after.length).toBeGreaterThan(0); // the second executor did resume work
      const rerun = after.filter((line) => recordedKeys.has(line));
      expect(rerun).toEqual([]);
    } finally {
      await sql.end({ timeout: 2 });
    }
  }, 240_000);
});
