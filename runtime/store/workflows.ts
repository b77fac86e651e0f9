import type { Sql } from 'postgres';
import type { WorkflowRow } from './rows.js';

export interface NewWorkflow {
  id: string;
  name: string;
  description: string | null;
  definition: unknown;
  version: string;
  created_by: string | null;
}

export interface WorkflowListQuery {
  limit: number;
  name?: string;
  status?: string;
  /** id of the last row of the previous page (ids are UUIDv7, so time-ordered) */
  before?: string;
}

/** The `workflows` table: versions of workflow definitions. */
export class WorkflowRecords {
  constructor(private readonly sql: Sql) {}

  /** Inserts a workflow version; returns null when (name, version) already exists. */
  async insert(w: NewWorkflow): Promise<WorkflowRow | null> {
    const rows = await this.sql<WorkflowRow[]>`
      INSERT INTO workflows (id, name, description, definition, version, created_by, updated_by)
      VALUES (${w.id}, ${w.name}, ${w.description}, ${this.sql.json(w.definition as never)}, ${w.version}, ${w.created_by}, ${w.created_by})
      ON CONFLICT (name, version) DO NOTHING
      RETURNING *`;
    return rows[0] ?? null;
  }

  async byId(id: string): Promise<WorkflowRow | null> {
    const rows = await this.sql<WorkflowRow[]>`SELECT * FROM workflows WHERE id = ${id}`;
    return rows[0] ?? null;
  }

  /** The latest active version of a workflow by name (most recently created). */
  async latestByName(name: string): Promise<WorkflowRow | null> {
    const rows = await this.sql<WorkflowRow[]>`
      SELECT * FROM workflows WHERE name = ${name} AND status = 'active'
      ORDER BY created_at DESC, id DESC LIMIT 1`;
    return rows[0] ?? null;
  }

  async byNameVersion(name: string, version: string): Promise<WorkflowRow | null> {
    const rows = await this.sql<WorkflowRow[]>`SELECT * FROM workflows WHERE name = ${name} AND version = ${version}`;
    return rows[0] ?? null;
  }

  /** Newest first. */
  async list(q: WorkflowListQuery): Promise<WorkflowRow[]> {
    const sql = this.sql;
    return sql<WorkflowRow[]>`
      SELECT * FROM workflows
      WHERE true
        ${q.name ? sql`AND name = ${q.name}` : sql``}
        ${q.status ? sql`AND status = ${q.status}` : sql``}
        ${q.before ? sql`AND (created_at, id) < (SELECT created_at, id FROM workflows WHERE id = ${q.before})` : sql``}
      ORDER BY created_at DESC, id DESC
      LIMIT ${q.limit}`;
  }

  async setStatus(id: string, status: string, by: string | null): Promise<WorkflowRow | null> {
    const rows = await this.sql<WorkflowRow[]>`
      UPDATE workflows SET status = ${status}, updated_at = now(), updated_by = ${by}
      WHERE id = ${id} RETURNING *`;
    return rows[0] ?? null;
  }
}
