import type { Sql } from 'postgres';
import type { InstanceRow, StepRow } from './rows.js';

export interface RunRecord extends InstanceRow {
  created_at: Date;
  updated_at: Date;
}
export interface StepRecord extends StepRow {
  id: string;
  created_at: Date;
  updated_at: Date;
}

export async function getRun(sql: Sql, id: string): Promise<RunRecord | null> {
  const rows = await sql<RunRecord[]>`SELECT * FROM workflow_instances WHERE id = ${id}`;
  return rows[0] ?? null;
}

export async function getRunSteps(sql: Sql, runId: string): Promise<StepRecord[]> {
  return sql<StepRecord[]>`
    SELECT * FROM workflow_steps WHERE instance_id = ${runId}
    ORDER BY step_index, started_at`;
}

/** What a resumed run needs: its row's status and its completed steps' outputs. */
export async function getRunProgress(sql: Sql, runId: string) {
  const [run, steps] = await Promise.all([
    sql<{ status: string }[]>`SELECT status FROM workflow_instances WHERE id = ${runId}`,
    sql<{ step_name: string; output_data: unknown }[]>`
      SELECT step_name, output_data FROM workflow_steps
      WHERE instance_id = ${runId} AND status = 'completed'`,
  ]);
  return { run: run[0] ?? null, completed: steps };
}

export interface RunListQuery {
  limit: number;
  status?: string;
  workflow_id?: string;
  before?: string;
}

/** Newest first; run ids are UUIDv7, so id order is acceptance order. */
export async function listRuns(sql: Sql, q: RunListQuery): Promise<RunRecord[]> {
  return sql<RunRecord[]>`
    SELECT id, workflow_id, workflow_name, workflow_version, status, error_code, error_message,
           started_at, completed_at, accepted_at, created_at, updated_at, deliveries
    FROM workflow_instances
    WHERE true
      ${q.status ? sql`AND status = ${q.status}` : sql``}
      ${q.workflow_id ? sql`AND workflow_id = ${q.workflow_id}` : sql``}
      ${q.before ? sql`AND id < ${q.before}` : sql``}
    ORDER BY id DESC
    LIMIT ${q.limit}`;
}
