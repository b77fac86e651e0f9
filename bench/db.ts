import postgres from 'postgres';
import { sleep } from './system.js';

export type Sql = ReturnType<typeof postgres>;

const CHUNK = 10_000;
const FINAL = ['completed', 'failed', 'cancelled'];

/** A small pool on a URL, or on a socket folder (the embedded mode's PostgreSQL). */
export function openDb(target: string | { host: string; port: number; username: string; database: string }): Sql {
  const o = { max: 2, onnotice: () => {}, connect_timeout: 10, idle_timeout: 30 };
  return typeof target === 'string' ? postgres(target, o) : postgres({ ...target, ...o });
}

export interface RunRow {
  id: string;
  status: string;
  acceptedMs: number | null;
  startedMs: number | null;
  completedMs: number | null;
  createdMs: number | null;
  deliveries: number | null;
}

function* chunks<T>(a: T[], n = CHUNK): Generator<T[]> {
  for (let i = 0; i < a.length; i += n) yield a.slice(i, i + n);
}

export interface DrainResult {
  /** ids still missing or not final when the wait ended */
  pending: string[];
  waitedMs: number;
}

/** Waits (up to `timeoutMs`) until every id has a row in a final status. */
export async function drain(sql: Sql, ids: string[], timeoutMs: number): Promise<DrainResult> {
  const t0 = Date.now();
  let pending = ids;
  for (;;) {
    const still: string[] = [];
    for (const part of chunks(pending)) {
      const rows = await sql<{ id: string }[]>`
        SELECT id::text AS id FROM workflow_instances
        WHERE id = ANY(${part}::uuid[]) AND status = ANY(${FINAL}::text[])`;
      const final = new Set(rows.map((r) => r.id));
      for (const id of part) if (!final.has(id)) still.push(id);
    }
    pending = still;
    if (!pending.length || Date.now() - t0 >= timeoutMs) break;
    await sleep(Math.min(1000, Math.max(100, timeoutMs - (Date.now() - t0))));
  }
  return { pending, waitedMs: Date.now() - t0 };
}

/** The workflow_instances rows of these runs, times as epoch ms. */
export async function fetchRuns(sql: Sql, ids: string[]): Promise<Map<string, RunRow>> {
  const out = new Map<string, RunRow>();
  for (const part of chunks(ids)) {
    const rows = await sql<RunRow[]>`
      SELECT id::text AS id, status,
             (extract(epoch FROM accepted_at) * 1000)::float8 AS "acceptedMs",
             (extract(epoch FROM started_at) * 1000)::float8 AS "startedMs",
             (extract(epoch FROM completed_at) * 1000)::float8 AS "completedMs",
             (extract(epoch FROM created_at) * 1000)::float8 AS "createdMs",
             deliveries
      FROM workflow_instances WHERE id = ANY(${part}::uuid[])`;
    for (const r of rows) out.set(r.id, r);
  }
  return out;
}

export interface StepCheck {
  stepRows: number;
  stepsNotCompleted: number;
  /** rows with retry_count > 0 */
  retriedSteps: number;
  /** (instance_id, step_name) pairs with more than one row */
  duplicatedSteps: number;
  duplicateExamples: { instance_id: string; step_name: string; rows: number }[];
  /** completed runs whose step row count differs from the workflow's step count */
  runsWithWrongStepCount: number;
  /** the unique index that makes a duplicated step row impossible */
  uniqueIndex: string | null;
}

export async function checkSteps(sql: Sql, completedIds: string[], stepsPerRun: Map<string, number>): Promise<StepCheck> {
  const res: StepCheck = {
    stepRows: 0,
    stepsNotCompleted: 0,
    retriedSteps: 0,
    duplicatedSteps: 0,
    duplicateExamples: [],
    runsWithWrongStepCount: 0,
    uniqueIndex: null,
  };
  for (const part of chunks(completedIds)) {
    const [agg] = await sql<{ rows: number; not_completed: number; retried: number }[]>`
      SELECT count(*)::int AS rows,
             count(*) FILTER (WHERE status <> 'completed')::int AS not_completed,
             count(*) FILTER (WHERE retry_count > 0)::int AS retried
      FROM workflow_steps WHERE instance_id = ANY(${part}::uuid[])`;
    res.stepRows += agg.rows;
    res.stepsNotCompleted += agg.not_completed;
    res.retriedSteps += agg.retried;
    const dups = await sql<{ instance_id: string; step_name: string; rows: number }[]>`
      SELECT instance_id::text AS instance_id, step_name, count(*)::int AS rows
      FROM workflow_steps WHERE instance_id = ANY(${part}::uuid[])
      GROUP BY instance_id, step_name HAVING count(*) > 1`;
    res.duplicatedSteps += dups.length;
    res.duplicateExamples.push(...dups.slice(0, 5 - res.duplicateExamples.length));
    const counts = await sql<{ id: string; n: number }[]>`
      SELECT instance_id::text AS id, count(DISTINCT step_name)::int AS n
      FROM workflow_steps WHERE instance_id = ANY(${part}::uuid[]) GROUP BY instance_id`;
    const byId = new Map(counts.map((c) => [c.id, c.n]));
    for (const id of part) if ((byId.get(id) ?? 0) !== stepsPerRun.get(id)) res.runsWithWrongStepCount++;
  }
  const idx = await sql<{ indexdef: string }[]>`
    SELECT indexdef FROM pg_indexes
    WHERE tablename = 'workflow_steps' AND indexdef ILIKE 'CREATE UNIQUE INDEX%' AND indexdef ILIKE '%(instance_id, step_name)%'`;
  res.uniqueIndex = idx[0]?.indexdef ?? null;
  return res;
}

/** Rows of these workflows that the harness never got a run_id for (cut-off or timed-out requests). */
export async function countRunsOf(sql: Sql, workflowIds: string[]): Promise<number> {
  const [r] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM workflow_instances WHERE workflow_id = ANY(${workflowIds}::uuid[])`;
  return r.n;
}

/** Transactions rolled back and unique violations are not in pg_stat; deadlocks and conflicts are. */
export async function dbStats(sql: Sql): Promise<{ xact_commit: number; xact_rollback: number; deadlocks: number } | null> {
  const [r] = await sql<{ xact_commit: number; xact_rollback: number; deadlocks: number }[]>`
    SELECT xact_commit::float8 AS xact_commit, xact_rollback::float8 AS xact_rollback, deadlocks::float8 AS deadlocks
    FROM pg_stat_database WHERE datname = current_database()`;
  return r ?? null;
}
