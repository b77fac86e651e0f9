import type { Sql, TransactionSql } from 'postgres';
import type { PlainError } from '../errors/index.js';
import { CANCEL_MEMORY_MS } from './cancels.js';

/**
 * Durable waits: a step that sleeps, waits for a signal, an event or a child run registers a
 * row in run_waits and its step row says `waiting`; the run then holds nothing (no slot, no
 * thread, no queue message) until the wait is resolved. Whoever resolves it first (the engine's
 * timer, a signal, an event, the child's end) does so once (`WHERE resolved_at IS NULL`),
 * records the step's outcome, and, if the run is asleep, queues it again: status `waiting` →
 * `queued`, `drive` + 1. A queue message for a resume names the drive it is for, so a stale
 * or repeated message is told apart (see `claim`).
 *
 * What serialises the writers of one run is an advisory lock on the run id (the run's row may
 * not exist yet when its first step waits), taken in every transaction here; one that also
 * concerns an event name takes the event's lock first (event, then run: never the other way).
 */

export type WaitKind = 'sleep' | 'signal' | 'event' | 'child';

/** How a wait ended: the step's output, or its error. */
export type Resolution = { ok: true; output: unknown } | { ok: false; error: PlainError };

export interface WaitSpec {
  runId: string;
  stepName: string;
  stepIndex: number;
  stepType: string;
  /** the attempt of the step (a step that times out and retries waits again, as a new attempt) */
  attempt: number;
  kind: WaitKind;
  /** the signal's name, the event's name, the child run's id */
  key: string | null;
  /** wait_for_event: the event's data must contain this */
  match?: unknown;
  /** sleep: when it ends; signal, event, child: when it times out (null: never) */
  wakeAt: Date | null;
  input: unknown;
  /** shown on the step while it waits: `signal "approved"` */
  waitingFor: string;
  /** a child run to create with the wait (its queue message goes out after the commit) */
  child?: StartedRun;
}

/** A run the system starts itself (a child run, an event's trigger, a schedule's tick). */
export interface StartedRun {
  runId: string;
  workflowId: string;
  workflowName: string;
  workflowVersion: string;
  input: unknown;
  parentRunId?: string | null;
  /** unique: the same origin never starts a second run (`event:<id>:<workflow>`, `tick:<schedule>:<time>`) */
  origin: string;
}

/** What a registration found: resolved at once (a signal that came first, a sleep already over), or parked. */
export type WaitAnswer = { state: 'resolved'; resolution: Resolution } | { state: 'parked'; waitId: string };

/** A run to queue again, with the drive its message is for. */
export interface Resume {
  runId: string;
  workflowId: string;
  input: unknown;
  acceptedAt: number;
  drive: number;
  replyTo: string | null;
  parentRunId: string | null;
}

const lockRun = (tx: TransactionSql, runId: string) => tx`SELECT pg_advisory_xact_lock(hashtextextended(${'run:' + runId}, 0))`;
const lockEvent = (tx: TransactionSql, name: string) => tx`SELECT pg_advisory_xact_lock(hashtextextended(${'event:' + name}, 0))`;
const json = (v: unknown) => JSON.stringify(v ?? null);

export class WaitRecords {
  constructor(private readonly sql: Sql) {}

