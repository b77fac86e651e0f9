import type { Logger } from '../observability/index.js';
import type { RunRecord, RunRecords, StepRecord } from '../store/index.js';
import { FINAL_RUN_STATUSES } from '../store/index.js';
import { runView, stepView } from './views.js';

/** What a listener hears: a run's row changed, a step's row changed, the run ended (its full record). */
export type RunEvent =
  | { type: 'run'; data: ReturnType<typeof runView> }
  | { type: 'step'; data: ReturnType<typeof stepView> }
  | { type: 'end'; data: ReturnType<typeof runView> };

interface Watched {
  listeners: Set<(e: RunEvent) => void>;
  /** what was last told, to tell only changes: the run's status + updated_at, each step's */
  run: string;
  steps: Map<string, string>;
  /** watched since the last poll: its rows are read whole once (the mark is older than its snapshot) */
  fresh: boolean;
}

/**
 * Live progress of runs for `GET /api/v1/executions/:run_id/events`. Nothing runs while no one
 * listens. With listeners, one poll every `intervalMs` reads the rows of every watched run that
 * changed since the last poll (two statements, whatever the number of listeners or runs), so a
 * thousand listeners cost what one does; records reach PostgreSQL through the executors' batched
 * writer, so a listener hears a change within about a flush interval plus `intervalMs`. Polling
 * the records rather than a broadcast from the executors keeps it right with every queue and
 * every role layout (the API need not hear the executors), and a reconnecting listener misses
 * nothing: it gets the current state first.
 */
export class RunEvents {
  private readonly watched = new Map<string, Watched>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  /** the oldest transaction running at the last poll: what it and later ones wrote is read next */
  private since: bigint | null = null;

  constructor(
    private readonly runs: RunRecords,
    private readonly log: Logger,
    private readonly intervalMs = 250,
  ) {}

  get listeners(): number {
    let n = 0;
    for (const w of this.watched.values()) n += w.listeners.size;
    return n;
  }

  /** Listens to a run whose current state (`run`, `steps`) the caller has just sent. */
  subscribe(run: RunRecord | null, runId: string, steps: StepRecord[], listener: (e: RunEvent) => void): () => void {
    let w = this.watched.get(runId);
    if (!w) {
      w = { listeners: new Set(), run: run ? key(run) : '', steps: new Map(steps.map((s) => [s.step_name, key(s)])), fresh: true };
      this.watched.set(runId, w);
    }
    w.listeners.add(listener);
    this.timer ??= setInterval(() => void this.poll(), this.intervalMs);
    return () => {
      w.listeners.delete(listener);
      if (!w.listeners.size) this.watched.delete(runId);
      if (!this.watched.size && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
        this.since = null;
      }
    };
  }

  private async poll(): Promise<void> {
    if (this.polling || !this.watched.size) return;
    this.polling = true;
    try {
      const all = [...this.watched.entries()];
      const fresh = all.filter(([, w]) => w.fresh).map(([id]) => id);
      const known = all.filter(([, w]) => !w.fresh).map(([id]) => id);
      // a run first watched after the last mark was taken may have changed between its snapshot
      // and that mark: its rows are read whole this once; the others from the mark on
      const reads = await Promise.all([
        known.length ? this.runs.changedSince(known, this.since) : null,
        fresh.length ? this.runs.changedSince(fresh, null) : null,
      ]);
      for (const id of fresh) {
        const w = this.watched.get(id);
        if (w) w.fresh = false; // read whole once the read succeeded (a failed poll tries again)
      }
      const got = reads.filter((r) => r !== null);
      // the oldest mark: each was taken before its own reads
      this.since = got.reduce((m, r) => (r.mark < m ? r.mark : m), got[0].mark);
      const runs = got.flatMap((r) => r.runs);
      const steps = got.flatMap((r) => r.steps);
      const stepsByRun = new Map<string, StepRecord[]>();
      for (const s of steps) stepsByRun.set(s.instance_id, [...(stepsByRun.get(s.instance_id) ?? []), s]);
      const runById = new Map(runs.map((r) => [r.id, r]));
      for (const [id, w] of this.watched) {
        const emit = (e: RunEvent) => {
          for (const l of [...w.listeners]) l(e);
        };
        for (const s of stepsByRun.get(id) ?? []) {
          const k = key(s);
          if (w.steps.get(s.step_name) === k) continue;
          w.steps.set(s.step_name, k);
          emit({ type: 'step', data: stepView(s) });
        }
        const r = runById.get(id);
        if (r && key(r) !== w.run) {
          w.run = key(r);
          if ((FINAL_RUN_STATUSES as string[]).includes(r.status)) {
            emit({ type: 'end', data: runView(r, await this.runs.steps(id)) });
          } else emit({ type: 'run', data: runView(r, null) });
        }
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'run events: poll failed; trying again');
    } finally {
      this.polling = false;
    }
  }
}

const key = (r: { status: string; updated_at: Date }) => `${r.status}@${r.updated_at.getTime()}`;
