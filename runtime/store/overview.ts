import type { Sql } from 'postgres';
import type { RunStatus } from './rows.js';
import { uuidv7Floor } from './runs.js';

/** Contiguous time buckets: `starts[i]` to `starts[i + 1]`, the last one ending at `end`. */
export interface Buckets {
  starts: Date[];
  end: Date;
}

/** Runs counted in one bucket (0-based index into `Buckets.starts`). */
export interface BucketCount {
  bucket: number;
  n: number;
}

export interface EndedCount extends BucketCount {
  status: Extract<RunStatus, 'completed' | 'failed' | 'cancelled'>;
}

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** how many durations they were computed over */
  samples: number;
}

/** Durations are taken over the latest runs that ended in the window, not all of them: the cost stays flat with the rate. */
export const RUN_SAMPLE = 5000;
/** ... and over the steps of the latest this many of those runs */
export const STEP_SAMPLE_RUNS = 1000;

/**
 * Step types whose rows span other work or time spent waiting (control-flow nodes, durable
 * waits, child runs): left out of the step durations, which describe the work steps do.
 */
const NOT_WORK = ['parallel', 'map', 'choice', 'sleep', 'wait_for_signal', 'wait_for_event', 'workflow'];

/**
 * The aggregate reads behind GET /api/v1/overview, each bounded by the window so they cost what
 * the window holds, not what the tables hold: acceptance by primary key (run ids are UUIDv7),
 * ends by `idx_workflow_instances_ended`, current states by the status index.
 */
export class OverviewRecords {
  constructor(private readonly sql: Sql) {}

  /** Runs accepted in each bucket (a run's id holds its acceptance time), as recorded so far. */
  async accepted(b: Buckets): Promise<BucketCount[]> {
    const floors = b.starts.map((t) => uuidv7Floor(t.getTime()));
    const rows = await this.sql<{ b: number; n: number }[]>`
      SELECT width_bucket(id, ${floors}::uuid[]) AS b, count(*)::int AS n
      FROM workflow_instances
      WHERE id >= ${floors[0]}::uuid AND id < ${uuidv7Floor(b.end.getTime())}::uuid
      GROUP BY 1`;
    return rows.map((r) => ({ bucket: r.b - 1, n: r.n }));
  }

  /** Runs that ended in each bucket, by final status. */
  async ended(b: Buckets): Promise<EndedCount[]> {
    const rows = await this.sql<{ b: number; status: EndedCount['status']; n: number }[]>`
      SELECT width_bucket(completed_at, ${b.starts.map((t) => t.toISOString())}::timestamptz[]) AS b, status, count(*)::int AS n
      FROM workflow_instances
      WHERE completed_at >= ${b.starts[0]} AND completed_at < ${b.end} AND status IN ('completed', 'failed', 'cancelled')
      GROUP BY 1, 2`;
    return rows.map((r) => ({ bucket: r.b - 1, status: r.status, n: r.n }));
  }

  /**
   * Percentiles of the durations (started to ended, ms) of the latest RUN_SAMPLE runs that
   * completed or failed in [from, to), and of the work steps of the latest STEP_SAMPLE_RUNS of
   * them that ended in that time. One statement. (`date_part` is float8, `extract` numeric: half the cost.)
   */
  async durations(from: Date, to: Date): Promise<{ runs: Percentiles; steps: Percentiles }> {
    const [r] = await this.sql<{ run_n: number; run_p: number[] | null; step_n: number; step_p: number[] | null }[]>`
      WITH recent AS (
        SELECT id, started_at, completed_at FROM workflow_instances
        WHERE completed_at >= ${from} AND completed_at < ${to} AND status IN ('completed', 'failed') AND started_at IS NOT NULL
        ORDER BY completed_at DESC LIMIT ${RUN_SAMPLE}
      ), runs AS (
        SELECT count(*)::int AS n,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY date_part('epoch', completed_at - started_at) * 1000) AS p
        FROM recent
      ), steps AS (
        SELECT count(*)::int AS n,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY date_part('epoch', s.completed_at - s.started_at) * 1000) AS p
        FROM (SELECT id FROM recent LIMIT ${STEP_SAMPLE_RUNS}) latest
        JOIN workflow_steps s ON s.instance_id = latest.id
        WHERE s.status IN ('completed', 'failed') AND s.started_at IS NOT NULL
          AND s.completed_at >= ${from} AND s.completed_at < ${to} AND s.step_type <> ALL (${NOT_WORK}::text[])
      )
      SELECT runs.n AS run_n, runs.p AS run_p, steps.n AS step_n, steps.p AS step_p FROM runs, steps`;
    return { runs: percentiles(r.run_n, r.run_p), steps: percentiles(r.step_n, r.step_p) };
  }

  /** Runs recorded as queued, running or waiting now. */
  async current(): Promise<Record<'queued' | 'running' | 'waiting', number>> {
    const rows = await this.sql<{ status: 'queued' | 'running' | 'waiting'; n: number }[]>`
      SELECT status, count(*)::int AS n FROM workflow_instances WHERE status IN ('queued', 'running', 'waiting') GROUP BY 1`;
    const out = { queued: 0, running: 0, waiting: 0 };
    for (const r of rows) out[r.status] = r.n;
    return out;
  }
}

function percentiles(n: number, p: number[] | null): Percentiles {
  const at = (i: number) => (p && p[i] !== null && p[i] !== undefined ? Math.round(p[i] * 10) / 10 : null);
  return { p50: at(0), p95: at(1), p99: at(2), samples: n };
}