  /**
   * Registers a step's wait, or finds the one an earlier drive registered. A signal already
   * received is consumed now; a sleep already over ends now; a child run is created with it.
   * Returns also the runs to publish (the child) after the commit.
   */
  async register(w: WaitSpec): Promise<{ answer: WaitAnswer; started: StartedRun[] }> {
    const started: StartedRun[] = [];
    const answer = await this.sql.begin(async (tx) => {
      if (w.kind === 'event' && w.key) await lockEvent(tx, w.key);
      await lockRun(tx, w.runId);
      const [inserted] = await tx<{ id: string }[]>`
        INSERT INTO run_waits (run_id, step_name, attempt, kind, key, match, payload, wake_at)
        VALUES (${w.runId}, ${w.stepName}, ${w.attempt}, ${w.kind}, ${w.key}, ${w.match === undefined ? null : json(w.match)}::text::jsonb,
                ${w.kind === 'sleep' ? json(w.input) : null}::text::jsonb, ${w.wakeAt})
        ON CONFLICT (run_id, step_name, attempt) DO NOTHING
        RETURNING id::text`;
      if (!inserted) {
        const [prior] = await tx<{ id: string; resolution: Resolution | null }[]>`
          SELECT id::text, resolution FROM run_waits WHERE run_id = ${w.runId} AND step_name = ${w.stepName} AND attempt = ${w.attempt}`;
        return prior?.resolution
          ? { state: 'resolved' as const, resolution: prior.resolution }
          : { state: 'parked' as const, waitId: prior.id };
      }
      let resolution: Resolution | null = null;
      if (w.kind === 'sleep' && (!w.wakeAt || w.wakeAt.getTime() <= Date.now())) resolution = { ok: true, output: w.input };
      if (w.kind === 'signal') {
        const [sig] = await tx<{ body: unknown }[]>`
          UPDATE run_signals SET consumed_by = ${inserted.id}
          WHERE id = (SELECT id FROM run_signals WHERE run_id = ${w.runId} AND name = ${w.key} AND consumed_by IS NULL ORDER BY id LIMIT 1)
          RETURNING body`;
        if (sig) resolution = { ok: true, output: sig.body ?? null };
      }
      if (w.child && (await insertStartedRun(tx, w.child))) started.push(w.child);
      if (resolution) {
        await tx`UPDATE run_waits SET resolved_at = clock_timestamp(), resolution = ${json(resolution)}::text::jsonb WHERE id = ${inserted.id}`;
      }
      await tx`
        INSERT INTO workflow_steps (instance_id, step_name, step_index, step_type, status, input_data, output_data,
          error_message, error_code, retry_count, started_at, completed_at, wake_at, waiting_for)
        VALUES (${w.runId}, ${w.stepName}, ${w.stepIndex}, ${w.stepType}, ${resolution ? 'completed' : 'waiting'}, ${json(w.input)}::text::jsonb,
          ${resolution?.ok ? json(resolution.output) : null}::text::jsonb, NULL, NULL, ${w.attempt - 1}, now(),
          ${resolution ? new Date() : null}, ${resolution ? null : w.wakeAt}, ${resolution ? null : w.waitingFor})
        ON CONFLICT (instance_id, step_name) DO UPDATE SET
          status = EXCLUDED.status, output_data = EXCLUDED.output_data, error_message = NULL, error_code = NULL,
          retry_count = EXCLUDED.retry_count, completed_at = EXCLUDED.completed_at, wake_at = EXCLUDED.wake_at,
          waiting_for = EXCLUDED.waiting_for, updated_at = now()
        WHERE workflow_steps.status <> 'completed'`;
      return resolution ? { state: 'resolved' as const, resolution } : { state: 'parked' as const, waitId: inserted.id };
    });
    return { answer, started };
  }

  /**
   * Puts a run to sleep once every part of it waits: unless one of the waits it parked on (by
   * id: an earlier attempt's wait of the same step does not count) ended meanwhile (then it goes
   * on at once: `resume`), its status becomes `waiting`. A cancel that came while it suspended
   * (its row in run_cancels, written under the same lock by the API) cancels it here: `cancelled`.
   * `gone`: the run is no longer running here.
   */
  async suspend(runId: string, parkedWaits: string[], replyTo: string | null): Promise<'suspended' | 'resume' | 'cancelled' | 'gone'> {
    return this.sql.begin(async (tx) => {
      await lockRun(tx, runId);
      const [cancel] = await tx`SELECT 1 FROM run_cancels WHERE run_id = ${runId}`;
      if (cancel) return (await cancelHeld(tx, runId, ['running'])) ? ('cancelled' as const) : ('gone' as const);
      const [resolved] = await tx`
        SELECT 1 FROM run_waits WHERE id = ANY(${parkedWaits}::bigint[]) AND resolved_at IS NOT NULL LIMIT 1`;
      if (resolved) return 'resume' as const;
      const rows = await tx`
        UPDATE workflow_instances SET status = 'waiting', reply_to = ${replyTo}, updated_at = now()
        WHERE id = ${runId} AND status = 'running' RETURNING 1`;
      return rows.length ? ('suspended' as const) : ('gone' as const);
    });
  }

