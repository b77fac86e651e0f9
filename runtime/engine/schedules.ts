import { Cron } from 'croner';
import { uuidv7 } from '../ids.js';
import type { Logger, Metrics } from '../observability/index.js';
import type { ScheduleRecords, ScheduleRow } from '../store/index.js';
import type { Resumer } from './durable.js';

/**
 * Cron expressions through croner (well kept, time zones and DST handled, seconds optional):
 * 5 fields, or 6 with seconds first (`*\/2 * * * * *`).
 */
export function parseCron(expr: string, timezone: string): Cron {
  return new Cron(expr, { timezone, mode: '5-or-6-parts', paused: true });
}

/** The next tick strictly after `after`, or null when the expression has none. */
export function nextTick(expr: string, timezone: string, after: Date): Date | null {
  return parseCron(expr, timezone).nextRun(after);
}

/** A tick more than this late counts as missed (downtime): `catchup` decides whether it fires. */
export const MISSED_AFTER_MS = 10_000;
/** `catchup: all` fires at most this many missed ticks at once (the latest ones). */
export const MAX_CATCHUP = 100;

/**
 * The ticks of a schedule that are due now, as its `catchup` says: `none` fires only ticks
 * that are not late (missed ones are dropped), `latest` the last due one, `all` every due one
 * (up to MAX_CATCHUP, oldest first).
 */
export function dueTicks(s: Pick<ScheduleRow, 'cron' | 'timezone' | 'catchup' | 'next_tick'>, now: Date): Date[] {
  if (!s.next_tick || s.next_tick > now) return [];
  const from = s.next_tick.getTime();
  // the latest ticks at or before now (however long the gap), oldest first, none before next_tick
  const recent = parseCron(s.cron, s.timezone)
    .previousRuns(MAX_CATCHUP, new Date(now.getTime() + 1))
    .filter((t) => t.getTime() >= from)
    .reverse();
  if (!recent.length) recent.push(s.next_tick);
  if (s.catchup === 'latest') return recent.slice(-1);
  if (s.catchup === 'all') return recent;
  return recent.filter((t) => now.getTime() - t.getTime() <= MISSED_AFTER_MS);
}

export interface ScheduleLoopDeps {
  schedules: ScheduleRecords;
  resumer: Resumer;
  /** the workflow a tick runs: the latest active version of a name, or a pinned id */
  workflowFor: (s: ScheduleRow) => Promise<{ id: string; name: string; version: string } | null>;
  tickMs: number;
  log: Logger;
  metrics: Metrics;
}

/** The engine's scheduler: fires due ticks (once each, whatever the number of engines). */
export function startScheduler(d: ScheduleLoopDeps): () => Promise<void> {
  let stopped = false;
  let pass: Promise<void> | null = null;
  const run = async () => {
    const now = new Date();
    for (const s of await d.schedules.due(100)) {
      const ticks = dueTicks(s, now);
      const next = nextTick(s.cron, s.timezone, now);
      const wf = ticks.length ? await d.workflowFor(s) : null;
      if (ticks.length && !wf) {
        d.log.warn({ schedule: s.id, workflow: s.workflow_name }, 'schedule skipped a tick: its workflow has no active version');
      }
      const fired = await d.schedules.fire(s, wf ? ticks : [], next, (tick) => ({
        runId: uuidv7(),
        workflowId: wf!.id,
        workflowName: wf!.name,
        workflowVersion: wf!.version,
        input: s.input_data ?? {},
        origin: `tick:${s.id}:${tick.toISOString()}`,
      }));
      for (const f of fired) d.metrics.schedulesFired.inc({ outcome: f.outcome });
      await d.resumer.start(fired.flatMap((f) => (f.run ? [f.run] : [])));
    }
  };
  const timer = setInterval(() => {
    if (stopped || pass) return;
    pass = run()
      .catch((err: Error) => d.log.warn({ err: err.message }, 'scheduler pass failed; trying again'))
      .finally(() => (pass = null));
  }, d.tickMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await pass;
  };
}
