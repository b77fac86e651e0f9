import type { Logger, Metrics } from '../observability/index.js';
import type { Queue, RunMessage } from '../queue/index.js';
import type { Resume, StartedRun, WaitRecords } from '../store/index.js';

/** The queue message that resumes a run for its next drive. */
export function resumeMessage(r: Resume): RunMessage {
  return {
    run_id: r.runId,
    workflow_id: r.workflowId,
    input: r.input,
    accepted_at: r.acceptedAt,
    drive: r.drive,
    ...(r.replyTo ? { reply: r.replyTo } : {}),
    ...(r.parentRunId ? { parent_run_id: r.parentRunId } : {}),
  };
}

/** The first queue message of a run the system started (a child, an event's trigger, a tick). */
export function startMessage(s: StartedRun): RunMessage {
  return {
    run_id: s.runId,
    workflow_id: s.workflowId,
    input: s.input,
    accepted_at: Date.now(),
    ...(s.parentRunId ? { parent_run_id: s.parentRunId } : {}),
  };
}

/**
 * Sends what a committed transaction decided: resumes and runs the system starts. A message
 * that does not go out (the queue down, the process killed) is sent again by the engine's sweep
 * (`startDurableTimers`): a resume stays `queued` with its `resume_requested_at`, a start stays
 * unpublished in run_starts. A message sent twice is harmless (a resume names its drive; a
 * start carries an idempotency key).
 */
export class Resumer {
  constructor(
    private readonly queue: Queue,
    private readonly waits: WaitRecords,
    private readonly log: Logger,
  ) {}

  async resume(rs: Resume[]): Promise<void> {
    await Promise.all(
      rs.map((r) =>
        this.queue.publishRun(resumeMessage(r)).catch((err: Error) => {
          this.log.warn({ run_id: r.runId, err: err.message }, 'resume not queued; the engine sends it again');
        }),
      ),
    );
  }

  /**
   * Cancels a run's open descendants (and the run itself with `withRoot`): one that nothing
   * drives (waiting, or queued to resume) is cancelled here, in its lock's transaction, and whoever
   * waits for it hears it (a caller waiting on its result, a parent not cancelled with it); one an
   * executor holds is remembered (run_cancels) and broadcast to every executor. Resolves whether
   * the root was cancelled here.
   */
  async cancel(runId: string, withRoot: boolean): Promise<boolean> {
    const targets = [...(withRoot ? [runId] : []), ...(await this.waits.openDescendants(runId))];
    const gone = new Set([runId, ...targets]);
    let root = false;
    for (const id of targets) {
      const idle = await this.waits.cancelIdle(id);
      if (!idle.cancelled) {
        this.queue.publishCancel(id); // remembered in run_cancels by cancelIdle, under the run's lock
        continue;
      }
      if (id === runId) root = true;
      const error = { code: 'E_CANCELLED', message: 'the run was cancelled' };
      if (idle.replyTo)
        this.queue.publishResult(idle.replyTo, { run_id: id, status: 'cancelled', output: null, error, completed_at: Date.now() });
      if (idle.parentRunId && !gone.has(idle.parentRunId)) {
        await this.resume(
          await this.waits.childEnded(idle.parentRunId, id, { ok: false, error: childError(id, 'cancelled', error.code, error.message) }),
        );
      }
    }
    return root;
  }

  async start(ss: StartedRun[]): Promise<void> {
    const sent: string[] = [];
    await Promise.all(
      ss.map((s) =>
        this.queue.publishRun(startMessage(s), { key: `start:${s.runId}`, ttlMs: 3_600_000 }).then(
          () => sent.push(s.runId),
          (err: Error) => this.log.warn({ run_id: s.runId, err: err.message }, 'run not queued; the engine sends it again'),
        ),
      ),
    );
    await this.waits.published(sent).catch(() => {});
  }
}

export interface DurableTimerOptions {
  /** how often due waits are looked for */
  tickMs: number;
  /** how often lost messages and orphaned child waits are looked for */
  sweepMs: number;
}

/**
 * The engine's part of durable waits: ends due sleeps and timeouts (several engines may run
 * this; each wait ends once), sends resumes and starts that did not go out, and ends the waits
 * of parents whose child ended while its executor died. Returns a stop function.
 */
export function startDurableTimers(
  waits: WaitRecords,
  resumer: Resumer,
  o: DurableTimerOptions,
  log: Logger,
  metrics: Metrics,
): () => Promise<void> {
  let stopped = false;
  const tick = async () => {
    for (;;) {
      const due = await waits.due(500);
      if (!due.length) return;
      const { resumes, ended, childrenTimedOut } = await waits.wakeDue(due);
      metrics.waitsWoken.inc(resumes.length);
      await resumer.resume(resumes);
      // a parent that stopped waiting for its child: the child (and its own children) is cancelled
      for (const child of childrenTimedOut) await resumer.cancel(child, true);
      // another engine holds these runs right now: it ends their waits (do not spin on them)
      if (due.length < 500 || stopped || ended === 0) return;
    }
  };
  const sweep = async () => {
    await resumer.resume(await waits.staleResumes(30_000, 500));
    await resumer.start(await waits.unpublishedStarts(15_000, 500));
    for (const o of await waits.orphanedChildWaits(100)) {
      const r =
        o.status === 'completed'
          ? { ok: true as const, output: o.output_data }
          : { ok: false as const, error: childError(o.child, o.status, o.error_code, o.error_message) };
      await resumer.resume(await waits.childEnded(o.parent, o.child, r));
    }
  };
  const running = new Map<string, Promise<void>>();
  const guard = (what: string, f: () => Promise<void>) => () => {
    if (stopped || running.has(what)) return; // one at a time: a slow pass is not stacked on
    running.set(
      what,
      f()
        .catch((err: Error) => log.warn({ err: err.message }, `durable timers: ${what} failed; trying again`))
        .finally(() => running.delete(what)),
    );
  };
  const t1 = setInterval(guard('waking due waits', tick), o.tickMs);
  const t2 = setInterval(guard('sweeping', sweep), o.sweepMs);
  t1.unref();
  t2.unref();
  return async () => {
    stopped = true;
    clearInterval(t1);
    clearInterval(t2);
    await Promise.all(running.values());
  };
}

/** What a parent's `workflow` step fails with when its child did not complete. */
export function childError(childRunId: string, status: string, code: string | null, message: string | null) {
  return {
    code: 'E_CHILD_FAILED',
    message: `child run ${childRunId} ${status}${code ? ` (${code}${message ? `: ${message}` : ''})` : ''}`,
    details: { child_run_id: childRunId, status, error: code ? { code, message } : null },
  };
}