  /**
   * Takes a resume message's drive: true when this delivery should drive the run. A repeated
   * message (the drive already taken) is refused, unless it is a redelivery of the delivery
   * that took it (its executor died mid-drive): that one goes on.
   */
  async claim(runId: string, drive: number, redelivered: boolean): Promise<boolean> {
    const taken = await this.sql`
      UPDATE workflow_instances SET status = 'running', updated_at = now()
      WHERE id = ${runId} AND drive = ${drive} AND status = 'queued' RETURNING 1`;
    if (taken.length) return true;
    if (!redelivered) return false;
    const [row] = await this.sql<{ status: string; drive: number }[]>`SELECT status, drive FROM workflow_instances WHERE id = ${runId}`;
    return row?.status === 'running' && row.drive === drive;
  }

  /**
   * Resolves waits by id (those still open), records their steps' outcomes and queues again
   * the runs that sleep. `resolution` is given per wait; a sleep that ends passes its input on.
   */
  async resolve(tx: TransactionSql, ids: string[], resolutionOf: (w: OpenWait) => Resolution): Promise<Resume[]> {
    if (!ids.length) return [];
    const open = await tx<OpenWait[]>`
      SELECT id::text, run_id::text, step_name, kind, key, payload FROM run_waits
      WHERE id = ANY(${ids}::bigint[]) AND resolved_at IS NULL`;
    return wake(tx, await endWaits(tx, open, resolutionOf));
  }

  /** Open waits whose time has come (sleeps that end, timeouts), oldest first. */
  async due(limit: number): Promise<{ id: string; run_id: string }[]> {
    return this.sql<{ id: string; run_id: string }[]>`
      SELECT id::text, run_id::text FROM run_waits
      WHERE resolved_at IS NULL AND wake_at <= now() ORDER BY wake_at LIMIT ${limit}`;
  }

  /**
   * Ends the due waits of these runs: sleeps pass their input on, signal, event and child waits
   * fail with a timeout. Runs another engine holds right now are skipped (it does the same).
   */
  async wakeDue(due: { id: string; run_id: string }[]): Promise<{ resumes: Resume[]; ended: number; childrenTimedOut: string[] }> {
    return this.sql.begin(async (tx) => {
      // one statement: the due waits of runs no one else holds right now (try-locks never wait)
      const open = await tx<OpenWait[]>`
        SELECT id::text, run_id::text, step_name, kind, key, payload FROM run_waits
        WHERE id = ANY(${due.map((w) => w.id)}::bigint[]) AND resolved_at IS NULL AND wake_at <= now()
          AND pg_try_advisory_xact_lock(hashtextextended('run:' || run_id::text, 0))`;
      const runs = await endWaits(tx, open, (w) =>
        w.kind === 'sleep' ? { ok: true, output: w.payload ?? null } : { ok: false, error: timeoutError(w) },
      );
      const childrenTimedOut = open.flatMap((w) => (w.kind === 'child' && w.key ? [w.key] : []));
      return { resumes: await wake(tx, runs), ended: open.length, childrenTimedOut };
    });
  }

