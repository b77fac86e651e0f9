import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from 'uuidv7';
import { startRetention } from '../../dist/runtime/engine/index.js';
import { createLogger, createMetrics } from '../../dist/runtime/observability/index.js';
import { uuidv7Floor, type Sql } from '../../dist/runtime/store/index.js';
import { cleanup, testConfig, waitFor } from '../helpers/env.js';
import { testDatabase } from '../helpers/modes.js';

/** A run id of a given acceptance time (UUIDv7: the time is its first 48 bits). */
const idAt = (ms: number) => uuidv7Floor(ms).slice(0, 24) + uuidv7().slice(24);

describe('retention', () => {
  const { config } = testConfig();
  let sql: Sql;
  let db: Awaited<ReturnType<typeof testDatabase>>;
  beforeAll(async () => {
    db = await testDatabase(config);
    sql = db.sql;
  });
  afterAll(async () => {
    await db?.stop();
    await cleanup(config);
  });

  it('deletes final runs (and their steps) older than their status keeps them, in batches, and nothing else', async () => {
    const day = 86_400_000;
    const now = Date.now();
    const runs = [
      { id: idAt(now - 10 * day), status: 'completed', gone: true },
      { id: idAt(now - 10 * day), status: 'completed', gone: true },
      { id: idAt(now - 10 * day), status: 'completed', gone: true },
      { id: idAt(now - 1 * day), status: 'completed', gone: false },
      { id: idAt(now - 10 * day), status: 'failed', gone: false }, // failed runs are kept 30 days
      { id: idAt(now - 40 * day), status: 'failed', gone: true },
      { id: idAt(now - 40 * day), status: 'running', gone: false }, // never a run not final
      { id: idAt(now - 40 * day), status: 'cancelled', gone: false }, // cancelled: kept forever here
    ];
    for (const r of runs) {
      await sql`INSERT INTO workflow_instances (id, status, input_data) VALUES (${r.id}, ${r.status}, '{}')`;
      await sql`INSERT INTO workflow_steps (instance_id, step_name, step_type, status) VALUES (${r.id}, 's', 'echo', 'completed')`;
    }
    const metrics = createMetrics();
    const stop = startRetention(
      sql,
      { keep: { completed: 7 * day, failed: 30 * day, cancelled: 0 }, batchSize: 2, intervalMs: 20 },
      createLogger({ level: 'silent', format: 'json', output: 'stdout' }),
      metrics,
    );
    try {
      const left = await waitFor(
        async () => {
          const rows = await sql`SELECT id::text FROM workflow_instances WHERE id IN ${sql(runs.map((r) => r.id))}`;
          return rows.length === runs.filter((r) => !r.gone).length ? rows : null;
        },
        10_000,
        'the old runs to go',
        50,
      );
      expect(left.map((r) => r.id).sort()).toEqual(
        runs
          .filter((r) => !r.gone)
          .map((r) => r.id)
          .sort(),
      );
      const steps = await sql`SELECT instance_id::text FROM workflow_steps WHERE instance_id IN ${sql(runs.map((r) => r.id))}`;
      expect(steps.map((s) => s.instance_id).sort()).toEqual(
        runs
          .filter((r) => !r.gone)
          .map((r) => r.id)
          .sort(),
      );
      expect(await metrics.registry.getSingleMetricAsString('retention_deleted_runs_total')).toMatch(/status="completed"\} 3/);
    } finally {
      await stop();
    }
  });
});
