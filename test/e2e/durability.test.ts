import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrashHarness } from '../helpers/crash.js';
import { testSql, waitFor } from '../helpers/env.js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { startEmbeddedPostgres } from '../../dist/runtime/embedded/index.js';
import { createLogger } from '../../dist/runtime/observability/index.js';
import { isolatedSettings } from '../helpers/env.js';
import { modeSettings, testModes } from '../helpers/modes.js';
import { startRuntimeProcess, type RuntimeProcess } from '../helpers/processes.js';
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
      expect(new Set(after).size).toBe(after.length); // no run was driven twice after the restart
    } finally {
      await sql.end({ timeout: 2 });
    }
  }, 240_000);
});

/**
 * Embedded mode: one process holds everything, its PostgreSQL included. kill -9 it while 300
 * runs are in flight and start it again on the same data: every accepted run completes, and no
 * step recorded completed before the kill runs again.
 */
describe.runIf(testModes(['embedded']).length > 0)('durability across a kill -9 of the whole embedded runtime', () => {
  const EMBEDDED_RUNS = 300;
  const mode = modeSettings('embedded');
  const counter = mkdtempSync(join(tmpdir(), 'wf-counter-'));
  const isolated = isolatedSettings();
  const database = `wf_${isolated.id}`;
  const log = createLogger({ level: 'warn', format: 'json', output: 'stderr' });
  const set = [
    ...isolated.set,
    ...mode.set,
    'api.address=127.0.0.1:0',
    'metrics.port=0',
    'executor.function_dirs=[steps, functions, test/fixtures/functions]',
    'executor.max_concurrent_workflows=100',
    // far longer than the test waits: the runs in flight at the kill must resume at the restart
    // (their leases released: the embedded database is the runtime's own), not when leases end
    'queue.ack_wait=5m',
  ];
  const procs: RuntimeProcess[] = [];
  const startAll = async (label: string) => {
    const p = startRuntimeProcess('all', set, { COUNTER_FILE: join(counter, `${label}.log`) });
    procs.push(p);
    return { p, base: `http://127.0.0.1:${await p.port}` };
  };
  const lines = (label: string) => {
    const f = join(counter, `${label}.log`);
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
  };
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    // the guard stops the server of a killed runtime; give it a moment before the folder goes
    await new Promise((r) => setTimeout(r, 3000));
    mode.dispose();
    rmSync(counter, { recursive: true, force: true });
  });

  it('completes every accepted run after the restart and re-runs no recorded step', async () => {
    const first = await startAll('before');
    const wf = await api(first.base, 'POST', '/api/v1/workflows', {
      name: 'durable-embedded',
      definition: { steps: ['one', 'two', 'three'].map((name) => ({ name, type: 'count-invocations', config: { sleep_ms: 300 } })) },
    });
    expect(wf.status).toBe(201);
    const runIds: string[] = [];
    for (let i = 0; i < EMBEDDED_RUNS; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, () => api(first.base, 'POST', '/api/v1/execute', { workflow_id: wf.body.id, input_data: { n: 0 } })),
      );
      for (const r of batch) {
        expect(r.status).toBe(200);
        runIds.push(r.body.run_id);
      }
    }
    // kill once some runs are done (their steps recorded: a step invoked is not yet a step
    // written, the writer flushes in batches) and most are not
    await waitFor(
      async () => {
        const r = await api(first.base, 'GET', `/api/v1/executions?status=completed&limit=20`);
        return r.body.executions.length >= 10;
      },
      60_000,
      'some runs to complete before the kill',
      20,
    );
    first.p.child.kill('SIGKILL');
    await first.p.exited;

    // what the dead runtime had recorded completed: open its data with a server of our own
    const pg = await startEmbeddedPostgres({ dataDir: join(mode.dataDir!, 'postgres'), explicit: true, database, log });
    const sql = postgres({ ...pg.connection, onnotice: () => {} });
    let recorded: Set<string>;
    let doneBefore: number;
    try {
      const rows = await sql`SELECT instance_id::text AS run_id, step_name FROM workflow_steps WHERE status = 'completed'`;
      recorded = new Set(rows.map((r) => `${r.run_id} ${r.step_name}`));
      [{ n: doneBefore }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'completed'`;
    } finally {
      await sql.end({ timeout: 2 });
      await pg.stop();
    }
    expect(recorded.size).toBeGreaterThan(0);
    expect(doneBefore).toBeLessThan(EMBEDDED_RUNS); // the kill landed mid-way

    const second = await startAll('after');
    const done = async () => {
      const r = await api(second.base, 'GET', `/api/v1/executions?status=completed&limit=500`);
      return r.body.executions.length >= EMBEDDED_RUNS ? r.body.executions : null;
    };
    await waitFor(done, 60_000, 'every run to complete after the restart (well before queue.ack_wait)', 250);
    // what was recorded completed before the kill: read the records, which outlived the process
    const runs = await Promise.all(runIds.map((id) => api(second.base, 'GET', `/api/v1/executions/${id}`)));
    expect(runs.filter((r) => r.body.status !== 'completed').map((r) => r.body.run_id)).toEqual([]);
    for (const r of runs) {
      expect(r.body.steps.map((st: { name: string; status: string }) => `${st.name}:${st.status}`)).toEqual([
        'one:completed',
        'two:completed',
        'three:completed',
      ]);
    }
    const after = lines('after');
    expect(after.length).toBeGreaterThan(0); // the restarted runtime did resume work
    expect(after.filter((line) => recorded.has(line))).toEqual([]);
    expect(new Set(after).size).toBe(after.length); // no run was driven twice after the restart
  }, 240_000);
});