  /**
   * A signal to a run: ends the oldest open wait for it, or is kept for the step that waits for
   * it later. `final`: the run has ended (nothing will ever read it); `unknown`: no such run.
   */
  async signal(
    runId: string,
    name: string,
    body: unknown,
    /** the run exists without a row yet (accepted, no executor has written it): keep the signal */
    accepted = false,
  ): Promise<{ outcome: 'delivered' | 'stored' | 'final' | 'unknown'; status?: string; resumes: Resume[] }> {
    return this.sql.begin(async (tx) => {
      await lockRun(tx, runId);
      const [run] = await tx<{ status: string }[]>`SELECT status FROM workflow_instances WHERE id = ${runId}`;
      if (!run && !accepted) return { outcome: 'unknown' as const, resumes: [] };
      if (run && ['completed', 'failed', 'cancelled'].includes(run.status))
        return { outcome: 'final' as const, status: run.status, resumes: [] };
      const [open] = await tx<{ id: string }[]>`
        SELECT id::text FROM run_waits WHERE run_id = ${runId} AND kind = 'signal' AND key = ${name} AND resolved_at IS NULL
        ORDER BY id LIMIT 1`;
      const [sig] = await tx<{ id: string }[]>`
        INSERT INTO run_signals (run_id, name, body, consumed_by) VALUES (${runId}, ${name}, ${json(body)}::text::jsonb, ${open?.id ?? null})
        RETURNING id::text`;
      void sig;
      if (!open) return { outcome: 'stored' as const, resumes: [] };
      const resumes = await this.resolve(tx, [open.id], () => ({ ok: true, output: body ?? null }));
      return { outcome: 'delivered' as const, resumes };
    });
  }

  /**
   * An event: stored once per (name, id); starts a run of each active workflow whose latest
   * version it triggers, and ends the open waits for it whose `match` its data contains.
   */
  async event(
    e: { id: string; name: string; dedupeId: string | null; data: unknown },
    triggered: (tx: TransactionSql) => Promise<StartedRun[]>,
  ) {
    return this.sql.begin(async (tx) => {
      await lockEvent(tx, e.name);
      const [stored] = await tx<{ id: string }[]>`
        INSERT INTO events (id, name, dedupe_id, data) VALUES (${e.id}, ${e.name}, ${e.dedupeId}, ${json(e.data)}::text::jsonb)
        ON CONFLICT (name, dedupe_id) WHERE dedupe_id IS NOT NULL DO NOTHING RETURNING id::text`;
      if (!stored) {
        const [prior] = await tx<{ id: string }[]>`SELECT id::text FROM events WHERE name = ${e.name} AND dedupe_id = ${e.dedupeId}`;
        return { duplicate: true, id: prior?.id ?? e.id, started: [] as StartedRun[], resumes: [] as Resume[], matched: 0 };
      }
      const started: StartedRun[] = [];
      for (const s of await triggered(tx)) if (await insertStartedRun(tx, s)) started.push(s);
      const waiting = await tx<{ id: string; run_id: string }[]>`
        SELECT id::text, run_id::text FROM run_waits
        WHERE kind = 'event' AND key = ${e.name} AND resolved_at IS NULL AND (match IS NULL OR ${json(e.data)}::text::jsonb @> match)
        ORDER BY run_id`;
      for (const runId of [...new Set(waiting.map((w) => w.run_id))]) await lockRun(tx, runId);
      const resumes = await this.resolve(
        tx,
        waiting.map((w) => w.id),
        () => ({ ok: true, output: e.data ?? null }),
      );
      return { duplicate: false, id: e.id, started, resumes, matched: waiting.length };
    });
  }

  /** A child run ended: its parent's wait ends with the child's output or error. */
  async childEnded(parentRunId: string, childRunId: string, r: Resolution): Promise<Resume[]> {
    return this.sql.begin(async (tx) => {
      await lockRun(tx, parentRunId);
      const open = await tx<{ id: string }[]>`
        SELECT id::text FROM run_waits WHERE run_id = ${parentRunId} AND kind = 'child' AND key = ${childRunId} AND resolved_at IS NULL`;
      return this.resolve(
        tx,
        open.map((o) => o.id),
        () => r,
      );
    });
  }

