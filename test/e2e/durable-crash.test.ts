import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../dist/runtime/config/index.js';
import { cleanup, isolatedSettings, ROOT, testSql, waitFor } from '../helpers/env.js';
import { modeSettings, testModes } from '../helpers/modes.js';
import { startRuntimeProcess, type RuntimeProcess } from '../helpers/processes.js';
import { api, startTestSystem } from '../helpers/system.js';

/** Processes of one isolated system (own database, stream, Redis prefix), started and killed by the test. */
function processes(mode: 'services' | 'postgres', extra: string[] = []) {
  const set = [
    ...isolatedSettings().set,
    ...modeSettings(mode).set,
    'api.address=127.0.0.1:0',
    'metrics.port=0',
    'queue.ack_wait=3s',
    'executor.function_dirs=[steps, functions, test/fixtures/functions]',
    ...extra,
  ];
  const config = loadConfig({ file: `${ROOT}config/default.yaml`, set });
  const dir = mkdtempSync(join(tmpdir(), 'wf-durable-crash-'));
  const procs: RuntimeProcess[] = [];
  return {
    config,
    start(role: string, label = role) {
      const p = startRuntimeProcess(role, set, { COUNTER_FILE: join(dir, `${label}.log`) });
      procs.push(p);
      return p;
    },
    lines(label: string) {
      const f = join(dir, `${label}.log`);
      return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
    },
    async stop() {
      await Promise.all(procs.map((p) => p.kill('SIGKILL')));
      await cleanup(config);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.each(testModes(['services', 'postgres']))('durable sleep across a kill -9 of every process (%s)', (mode) => {
  const sys = processes(mode as 'services' | 'postgres', ['executor.max_concurrent_workflows=100']);
  afterAll(() => sys.stop());

  it('300 runs of [step, sleep 3s, step]: all complete after the restart, none before its 3 s, no recorded step runs again', async () => {
    const first = sys.start('all', 'before');
    const base = `http://127.0.0.1:${await first.port}`;
    const wf = await api(base, 'POST', '/api/v1/workflows', {
      name: 'sleepy',
      definition: {
        steps: [
          { name: 'one', type: 'count-invocations' },
          { name: 'nap', type: 'sleep', config: { duration: '3s' } },
          { name: 'two', type: 'count-invocations' },
        ],
      },
    });
    expect(wf.status).toBe(201);
    const t0 = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 300; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => api(base, 'POST', '/api/v1/execute', { workflow_id: wf.body.id })));
      for (const r of batch) {
        expect(r.status).toBe(200);
        ids.push(r.body.run_id);
      }
    }
    const sql = testSql(sys.config);
    try {
      // about 1 s in, once runs are asleep (on a busy machine the accepts alone may take a second)
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
      await waitFor(
        async () => (await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'waiting'`)[0].n >= 50,
        10_000,
        'runs to be asleep before the kill',
        20,
      );
      first.child.kill('SIGKILL');
      await first.exited;

      const recorded = new Set(
        (await sql`SELECT instance_id::text AS run_id, step_name FROM workflow_steps WHERE status = 'completed'`).map(
          (r) => `${r.run_id} ${r.step_name}`,
        ),
      );
      const [{ n: sleeping }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'waiting'`;
      expect(sleeping).toBeGreaterThan(0); // the kill found runs asleep

      const second = sys.start('all', 'after');
      await second.port;
      await waitFor(
        async () => {
          const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status IN ('completed', 'failed', 'cancelled')`;
          return n >= 300;
        },
        60_000,
        'all 300 runs to end after the restart',
        250,
      );
      const runs = await sql`
        SELECT i.id::text, i.status, i.accepted_at, s.completed_at AS woke, s.wake_at
        FROM workflow_instances i JOIN workflow_steps s ON s.instance_id = i.id AND s.step_name = 'nap'
        WHERE i.id IN ${sql(ids)}`;
      expect(runs).toHaveLength(300);
      expect(runs.filter((r) => r.status !== 'completed')).toEqual([]);
      // none woke early: 3 s after its sleep began, and so at least 3 s after it was accepted
      expect(runs.filter((r) => r.woke.getTime() - r.accepted_at.getTime() < 3000)).toEqual([]);
      const steps =
        await sql`SELECT step_name, count(*)::int AS n FROM workflow_steps WHERE instance_id IN ${sql(ids)} GROUP BY 1 ORDER BY 1`;
      expect(steps).toEqual([
        { step_name: 'nap', n: 300 },
        { step_name: 'one', n: 300 },
        { step_name: 'two', n: 300 },
      ]);
      const after = sys.lines('after');
      expect(after.filter((l) => recorded.has(l))).toEqual([]); // no step recorded before the kill ran again
      expect(new Set(after).size).toBe(after.length);
    } finally {
      await sql.end({ timeout: 2 });
    }
  }, 120_000);
});

describe.each(testModes(['services', 'postgres']))('many sleepers on one executor (%s)', (mode) => {
  it('2,000 runs sleep at once with max_concurrent_workflows 50 (sleepers hold no slot) and all wake on time', async () => {
    const t = await startTestSystem({ mode, set: ['executor.max_concurrent_workflows=50'] });
    try {
      const wf = await api(t.url, 'POST', '/api/v1/workflows', {
        name: 'sleepers',
        definition: {
          steps: [
            { name: 'nap', type: 'sleep', config: { until: '{{ run.input.at }}' } },
            { name: 'done', type: 'echo' },
          ],
        },
      });
      expect(wf.status).toBe(201);
      const at = new Date(Date.now() + 20_000); // room for 2,000 accepts and first drives on a busy machine
      for (let i = 0; i < 2000; i += 100) {
        const batch = await Promise.all(
          Array.from({ length: 100 }, () => api(t.url, 'POST', '/api/v1/execute', { workflow_id: wf.body.id, input_data: { at } })),
        );
        expect(batch.filter((r) => r.status !== 200)).toEqual([]);
      }
      const sql = t.sql();
      try {
        // every run is asleep at once, 40 times what the executor may drive
        await waitFor(
          async () => {
            const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'waiting'`;
            return n === 2000;
          },
          Math.max(1000, at.getTime() - Date.now() - 500),
          '2,000 runs to be asleep before their wake time',
          200,
        );
        await waitFor(
          async () => {
            const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'completed'`;
            return n === 2000;
          },
          30_000,
          'all 2,000 to complete',
          250,
        );
        const [{ early, late }] = await sql`
          SELECT count(*) FILTER (WHERE completed_at < ${at})::int AS early,
                 count(*) FILTER (WHERE completed_at > ${new Date(at.getTime() + 15_000)})::int AS late
          FROM workflow_steps WHERE step_name = 'nap'`;
        expect(early).toBe(0);
        expect(late).toBe(0); // within 15 s of the wake time on this 2-core machine (figures in bench/)
      } finally {
        await sql.end({ timeout: 2 });
      }
    } finally {
      await t.stop();
    }
  }, 120_000);
});

describe.runIf(testModes(['services']).length > 0)('schedules with three engine processes', () => {
  const sys = processes('services');
  afterAll(() => sys.stop());

  it('every 2 s: one run per tick (never two), none after DELETE', async () => {
    const front = sys.start('api');
    const base = `http://127.0.0.1:${await front.port}`;
    await Promise.all([sys.start('engine', 'e1').port, sys.start('engine', 'e2').port, sys.start('engine', 'e3').port]);
    await sys.start('executor').port;
    const wf = await api(base, 'POST', '/api/v1/workflows', { name: 'ticker', definition: { steps: [{ name: 'e', type: 'echo' }] } });
    expect(wf.status).toBe(201);
    const bad = await api(base, 'POST', '/api/v1/schedules', { workflow_id: 'ticker', cron: '*/2 * * *' });
    expect(bad.status).toBe(400);
    const badTz = await api(base, 'POST', '/api/v1/schedules', { workflow_id: 'ticker', cron: '* * * * *', timezone: 'Mars/Olympus' });
    expect(badTz.status).toBe(400);
    const s = await api(base, 'POST', '/api/v1/schedules', { workflow_id: 'ticker', cron: '*/2 * * * * *', input_data: { from: 'cron' } });
    expect(s.status).toBe(201);
    await new Promise((r) => setTimeout(r, 7000));
    const del = await api(base, 'DELETE', `/api/v1/schedules/${s.body.id}`);
    expect(del.status).toBe(200);
    const sql = testSql(sys.config);
    try {
      const at = await sql`SELECT count(*)::int AS n FROM workflow_instances`;
      expect(at[0].n).toBeGreaterThanOrEqual(3);
      expect(at[0].n).toBeLessThanOrEqual(4);
      await new Promise((r) => setTimeout(r, 4000));
      const runs = await sql`SELECT id::text, status, input_data, created_at FROM workflow_instances ORDER BY created_at`;
      expect(runs).toHaveLength(at[0].n); // none after DELETE
      expect(runs.every((r) => r.input_data.from === 'cron')).toBe(true);
      // one per tick: started at least a tick apart (two for one tick would be moments apart)
      for (let i = 1; i < runs.length; i++) {
        expect(runs[i].created_at.getTime() - runs[i - 1].created_at.getTime()).toBeGreaterThan(1500);
      }
      await waitFor(
        async () => (await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'completed'`)[0].n === runs.length,
        10_000,
        'the ticks runs to complete',
      );
    } finally {
      await sql.end({ timeout: 2 });
    }
    const gone = await api(base, 'GET', `/api/v1/schedules/${s.body.id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('E_SCHEDULE_NOT_FOUND');
  }, 60_000);
});
