import type { Sql } from 'postgres';
import type { Logger, Metrics } from '../observability/index.js';
import type { InstanceRow, StepRow } from './rows.js';
import { findUnstorable, storableText } from './storable.js';

/** A run's row in the postgres queue at one delivery (the queue port's QueueEntry). */
export interface QueueRow {
  readonly id: string;
  readonly delivery: number;
}

/** A step row's key in a batch: its run and its recorded name (NUL cannot occur in either). */
const stepKey = (row: StepRow) => `${row.instance_id}\u0000${row.step_name}`;
/** The key a row's writer waits on: the run id, or the step's key. */
const rowKey = (row: Row): string => ('workflow_id' in row ? row.id : stepKey(row));

export interface BatchWriterOptions {
  batchSize: number;
  flushIntervalMs: number;
  shards: number;
}

interface Waiter {
  key: string;
  resolve: (stored: Row | undefined) => void;
  reject: (err: Error) => void;
}

/** A run whose rows Postgres refused even without payloads: its write rejects, so it is never acked. */
export class RowsRefusedError extends Error {}

type Row = InstanceRow | StepRow;

/**
 * Writes run and step rows in multi-row upserts. Rows are routed to a shard by
 * run id, so one run's rows are always written in order (instance before its
 * steps, which the foreign key needs) while shards flush concurrently. Within
 * a pending batch, later rows for the same run or step replace earlier ones.
 * Every enqueue returns a promise that settles once its row is committed:
 * callers ack the run's queue message only after that.
 */
export class BatchWriter {
  private readonly shards: Shard[];
  constructor(sql: Sql, opts: BatchWriterOptions, log: Logger, metrics?: Metrics) {
    this.shards = Array.from({ length: opts.shards }, () => new Shard(sql, opts, log, metrics));
  }

  /**
   * Resolves once the row is committed: with nothing when it was stored as
   * given, or with the row as stored: without its payloads when Postgres
   * refused them (status failed, E_STORE_REJECTED), or with a text cut to its
   * column or a character it cannot hold replaced by U+FFFD.
   */
  writeRun(row: InstanceRow, opts?: { dequeue?: QueueRow }): Promise<InstanceRow | undefined> {
    return this.shardOf(row.id).add(row.id, row, null, opts?.dequeue) as Promise<InstanceRow | undefined>;
  }

  writeStep(row: StepRow): Promise<StepRow | undefined> {
    return this.shardOf(row.instance_id).add(stepKey(row), null, row) as Promise<StepRow | undefined>;
  }

  /**
   * Flushes what is pending and takes nothing more: a row written after (a run handed back at
   * shutdown, still running here) is refused, so this process records nothing for a run that
   * another executor now owns.
   */
  async close(): Promise<void> {
    for (const s of this.shards) s.closing = true;
    await Promise.all(this.shards.map((s) => s.drain()));
  }

  private shardOf(runId: string): Shard {
    if (this.shards.length === 1) return this.shards[0];
    // the random tail of a UUIDv7 spreads runs evenly
    return this.shards[parseInt(runId.slice(-4), 16) % this.shards.length];
  }
}

class Shard {
  private runs = new Map<string, InstanceRow>();
  private steps = new Map<string, StepRow>();
  /** run id → its row in run_queue, deleted in the statement that writes the run (postgres queue) */
  private dequeues = new Map<string, QueueRow>();
  private waiters: Waiter[] = [];
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly opts: BatchWriterOptions,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {}

  /** set by BatchWriter.close: rows from now on are refused */
  closing = false;

  add(key: string, run: InstanceRow | null, step: StepRow | null, dequeue?: QueueRow): Promise<Row | undefined> {
    if (this.closing) return Promise.reject(new Error('the batch writer is closed: this process is stopping'));
    if (!this.runs.size && !this.steps.size) this.firstAt = performance.now();
    if (run) this.runs.set(key, run);
    if (dequeue) this.dequeues.set(key, dequeue);
    if (step) this.steps.set(key, step);
    const p = new Promise<Row | undefined>((resolve, reject) => this.waiters.push({ key, resolve, reject }));
    // a full batch goes at once; otherwise a loop that is not running yet starts by waiting out the interval
    if (this.runs.size + this.steps.size >= this.opts.batchSize) this.kick();
    else this.flushing ??= this.flushLoop();
    return p;
  }

  /** when the first row of the pending batch arrived (performance.now()) */
  private firstAt = 0;

  async drain(): Promise<void> {
    while (this.flushing || this.runs.size || this.steps.size) {
      if (this.flushing) {
        this.endLinger();
        await this.flushing;
      } else this.kick();
    }
  }