  /** Child waits still open whose child has ended (its executor died before telling the parent). */
  async orphanedChildWaits(limit: number) {
    return this.sql<
      { parent: string; child: string; status: string; output_data: unknown; error_code: string | null; error_message: string | null }[]
    >`
      SELECT w.run_id::text AS parent, c.id::text AS child, c.status, c.output_data, c.error_code, c.error_message
      FROM run_waits w JOIN workflow_instances c ON c.id = w.key::uuid
      WHERE w.kind = 'child' AND w.resolved_at IS NULL AND c.status IN ('completed', 'failed', 'cancelled')
        AND c.updated_at < now() - interval '5 seconds'
      LIMIT ${limit}`;
  }

  /** Runs queued to resume whose message may never have gone out (the resolver died before publishing). */
  async staleResumes(olderThanMs: number, limit: number): Promise<Resume[]> {
    const rows = await this.sql<ResumeRow[]>`
      UPDATE workflow_instances SET resume_requested_at = now()
      WHERE id IN (
        SELECT id FROM workflow_instances
        WHERE status = 'queued' AND drive > 0 AND resume_requested_at < now() - ${olderThanMs} * interval '1 millisecond'
        LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING id::text, workflow_id::text, input_data, accepted_at, drive, reply_to, parent_run_id::text`;
    return rows.map(resumeOf);
  }

  /** Runs the system started whose first message may not have gone out. */
  async unpublishedStarts(olderThanMs: number, limit: number): Promise<StartedRun[]> {
    const rows = await this.sql<{ message: StartedRun }[]>`
      UPDATE run_starts SET created_at = now()
      WHERE run_id IN (
        SELECT run_id FROM run_starts WHERE published_at IS NULL AND created_at < now() - ${olderThanMs} * interval '1 millisecond'
        LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING message`;
    return rows.map((r) => r.message);
  }

  async published(runIds: string[]): Promise<void> {
    if (runIds.length) await this.sql`UPDATE run_starts SET published_at = now() WHERE run_id = ANY(${runIds}::uuid[])`;
  }

  /** Descendants of a run that have not ended (cancel cascades to them). */
  async openDescendants(runId: string): Promise<string[]> {
    const rows = await this.sql<{ id: string }[]>`
      WITH RECURSIVE d AS (
        SELECT id, status FROM workflow_instances WHERE parent_run_id = ${runId}
        UNION
        SELECT i.id, i.status FROM workflow_instances i JOIN d ON i.parent_run_id = d.id)
      SELECT id::text FROM d WHERE status NOT IN ('completed', 'failed', 'cancelled')`;
    return rows.map((r) => r.id);
  }

  /**
   * Cancels a run that nothing drives (waiting, or queued to resume) in one statement; a run an
   * executor holds is left to the cancel broadcast. Returns whether it cancelled it here.
   */
  async cancelIdle(runId: string): Promise<{ cancelled: boolean; parentRunId: string | null; replyTo: string | null }> {
    return this.sql.begin(async (tx) => {
      await lockRun(tx, runId);
      const row = await cancelHeld(tx, runId, ['waiting', 'queued-resume']);
      if (!row) {
        // held by an executor (or not yet started): remembered under the run's lock, so a
        // suspension that commits after this sees it (store/waits.ts suspend)
        await tx`
          WITH old AS (DELETE FROM run_cancels WHERE cancelled_at < now() - ${CANCEL_MEMORY_MS} * interval '1 millisecond')
          INSERT INTO run_cancels (run_id) VALUES (${runId}) ON CONFLICT (run_id) DO NOTHING`;
        return { cancelled: false, parentRunId: null, replyTo: null };
      }
      return { cancelled: true, parentRunId: row.parent_run_id, replyTo: row.reply_to };
    });
  }

