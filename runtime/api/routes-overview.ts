import type { Queue } from '../queue/index.js';
import { EXECUTOR_LIVE_MS, type ExecutorRecords, type OverviewRecords } from '../store/index.js';
import { intParam } from './body.js';
import type { Route } from './http-server.js';
import { bucketSeconds, queuedRuns, toSeries, totalsOf, windowBuckets } from './overview.js';

export interface OverviewDeps {
  overview: OverviewRecords;
  executors: ExecutorRecords;
  queue: Queue;
  queueDriver: 'nats' | 'postgres';
  /** how long one answer serves every request for the same window */
  cacheMs: number;
}

/**
 * An answer that took long to make (a window holding a few hundred thousand runs) is kept for
 * this many times as long as it took: the overviews never take more than 1/LOAD_FACTOR of the
 * database's time per API process, whatever the rate.
 */
const LOAD_FACTOR = 20;

/**
 * `GET /api/v1/overview`: the whole cluster at a glance, from PostgreSQL, the queue and the
 * executor registry (never this process's own metrics: there may be many processes). An answer
 * serves every request for the same window for `cacheMs` (or LOAD_FACTOR times as long as it
 * took, when that is longer), and requests that arrive while it is being made wait for it: any
 * number of open consoles cost one set of queries per second.
 */
export function overviewRoutes(d: OverviewDeps): Route[] {
  const answers = new Map<number, { expires: number; body: Promise<string> }>();
  const answer = (minutes: number): Promise<string> => {
    const now = Date.now();
    const hit = answers.get(minutes);
    if (hit && now < hit.expires) return hit.body;
    const body = overview(d, minutes, now).then((o) => JSON.stringify(o));
    // shared while it is being made, then for cacheMs, or LOAD_FACTOR times as long as it took
    const entry = { expires: Infinity, body };
    answers.set(minutes, entry);
    body.then(
      () => (entry.expires = now + Math.max(d.cacheMs, LOAD_FACTOR * (Date.now() - now))),
      // a failure is answered to the requests that waited for it, and not kept
      () => answers.get(minutes) === entry && answers.delete(minutes),
    );
    return body;
  };
  return [
    {
      method: 'get',
      pattern: '/api/v1/overview',
      scope: 'read',
      handler: async (req) => ({ status: 200, body: await answer(intParam(req, 'minutes', 15, 1, 60)) }),
    },
  ];
}

const QUEUE_TIMEOUT_MS = 1000;

/** `p`'s value, or null when it takes longer than `ms`. */
function orNull<T>(p: Promise<T>, ms: number): Promise<T | null> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => resolve(null), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}

async function overview(d: OverviewDeps, minutes: number, nowMs: number) {
  const windowS = minutes * 60;
  const bucketS = bucketSeconds(windowS);
  const b = windowBuckets(nowMs, windowS, bucketS);
  const [accepted, ended, durations, current, executors, queue] = await Promise.all([
    d.overview.accepted(b),
    d.overview.ended(b),
    d.overview.durations(b.starts[0], b.end),
    d.overview.current(),
    d.executors.live(EXECUTOR_LIVE_MS),
    // a queue that does not answer at once is reported as such, without holding up the rest
    orNull(d.queue.consumerPending(), QUEUE_TIMEOUT_MS).then(
      (p) => ({ pending: p?.pending ?? null, delivered: p?.ackPending ?? null }),
      () => ({ pending: null, delivered: null }),
    ),
  ]);
  const series = toSeries(b, accepted, ended);
  const driving = executors.reduce((n, e) => n + e.in_flight, 0);
  return {
    now: new Date(nowMs).toISOString(),
    window_s: windowS,
    bucket_s: bucketS,
    series,
    totals: totalsOf(series),
    run_duration_ms: durations.runs,
    step_duration_ms: durations.steps,
    runs_now: { queued: queuedRuns(queue, driving) ?? current.queued, running: current.running, waiting: current.waiting },
    queue: { driver: d.queueDriver, ...queue },
    executors: executors.map((e) => ({
      id: e.id,
      host: e.host,
      pid: e.pid,
      started_at: e.started_at.toISOString(),
      last_seen: e.last_seen.toISOString(),
      slots: e.slots,
      in_flight: e.in_flight,
      threads: e.threads,
      utilization: Math.round(e.utilization * 1000) / 1000,
    })),
  };
}
