import type { Sql } from 'postgres';

/** What an executor process says of itself on each beat. */
export interface ExecutorBeat {
  /** unique per start of a process */
  id: string;
  host: string;
  pid: number;
  started_at: Date;
  /** runs it may drive at once (executor.max_concurrent_workflows) */
  slots: number;
  /** runs it drives now */
  in_flight: number;
  /** worker threads of its pools */
  threads: number;
  /** share of the time since the last beat its threads were busy, 0..1 */
  utilization: number;
}

export interface ExecutorRow extends ExecutorBeat {
  /** the database's clock at the last beat */
  last_seen: Date;
}

/** How often an executor beats. */
export const EXECUTOR_BEAT_MS = 5000;
/** An executor not seen for this long is not listed (it died, or cannot reach the database). */
export const EXECUTOR_LIVE_MS = 30_000;
/** Rows of processes gone this long (killed, not stopped) are deleted by the next beat of any executor. */
const FORGET_AFTER_S = 600;

/**
 * The executor registry: a row per live executor process, so that any API process can list the
 * executors of the whole cluster (GET /api/v1/overview). Times are the database's, so hosts'
 * clocks do not matter. One small statement per executor every few seconds.
 */
export class ExecutorRecords {
  constructor(private readonly sql: Sql) {}

  /** Records a beat, and forgets executors that stopped beating long ago. */
  async beat(b: ExecutorBeat): Promise<void> {
    await this.sql`
      WITH gone AS (DELETE FROM executors WHERE last_seen < now() - ${FORGET_AFTER_S} * interval '1 second' AND id <> ${b.id})
      INSERT INTO executors (id, host, pid, started_at, last_seen, slots, in_flight, threads, utilization)
      VALUES (${b.id}, ${b.host}, ${b.pid}, ${b.started_at}, now(), ${b.slots}, ${b.in_flight}, ${b.threads}, ${b.utilization})
      ON CONFLICT (id) DO UPDATE SET
        last_seen = now(), slots = EXCLUDED.slots, in_flight = EXCLUDED.in_flight,
        threads = EXCLUDED.threads, utilization = EXCLUDED.utilization`;
  }

  /** A clean stop: the executor is gone at once. */
  async remove(id: string): Promise<void> {
    await this.sql`DELETE FROM executors WHERE id = ${id}`;
  }

  /** The executors seen within `maxAgeMs`, by host and start. */
  async live(maxAgeMs: number): Promise<ExecutorRow[]> {
    return this.sql<ExecutorRow[]>`
      SELECT id, host, pid, started_at, last_seen, slots, in_flight, threads, utilization
      FROM executors WHERE last_seen >= now() - ${maxAgeMs} * interval '1 millisecond'
      ORDER BY host, started_at, id`;
  }
}