  /**
   * Redrive: a failed or cancelled run runs again from where it failed. Its failed steps keep
   * their earlier attempts in `history`; waits that ended in an error are forgotten (they wait
   * again); the run is queued for its next drive. Null when the run is not failed or cancelled.
   */
  async redrive(runId: string): Promise<{ resume: Resume | null; status: string | null }> {
    return this.sql.begin(async (tx) => {
      await lockRun(tx, runId);
      const [run] = await tx<{ status: string }[]>`SELECT status FROM workflow_instances WHERE id = ${runId} FOR UPDATE`;
      if (!run) return { resume: null, status: null };
      if (run.status !== 'failed' && run.status !== 'cancelled') return { resume: null, status: run.status };
      await tx`
        UPDATE workflow_steps SET history = COALESCE(history, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
          'status', status, 'attempts', retry_count + 1, 'error', jsonb_build_object('code', error_code, 'message', error_message),
          'started_at', started_at, 'completed_at', completed_at)),
          updated_at = now()
        WHERE instance_id = ${runId} AND status <> 'completed'`;
      await tx`DELETE FROM run_waits WHERE run_id = ${runId} AND (resolved_at IS NULL OR (resolution ->> 'ok')::boolean IS NOT TRUE)`;
      await tx`DELETE FROM run_cancels WHERE run_id = ${runId}`;
      const [row] = await tx<ResumeRow[]>`
        UPDATE workflow_instances SET status = 'queued', drive = drive + 1, resume_requested_at = now(), redrives = redrives + 1,
          error_code = NULL, error_message = NULL, completed_at = NULL, output_data = NULL, reply_to = NULL, updated_at = now()
        WHERE id = ${runId}
        RETURNING id::text, workflow_id::text, input_data, accepted_at, drive, reply_to, parent_run_id::text`;
      return { resume: resumeOf(row), status: run.status };
    });
  }
}

/**
 * Cancels a run in one of `states` (`queued-resume`: queued for its next drive) with its open
 * waits and waiting steps, in the caller's transaction (the run's lock held). Null when the run
 * is in none of them.
 */
async function cancelHeld(tx: TransactionSql, runId: string, states: ('running' | 'waiting' | 'queued-resume')[]) {
  const [row] = await tx<{ parent_run_id: string | null; reply_to: string | null }[]>`
    UPDATE workflow_instances SET status = 'cancelled', error_code = 'E_CANCELLED', error_message = 'the run was cancelled',
      completed_at = now(), updated_at = now()
    WHERE id = ${runId} AND (
      (status = 'waiting' AND ${states.includes('waiting')}) OR (status = 'running' AND ${states.includes('running')})
      OR (status = 'queued' AND drive > 0 AND ${states.includes('queued-resume')}))
    RETURNING parent_run_id::text, reply_to`;
  if (!row) return null;
  const cancelled = JSON.stringify({ ok: false, error: { code: 'E_CANCELLED', message: 'the run was cancelled' } });
  await tx`UPDATE run_waits SET resolved_at = clock_timestamp(), resolution = ${cancelled}::text::jsonb WHERE run_id = ${runId} AND resolved_at IS NULL`;
  await tx`UPDATE workflow_steps SET status = 'failed', error_code = 'E_CANCELLED', error_message = 'the run was cancelled',
           completed_at = now(), wake_at = NULL, updated_at = now()
           WHERE instance_id = ${runId} AND status IN ('waiting', 'running')`;
  return row;
}

export interface OpenWait {
  id: string;
  run_id: string;
  step_name: string;
  kind: WaitKind;
  key: string | null;
  payload: unknown;
}

interface ResumeRow {
  id: string;
  workflow_id: string;
  input_data: unknown;
  accepted_at: Date | null;
  drive: number;
  reply_to: string | null;
  parent_run_id: string | null;
}

