import type { Logger, Metrics } from '../observability/index.js';
import { pruneEventsAndTicks, pruneRuns, type Sql } from '../store/index.js';

export interface RetentionOptions {
  /** how long final runs are kept, by status (0: forever) */
  keep: { completed: number; failed: number; cancelled: number };
  /** runs per statement */
  batchSize: number;
  /** the pause between two statements while there is work, so the hot path goes first */
  intervalMs: number;
}

/** How long the pruner sleeps once nothing is left to delete. */
const IDLE_MS = 60_000;

/**
 * The engine role's retention: final runs older than `retention.<status>` are deleted with
 * their steps (events and schedule ticks older than `retention.completed` too), a small batch per statement and a pause between statements, until none is
 * left; then it looks again a minute later. With several engines each skips the rows another
 * is deleting. Returns a stop function.
 */
export function startRetention(sql: Sql, o: RetentionOptions, log: Logger, metrics: Metrics): () => Promise<void> {
  const statuses = (Object.entries(o.keep) as [keyof RetentionOptions['keep'], number][]).filter(([, ms]) => ms > 0);
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  const pass = async (): Promise<void> => {
    let busy = false;
    for (const [status, ms] of statuses) {
      if (stopped) return;
      const n = await pruneRuns(sql, status, new Date(Date.now() - ms), o.batchSize);
      if (n) metrics.retentionDeleted.inc({ status }, n);
      busy ||= n === o.batchSize;
    }
    // events (and their dedupe ids) and schedule ticks are kept as long as completed runs
    if (o.keep.completed > 0 && !stopped) {
      const n = await pruneEventsAndTicks(sql, new Date(Date.now() - o.keep.completed), o.batchSize);
      busy ||= n >= o.batchSize;
    }
    schedule(busy ? o.intervalMs : IDLE_MS);
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = pass()
        .catch((err: Error) => {
          log.warn({ err: err.message }, 'retention: runs not pruned this time');
          schedule(IDLE_MS);
        })
        .finally(() => (running = null));
    }, ms);
    timer.unref();
  };
  if (statuses.length) schedule(o.intervalMs);
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  };
}