  /** Flushes what is pending now: a loop waiting out the interval stops waiting, or one starts. */
  private kick(): void {
    if (this.flushing) return this.endLinger();
    this.flushing = this.flushLoop();
  }

  /** the flush loop waiting out a batch's interval, and how to wake it early */
  private lingering: { timer: NodeJS.Timeout; resolve: () => void } | null = null;

  private endLinger(): void {
    const l = this.lingering;
    if (!l) return;
    this.lingering = null;
    clearTimeout(l.timer);
    l.resolve();
  }

  /**
   * Flushes batches while rows keep arriving. A batch goes when it is full or when its first
   * row has waited `flushIntervalMs`, also right after another flush: rows that arrived during
   * a flush wait out the rest of their interval, so at a steady rate a statement carries about
   * rate × interval runs instead of whatever arrived during the last round trip. `flushing` is
   * cleared in the same synchronous stretch as the last emptiness check, so a row added by a
   * waiter's continuation always finds either a running loop that will see it or no loop (and
   * starts one).
   */
  private async flushLoop(): Promise<void> {
    try {
      while (this.runs.size || this.steps.size) {
        const wait = this.firstAt + this.opts.flushIntervalMs - performance.now();
        if (wait >= 1 && !this.closing && this.runs.size + this.steps.size < this.opts.batchSize) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => this.endLinger(), wait);
            this.lingering = { timer, resolve };
          });
          continue;
        }
        const runs = [...this.runs.values()];
        const steps = [...this.steps.values()];
        const dequeues = this.dequeues;
        const waiters = this.waiters;
        this.runs = new Map();
        this.steps = new Map();
        this.dequeues = new Map();
        this.waiters = [];
        const replaced = await this.flushWithRetry(runs, steps, dequeues);
        for (const w of waiters) {
          const r = replaced?.get(w.key);
          if (r === REFUSED) w.reject(new RowsRefusedError(`Postgres refused the rows of ${w.key}`));
          else w.resolve(r);
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  /** Resolves with the rows that had to be stored differently, by key (see `storable`). */
  private async flushWithRetry(
    runs: InstanceRow[],
    steps: StepRow[],
    dequeues: ReadonlyMap<string, QueueRow>,
  ): Promise<Map<string, Row | typeof REFUSED> | null> {
    const replaced = new Map<string, Row | typeof REFUSED>();
    const okRuns = runs.map((r) => storable(r, replaced, this.log));
    const okSteps = steps.map((st) => storable(st, replaced, this.log));
    for (let attempt = 0; ; attempt++) {
      const t0 = performance.now();
      try {
        await writeBatch(this.sql, okRuns, okSteps, [...dequeues.values()]);
        this.metrics?.batchSize.observe(runs.length + steps.length);
        this.metrics?.flushDuration.observe((performance.now() - t0) / 1000);
        return replaced.size ? replaced : null;
      } catch (err) {
        let failure = err;
        this.metrics?.flushErrors.inc();
        if (isDataError(err)) {
          // a data error no check foresaw: write each run (with its steps) alone, so one bad run blocks nothing else
          this.log.error({ err }, 'batch refused by Postgres; writing its runs one by one');
          try {
            await writeRunByRun(this.sql, okRuns, okSteps, dequeues, replaced, this.log);
            return replaced.size ? replaced : null;
          } catch (e) {
            failure = e; // a connection error on the way: retry the whole batch (upserts are idempotent)
          }
        }
        const delay = Math.min(5000, 50 * 2 ** attempt);
        this.log.error({ err: failure, attempt, delay, rows: runs.length + steps.length }, 'batch flush failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}

/**
 * One statement for the whole batch: the run rows in a data-modifying CTE,
 * then the step rows. A statement is atomic, so a crash can never leave a run
 * recorded completed while its last steps are not (the resume logic trusts a
 * completed run row), and the step rows' foreign keys see the run rows. With
 * the postgres queue, the runs that end here leave the queue in the same
 * statement: their record and their ack are one atomic step.
 */
async function writeBatch(sql: Sql, runs: InstanceRow[], steps: StepRow[], dequeue: QueueRow[]): Promise<void> {
  if (dequeue.length) {
    // fenced by the delivery: a run another executor took over since (its lease ended) stays queued
    await sql`
      WITH r AS (${runUpsert(sql, runs)} RETURNING 1),
           q AS (DELETE FROM run_queue USING unnest(${dequeue.map((d) => d.id)}::bigint[], ${dequeue.map((d) => d.delivery)}::int[]) AS d(id, delivery)
                 WHERE run_queue.id = d.id AND run_queue.deliveries = d.delivery)
      ${stepUpsert(sql, steps)}`;
  } else {
    await sql`WITH r AS (${runUpsert(sql, runs)} RETURNING 1) ${stepUpsert(sql, steps)}`;
  }
}

/**
 * Text columns whose text comes from what a step threw or was waiting for, or from the host
 * (run and step rows), with the column widths of those that have one.
 */
const FREE_TEXT = [
  ['error_message', Infinity],
  ['error_code', 64],
  ['error_stack', Infinity],
  ['waiting_for', Infinity],
  ['executor_host', 255],
] as const;

/**
 * A batch's rows as the statement's one JSON parameter. What JSON.stringify throws on (a value
 * the checks above did not foresee, a batch past V8's longest string) is a data error of these
 * rows, not a fault of the connection: thrown as one (SQLSTATE class 22) so that the batch is
 * written run by run and a refused run is stored bare, instead of retried for ever.
 */
function rowsJson(rows: readonly Row[]): string {
  try {
    return JSON.stringify(rows);
  } catch (err) {
    throw Object.assign(new Error(`the rows cannot be written as JSON: ${(err as Error).message}`), { code: '22000' });
  }
}

/**
 * Makes a row one Postgres will take: codes and names are cut to their column
 * widths, a NUL or a lone surrogate in their text becomes U+FFFD, and a payload
 * Postgres cannot store (a NUL character in JSON text)
 * is replaced by an explanation, the run marked failed with E_STORE_REJECTED.
 * The replacement is recorded so the caller reports what was really stored.
 */
function storable<R extends Row>(row: R, replaced: Map<string, Row | typeof REFUSED>, log: Logger): R {
  const isRun = 'workflow_id' in row;
  const payloads = isRun ? [row.input_data, row.output_data] : [row.input_data, row.output_data, 'logs' in row ? row.logs : null];
  let out: R = row;
  // copied only when a text must be cut or a character replaced (most rows go as they are);
  // cut first, so that a pair split by the cut is replaced too
  for (const [k, width] of FREE_TEXT) {
    const v = (row as unknown as Record<string, unknown>)[k];
    if (typeof v !== 'string') continue;
    const safe = storableText(v.length > width ? v.slice(0, width) : v);
    if (safe !== v) out = { ...out, [k]: safe };
  }
  const found = payloads.map((v) => findUnstorable(v)).find((f) => f !== null);
  if (!found) {
    // a text cut or a character replaced: the writer answers with the row as stored
    if (out !== row) replaced.set(rowKey(row), out);
    return out;
  }
  const why = `its data holds ${found.what}, which PostgreSQL cannot store in JSON`;
  if (isRun) {
    const r = out as InstanceRow;
    log.error({ run_id: r.id }, 'run data cannot be stored; storing the run without payloads');
    out = bareRun(r, `the run's ${why}`, false) as R;
    replaced.set(r.id, out);
  } else {
    const st = out as StepRow;
    log.error({ run_id: st.instance_id, step: st.step_name }, 'step data cannot be stored; storing the step without payloads');
    out = bareStep(st, `the step's ${why}`) as R;
    replaced.set(stepKey(st), out);
  }
  return out;
}

/**
 * Last resort after a data error no check foresaw: each run with its steps in
 * its own statement; a refused run is stored without payloads, failed with
 * E_STORE_REJECTED, so that it is never acked without a record.
 */
async function writeRunByRun(
  sql: Sql,
  runs: InstanceRow[],
  steps: StepRow[],
  dequeues: ReadonlyMap<string, QueueRow>,
  replaced: Map<string, Row | typeof REFUSED>,
  log: Logger,
): Promise<void> {
  const groups = new Map<string, [InstanceRow[], StepRow[]]>();
  for (const r of runs) groups.set(r.id, [[r], []]);
  for (const st of steps) {
    const g = groups.get(st.instance_id) ?? [[], []];
    g[1].push(st);
    groups.set(st.instance_id, g);
  }
  for (const [id, [rs, sts]] of groups) {
    const dq = dequeues.has(id) ? [dequeues.get(id)!] : [];
    try {
      await writeBatch(sql, rs, sts, dq);
      continue;
    } catch (err) {
      if (!isDataError(err)) throw err; // the connection, not the data: the whole batch is retried
      log.error({ err, run_id: id }, "Postgres refused this run's rows; storing them without payloads");
      const fk = (err as { code?: string }).code === '23503';
      const why = `Postgres refused the data: ${(err as Error).message}`;
      const bare = rs.map((r) => bareRun(r, why, fk));
      const bareSteps = sts.map((st) => bareStep(st, why));
      try {
        await writeBatch(sql, bare, bareSteps, dq);
        for (const r of bare) replaced.set(r.id, r);
        for (const st of bareSteps) replaced.set(stepKey(st), st);
      } catch (again) {
        if (!isDataError(again)) throw again;
        // retrying cannot help and must not block the runs behind it; the run's write rejects,
        // so its message is not acked (redelivered, in the end dead-lettered by the engine)
        log.error({ err: again, run_id: id }, "Postgres refused this run's rows even without payloads");
        for (const r of rs) replaced.set(r.id, REFUSED);
      }
    }
  }
}

const REFUSED = Symbol('refused');

function isDataError(err: unknown): boolean {
  return /^2[23]/.test((err as { code?: string })?.code ?? '');
}

/** A run row without its payloads, failed with E_STORE_REJECTED (and without its workflow when that was refused). */
function bareRun(r: InstanceRow, why: string, dropWorkflow: boolean): InstanceRow {
  return {
    ...r,
    input_data: null,
    output_data: null,
    status: r.status === 'completed' ? 'failed' : r.status,
    workflow_id: dropWorkflow ? null : r.workflow_id,
    error_code: r.error_code ?? 'E_STORE_REJECTED',
    error_message: r.error_message ?? why,
  };
}

function bareStep(st: StepRow, why: string): StepRow {
  return {
    ...st,
    input_data: null,
    output_data: null,
    logs: null,
    error_code: st.error_code ?? 'E_STORE_REJECTED',
    error_message: st.error_message ?? why,
  };
}

/**
 * Multi-row upserts from one JSON parameter per table (`json_to_recordset`): the rows are the
 * runtime's row objects, whose fields are the columns, so a batch is one JSON.stringify (payloads
 * nested as they are, Dates as ISO text) instead of an array literal per column with every
 * element escaped, which had been the largest part of the writer's CPU. The statement text is
 * the same for every batch size, so Postgres parses and plans it once per connection. Final
 * states are never overwritten, so a late duplicate write cannot undo a finished run.
 */
function runUpsert(sql: Sql, rows: InstanceRow[]) {
  return sql`
    INSERT INTO workflow_instances (id, workflow_id, workflow_name, workflow_version, status, input_data, output_data,
      error_message, error_code, started_at, completed_at, accepted_at, deliveries, executor_host, parent_run_id)
    SELECT * FROM json_to_recordset(${rowsJson(rows)}::text::json) AS r(
      id uuid, workflow_id uuid, workflow_name text, workflow_version text, status text, input_data jsonb, output_data jsonb,
      error_message text, error_code text, started_at timestamptz, completed_at timestamptz, accepted_at timestamptz,
      deliveries int, executor_host text, parent_run_id uuid)
    ON CONFLICT (id) DO UPDATE SET
      status = EXCLUDED.status,
      output_data = EXCLUDED.output_data,
      error_message = EXCLUDED.error_message,
      error_code = EXCLUDED.error_code,
      started_at = COALESCE(workflow_instances.started_at, EXCLUDED.started_at),
      completed_at = EXCLUDED.completed_at,
      deliveries = GREATEST(workflow_instances.deliveries, EXCLUDED.deliveries),
      executor_host = EXCLUDED.executor_host,
      updated_at = now()
    WHERE workflow_instances.status NOT IN ('completed', 'failed', 'cancelled')`;
}

function stepUpsert(sql: Sql, rows: StepRow[]) {
  return sql`
    INSERT INTO workflow_steps (instance_id, step_name, step_index, step_type, status, input_data, output_data,
      error_message, error_code, retry_count, started_at, completed_at, logs, wake_at, waiting_for, error_stack)
    SELECT * FROM json_to_recordset(${rowsJson(rows)}::text::json) AS s(
      instance_id uuid, step_name text, step_index int, step_type text, status text, input_data jsonb, output_data jsonb,
      error_message text, error_code text, retry_count int, started_at timestamptz, completed_at timestamptz, logs jsonb,
      wake_at timestamptz, waiting_for text, error_stack text)
    ON CONFLICT (instance_id, step_name) DO UPDATE SET
      status = EXCLUDED.status,
      input_data = EXCLUDED.input_data,
      output_data = EXCLUDED.output_data,
      error_message = EXCLUDED.error_message,
      error_code = EXCLUDED.error_code,
      retry_count = EXCLUDED.retry_count,
      started_at = COALESCE(workflow_steps.started_at, EXCLUDED.started_at),
      completed_at = EXCLUDED.completed_at,
      logs = EXCLUDED.logs,
      wake_at = EXCLUDED.wake_at,
      waiting_for = EXCLUDED.waiting_for,
      error_stack = EXCLUDED.error_stack,
      updated_at = now()
    WHERE workflow_steps.status <> 'completed'`;
}