function resumeOf(r: ResumeRow): Resume {
  return {
    runId: r.id,
    workflowId: r.workflow_id,
    input: r.input_data,
    acceptedAt: r.accepted_at?.getTime() ?? Date.now(),
    drive: r.drive,
    replyTo: r.reply_to,
    parentRunId: r.parent_run_id,
  };
}

/**
 * Ends open waits (their runs locked by the caller) with their resolutions, and records their
 * steps' outcomes: two statements whatever their number. Returns the runs they belong to.
 */
async function endWaits(tx: TransactionSql, open: OpenWait[], resolutionOf: (w: OpenWait) => Resolution): Promise<string[]> {
  if (!open.length) return [];
  const rows = await tx<{ run_id: string }[]>`
    WITH ended AS (
      UPDATE run_waits w SET resolved_at = clock_timestamp(), resolution = u.res::jsonb
      FROM unnest(${open.map((w) => w.id)}::bigint[], ${open.map((w) => JSON.stringify(resolutionOf(w)))}::text[]) AS u(id, res)
      WHERE w.id = u.id AND w.resolved_at IS NULL
      RETURNING w.run_id, w.step_name, w.resolution
    ), steps AS (
      UPDATE workflow_steps s SET
        status = CASE WHEN (e.resolution ->> 'ok')::boolean THEN 'completed' ELSE 'failed' END,
        output_data = CASE WHEN (e.resolution ->> 'ok')::boolean THEN e.resolution -> 'output' END,
        error_code = e.resolution -> 'error' ->> 'code', error_message = e.resolution -> 'error' ->> 'message',
        completed_at = now(), wake_at = NULL, waiting_for = NULL, updated_at = now()
      FROM ended e
      WHERE s.instance_id = e.run_id AND s.step_name = e.step_name AND s.status = 'waiting'
    )
    SELECT DISTINCT run_id::text FROM ended`;
  return rows.map((r) => r.run_id);
}

/** The runs (locked by the caller) that sleep: queued again for their next drive. */
async function wake(tx: TransactionSql, runIds: string[]): Promise<Resume[]> {
  if (!runIds.length) return [];
  const rows = await tx<ResumeRow[]>`
    UPDATE workflow_instances SET status = 'queued', drive = drive + 1, resume_requested_at = now(), updated_at = now()
    WHERE id = ANY(${runIds}::uuid[]) AND status = 'waiting'
    RETURNING id::text, workflow_id::text, input_data, accepted_at, drive, reply_to, parent_run_id::text`;
  return rows.map(resumeOf);
}

/**
 * A run the system starts: its outbox entry and its row (queued), in the caller's transaction.
 * False when its origin already started a run (nothing is written then).
 */
export async function insertStartedRun(tx: TransactionSql, s: StartedRun): Promise<boolean> {
  const [fresh] = await tx`
    INSERT INTO run_starts (run_id, origin, message) VALUES (${s.runId}, ${s.origin}, ${json(s)}::text::jsonb)
    ON CONFLICT DO NOTHING RETURNING 1`;
  if (!fresh) return false;
  await tx`
    INSERT INTO workflow_instances (id, workflow_id, workflow_name, workflow_version, status, input_data, accepted_at, deliveries, parent_run_id)
    VALUES (${s.runId}, ${s.workflowId}, ${s.workflowName}, ${s.workflowVersion}, 'queued', ${json(s.input)}::text::jsonb, now(), 0, ${s.parentRunId ?? null})`;
  return true;
}

function timeoutError(w: OpenWait): PlainError {
  if (w.kind === 'signal') return { code: 'E_SIGNAL_TIMEOUT', message: `no signal "${w.key}" came before the step's timeout` };
  if (w.kind === 'event') return { code: 'E_EVENT_TIMEOUT', message: `no matching event "${w.key}" came before the step's timeout` };
  return { code: 'E_CHILD_TIMEOUT', message: `child run ${w.key} did not end before the step's timeout` };
}
