import type { Sql } from 'postgres';
import type { InstanceRow, StepRow } from './rows.js';

export interface RunRecord extends InstanceRow {
  created_at: Date;
  updated_at: Date;
  /** times the run was retried with POST /executions/:id/retry */
  redrives?: number;
}
export interface StepRecord extends StepRow {
  id: string;
  /** earlier outcomes of the step, before each redrive */
  history?: unknown[] | null;
  created_at: Date;
  updated_at: Date;
}

export interface RunListQuery {
  limit: number;
  status?: string;
  workflow_id?: string;
  workflow_name?: string;
  before?: string;
  /** accepted at or after */
  from?: Date;
  /** accepted before */
  to?: Date;
}

/** What a resumed run needs: its row's status and its completed steps' outputs. */
export interface RunProgress {
  run: { status: string; drive: number } | null;
  completed: { step_name: string; output_data: unknown }[];
}

/** Reads of run and step records (writes go through the BatchWriter). */
export class RunRecords {
  constructor(private readonly sql: Sql) {}

  async get(id: string): Promise<RunRecord | null> {
    const rows = await this.sql<RunRecord[]>`SELECT * FROM workflow_instances WHERE id = ${id}`;
    return rows[0] ?? null;
  }

  async steps(runId: string): Promise<StepRecord[]> {
    return this.sql<StepRecord[]>`
      SELECT * FROM workflow_steps WHERE instance_id = ${runId}
      ORDER BY step_index, started_at`;
  }

  async progress(runId: string): Promise<RunProgress> {
    const [run, steps] = await Promise.all([
      this.sql<{ status: string; drive: number }[]>`SELECT status, drive FROM workflow_instances WHERE id = ${runId}`,
      this.sql<{ step_name: string; output_data: unknown }[]>`
        SELECT step_name, output_data FROM workflow_steps
        WHERE instance_id = ${runId} AND status = 'completed'`,
    ]);
    return { run: run[0] ?? null, completed: steps };
  }

  /**
   * The rows of these runs and their steps written since the mark `since` (all of them without
   * it), and the mark to pass next time: what live listeners hear (api/run-events.ts). Three
   * small statements; a row may come twice (the caller drops what it has seen), never not at all.
   */
  async changedSince(ids: string[], since: bigint | null): Promise<{ mark: bigint; runs: RunRecord[]; steps: StepRecord[] }> {
    const sql = this.sql;
    // The mark is the oldest transaction still running now: every row a later read could newly
    // see was written by it or a later one, so the next read takes rows whose xmin is at least
    // this. A timestamp cannot do that: now() is a transaction's start, and one that commits
    // long after it (a lock wait under load) would land behind the watermark and be missed.
    const [{ x }] = await sql<{ x: string }[]>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x`;
    const mark = BigInt(x);
    // rows carry 32-bit xids; across a wraparound (once per 4 billion transactions) read everything once
    const low = since === null || mark % XID_SPACE < since % XID_SPACE ? null : Number(since % XID_SPACE);
    const [runs, steps] = await Promise.all([
      sql<RunRecord[]>`
        SELECT * FROM workflow_instances
        WHERE id = ANY(${ids}::uuid[]) ${low !== null ? sql`AND xmin::text::bigint >= ${low}` : sql``}`,
      sql<StepRecord[]>`
        SELECT * FROM workflow_steps
        WHERE instance_id = ANY(${ids}::uuid[]) ${low !== null ? sql`AND xmin::text::bigint >= ${low}` : sql``}
        ORDER BY step_index, started_at`,
    ]);
    return { mark, runs, steps };
  }

  /** Newest first; run ids are UUIDv7, so id order is acceptance order. */
  async list(q: RunListQuery): Promise<RunRecord[]> {
    const sql = this.sql;
    return sql<RunRecord[]>`
      SELECT id, workflow_id, workflow_name, workflow_version, status, error_code, error_message,
             started_at, completed_at, accepted_at, created_at, updated_at, deliveries, parent_run_id, redrives
      FROM workflow_instances
      WHERE true
        ${q.status ? sql`AND status = ${q.status}` : sql``}
        ${q.workflow_id ? sql`AND workflow_id = ${q.workflow_id}` : sql``}
        ${q.workflow_name ? sql`AND workflow_id IN (SELECT id FROM workflows WHERE name = ${q.workflow_name})` : sql``}
        ${q.before ? sql`AND id < ${q.before}` : sql``}
        ${q.from ? sql`AND id >= ${uuidv7Floor(q.from.getTime())}::uuid` : sql``}
        ${q.to ? sql`AND id < ${uuidv7Floor(q.to.getTime())}::uuid` : sql``}
      ORDER BY id DESC
      LIMIT ${q.limit}`;
  }
}

/** Row xids are 32 bits (the epoch is not stored with the row). */
const XID_SPACE = 2n ** 32n;

/** The smallest UUIDv7 of a millisecond: run ids below it were accepted before that time. */
export function uuidv7Floor(ms: number): string {
  const t = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7000-8000-000000000000`;
}

/**
 * Deletes up to `limit` runs in `status` accepted before `before` (run ids are UUIDv7: time
 * ordered), with their steps, waits, signals and outbox rows, in one statement; rows another pruner holds are skipped.
 * Returns how many runs it deleted.
 */
export async function pruneRuns(sql: Sql, status: string, before: Date, limit: number): Promise<number> {
  const rows = await sql`
    WITH doomed AS (
      SELECT id FROM workflow_instances
      WHERE id < ${uuidv7Floor(before.getTime())}::uuid AND status = ${status}
      ORDER BY id LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ), steps AS (
      DELETE FROM workflow_steps WHERE instance_id IN (SELECT id FROM doomed)
    ), waits AS (
      DELETE FROM run_waits WHERE run_id IN (SELECT id FROM doomed)
    ), signals AS (
      DELETE FROM run_signals WHERE run_id IN (SELECT id FROM doomed)
    ), starts AS (
      DELETE FROM run_starts WHERE run_id IN (SELECT id FROM doomed)
    )
    DELETE FROM workflow_instances WHERE id IN (SELECT id FROM doomed) RETURNING 1`;
  return rows.length;
}

/**
 * Deletes up to `limit` events and up to `limit` schedule ticks received or fired before
 * `before` (an event's dedupe id is forgotten with it). Returns how many rows it deleted.
 */
export async function pruneEventsAndTicks(sql: Sql, before: Date, limit: number): Promise<number> {
  const [{ events, ticks }] = await sql<{ events: number; ticks: number }[]>`
    WITH e AS (
      DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < ${before} ORDER BY received_at LIMIT ${limit}) RETURNING 1
    ), t AS (
      DELETE FROM schedule_ticks WHERE (schedule_id, tick) IN (
        SELECT schedule_id, tick FROM schedule_ticks WHERE created_at < ${before} ORDER BY created_at LIMIT ${limit}) RETURNING 1
    )
    SELECT (SELECT count(*) FROM e)::int AS events, (SELECT count(*) FROM t)::int AS ticks`;
  return events + ticks;
}
