import type { Sql } from 'postgres';
import { insertStartedRun, type StartedRun } from './waits.js';

export interface ScheduleRow {
  id: string;
  workflow_id: string;
  workflow_name: string;
  /** started with a name: each tick runs the latest active version; with an id: that version */
  follow_latest: boolean;
  cron: string;
  timezone: string;
  input_data: unknown;
  overlap: 'skip' | 'allow';
  catchup: 'none' | 'latest' | 'all';
  paused: boolean;
  last_tick: Date | null;
  next_tick: Date | null;
  last_run_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export type NewSchedule = Omit<ScheduleRow, 'paused' | 'last_tick' | 'last_run_id' | 'created_at' | 'updated_at'>;

/** What one tick did. */
export interface TickOutcome {
  tick: Date;
  outcome: 'started' | 'skipped';
  run: StartedRun | null;
}

/**
 * Schedules and their ticks. A tick fires once across any number of engine processes: its
 * (schedule, tick) row is unique, written in the transaction that starts its run, so a crash
 * leaves either both or neither (no lock left held).
 */
export class ScheduleRecords {
  constructor(private readonly sql: Sql) {}

  async create(s: NewSchedule): Promise<ScheduleRow> {
    const [row] = await this.sql<ScheduleRow[]>`
      INSERT INTO schedules (id, workflow_id, workflow_name, follow_latest, cron, timezone, input_data, overlap, catchup, next_tick)
      VALUES (${s.id}, ${s.workflow_id}, ${s.workflow_name}, ${s.follow_latest}, ${s.cron}, ${s.timezone},
              ${JSON.stringify(s.input_data ?? {})}::text::jsonb, ${s.overlap}, ${s.catchup}, ${s.next_tick})
      RETURNING *`;
    return row;
  }

  async get(id: string): Promise<ScheduleRow | null> {
    const [row] = await this.sql<ScheduleRow[]>`SELECT * FROM schedules WHERE id = ${id}`;
    return row ?? null;
  }

  async list(limit: number, workflowName?: string): Promise<ScheduleRow[]> {
    const sql = this.sql;
    return sql<ScheduleRow[]>`
      SELECT * FROM schedules ${workflowName ? sql`WHERE workflow_name = ${workflowName}` : sql``}
      ORDER BY created_at DESC LIMIT ${limit}`;
  }

  async remove(id: string): Promise<boolean> {
    return (await this.sql`DELETE FROM schedules WHERE id = ${id} RETURNING 1`).length > 0;
  }

  /** Pauses, or resumes with the next tick from now (`next`). */
  async setPaused(id: string, paused: boolean, next: Date | null): Promise<ScheduleRow | null> {
    const [row] = await this.sql<ScheduleRow[]>`
      UPDATE schedules SET paused = ${paused}, next_tick = CASE WHEN ${paused} THEN next_tick ELSE ${next} END, updated_at = now()
      WHERE id = ${id} RETURNING *`;
    return row ?? null;
  }

  /** The ticks a schedule has fired, newest first. */
  async ticks(id: string, limit: number) {
    return this.sql<{ tick: Date; run_id: string | null; outcome: string; created_at: Date }[]>`
      SELECT tick, run_id::text, outcome, created_at FROM schedule_ticks WHERE schedule_id = ${id} ORDER BY tick DESC LIMIT ${limit}`;
  }

  async due(limit: number): Promise<ScheduleRow[]> {
    return this.sql<ScheduleRow[]>`
      SELECT * FROM schedules WHERE NOT paused AND next_tick <= now() ORDER BY next_tick LIMIT ${limit}`;
  }

  /**
   * Fires `ticks` of a schedule (as its engine read it: `expected` is the next_tick it saw) and
   * moves it to `next`. Another engine doing the same at the same moment finds the row locked
   * or moved on, and does nothing. `runFor(tick)` names the run a tick starts.
   */
  async fire(s: ScheduleRow, ticks: Date[], next: Date | null, runFor: (tick: Date) => StartedRun): Promise<TickOutcome[]> {
    return this.sql.begin(async (tx) => {
      const [row] = await tx<{ last_run_id: string | null }[]>`
        SELECT last_run_id::text FROM schedules WHERE id = ${s.id} AND next_tick = ${s.next_tick} AND NOT paused FOR UPDATE SKIP LOCKED`;
      if (!row) return [];
      let last = row.last_run_id;
      const out: TickOutcome[] = [];
      for (const tick of ticks) {
        let skip = false;
        if (s.overlap === 'skip' && last) {
          const [prev] = await tx<{ status: string }[]>`SELECT status FROM workflow_instances WHERE id = ${last}`;
          skip = !!prev && !['completed', 'failed', 'cancelled'].includes(prev.status);
        }
        const run = skip ? null : runFor(tick);
        const [fresh] = await tx`
          INSERT INTO schedule_ticks (schedule_id, tick, run_id, outcome) VALUES (${s.id}, ${tick}, ${run?.runId ?? null}, ${skip ? 'skipped' : 'started'})
          ON CONFLICT DO NOTHING RETURNING 1`;
        if (!fresh) continue;
        if (run && (await insertStartedRun(tx, run))) last = run.runId;
        out.push({ tick, outcome: skip ? 'skipped' : 'started', run });
      }
      await tx`
        UPDATE schedules SET next_tick = ${next}, last_tick = COALESCE(${ticks.at(-1) ?? null}, last_tick), last_run_id = ${last}, updated_at = now()
        WHERE id = ${s.id}`;
      return out;
    });
  }
}
