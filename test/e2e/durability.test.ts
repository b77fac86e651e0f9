import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../dist/runtime/config/index.js';
import { cleanup, isolatedSettings, ROOT, testSql, waitFor } from '../helpers/env.js';
import { startRuntimeProcess, type RuntimeProcess } from '../helpers/processes.js';
import { api } from '../helpers/system.js';

const RUNS = 1000;

/**
 * Start 1,000 runs, kill -9 the executor while they run, start another:
 * every accepted run reaches a final state in Postgres, and no step that was
 * recorded completed before the kill runs again.
 */
describe('durability across an executor crash', () => {
  const iso = isolatedSettings();
  const set = [
    ...iso.set,
    'api.address=127.0.0.1:0',
    'metrics.port=0',
    'nats.ack_wait=3s',
    'executor.function_dirs=[steps, functions, test/fixtures/functions]',
    'executor.max_concurrent_workflows=100',
  ];
  const config = loadConfig({ file: `${ROOT}config/default.yaml`, set });
  const dir = mkdtempSync(join(tmpdir(), 'wf-durability-'));
  const procs: RuntimeProcess[] = [];
  let base = '';

  beforeAll(async () => {
    const apiProc = startRuntimeProcess('api', set);
    procs.push(apiProc);
    base = `http://127.0.0.1:${await apiProc.port}`;
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await cleanup(config);
  });

  it('loses no accepted run and re-runs no recorded step', async () => {
    const wf = await api(base, 'POST', '/api/v1/workflows', {
      name: 'durable',
      definition: {
        steps: ['one', 'two', 'three'].map((name) => ({ name, type: 'count-invocations', config: { sleep_ms: 100 } })),
      },
    });
    expect(wf.status).toBe(201);

    const first = startRuntimeProcess('executor', set, { COUNTER_FILE: join(dir, 'before.log') });
    procs.push(first);
    await first.port;

    const runIds: string[] = [];
    for (let i = 0; i < RUNS; i += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, RUNS - i) }, () =>
        api(base, 'POST', '/api/v1/execute', { workflow_id: wf.body.id, input_data: { n: 0 } })));
      for (const r of batch) {
        expect(r.status).toBe(200);
        runIds.push(r.body.run_id);
      }
    }
    expect(new Set(runIds).size).toBe(RUNS);

    const sql = testSql(config);
    try {
      // kill while runs are in progress: some done, most not
      await waitFor(async () => {
        const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'completed'`;
        return n >= 100;
      }, 60_000, '100 runs to complete before the kill', 20);
      first.child.kill('SIGKILL');
      await first.exited;

      const recorded = await sql`SELECT instance_id::text AS run_id, step_name FROM workflow_steps WHERE status = 'completed'`;
      const recordedKeys = new Set(recorded.map((r) => `${r.run_id} ${r.step_name}`));
      const [{ n: doneBefore }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'completed'`;
      expect(doneBefore).toBeLessThan(RUNS); // the kill landed mid-way

      const second = startRuntimeProcess('executor', set, { COUNTER_FILE: join(dir, 'after.log') });
      procs.push(second);
      await second.port;

      await waitFor(async () => {
        const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status IN ('completed', 'failed')`;
        return n >= RUNS;
      }, 120_000, 'every run to reach a final state', 250);

      const finals = await sql`SELECT id::text AS id, status FROM workflow_instances WHERE id IN ${sql(runIds)}`;
      expect(finals).toHaveLength(RUNS);
      expect(finals.filter((r) => r.status !== 'completed')).toEqual([]);

      const steps = await sql`SELECT count(*)::int AS n FROM workflow_steps WHERE status = 'completed'`;
      expect(steps[0]!.n).toBe(RUNS * 3);

      const after = existsSync(join(dir, 'after.log')) ? readFileSync(join(dir, 'after.log'), 'utf8').trim().split('\n').filter(Boolean) : [];
      expect(after.length).toBeGreaterThan(0); // the second executor did resume work
      const rerun = after.filter((line) => recordedKeys.has(line));
      expect(rerun).toEqual([]);
    } finally {
      await sql.end({ timeout: 2 });
    }
  }, 240_000);
});
