import type { BucketCount, Buckets, EndedCount } from '../store/index.js';

/** The bucket sizes the overview picks from, in seconds. */
const BUCKET_SIZES_S = [1, 2, 3, 5, 10, 15, 20, 30, 40, 60];
/** A series has at most this many points: enough for a chart, cheap to draw and to send. */
export const MAX_BUCKETS = 90;

/** The smallest bucket size that cuts `windowS` into at most MAX_BUCKETS buckets. */
export function bucketSeconds(windowS: number): number {
  return BUCKET_SIZES_S.find((s) => Math.ceil(windowS / s) <= MAX_BUCKETS) ?? Math.ceil(windowS / MAX_BUCKETS);
}

/**
 * The buckets of a window: aligned on multiples of the bucket size since the epoch (so that
 * successive answers share their buckets, and a chart does not shift), the last one holding
 * `nowMs` (it is still filling), `ceil(windowS / bucketS)` of them.
 */
export function windowBuckets(nowMs: number, windowS: number, bucketS: number): Buckets {
  const size = bucketS * 1000;
  const n = Math.ceil(windowS / bucketS);
  const last = Math.floor(nowMs / size) * size;
  const starts = Array.from({ length: n }, (_, i) => new Date(last - (n - 1 - i) * size));
  return { starts, end: new Date(last + size) };
}

export interface SeriesPoint {
  /** the bucket's start, ISO 8601 */
  t: string;
  started: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/** One point per bucket, oldest first, zeros where nothing happened. */
export function toSeries(b: Buckets, accepted: BucketCount[], ended: EndedCount[]): SeriesPoint[] {
  const points = b.starts.map((t) => ({ t: t.toISOString(), started: 0, completed: 0, failed: 0, cancelled: 0 }));
  // a bucket index outside the window (it cannot be: the reads are bounded by it) is dropped, not thrown
  for (const a of accepted) if (points[a.bucket]) points[a.bucket].started += a.n;
  for (const e of ended) if (points[e.bucket]) points[e.bucket][e.status] += e.n;
  return points;
}

export interface Totals {
  started: number;
  completed: number;
  failed: number;
  cancelled: number;
  /** completed / (completed + failed): cancelled runs count neither way; null when none ended */
  success_rate: number | null;
}

/** The sums of a series, and its success rate. */
export function totalsOf(points: SeriesPoint[]): Totals {
  const t = { started: 0, completed: 0, failed: 0, cancelled: 0 };
  for (const p of points) {
    t.started += p.started;
    t.completed += p.completed;
    t.failed += p.failed;
    t.cancelled += p.cancelled;
  }
  const decided = t.completed + t.failed;
  return { ...t, success_rate: decided ? Math.round((t.completed / decided) * 10_000) / 10_000 : null };
}

/**
 * Runs waiting for an executor: in the queue, plus those delivered to an executor that it has
 * not begun (JetStream hands executors more than they run at once, so `pending` alone stays
 * near zero under load): `pending + delivered - running`, where running is what the live
 * executors said they drive. Null when the queue does not answer.
 */
export function queuedRuns(queue: { pending: number | null; delivered: number | null }, driving: number): number | null {
  if (queue.pending === null || queue.delivered === null) return null;
  return queue.pending + Math.max(0, queue.delivered - driving);
}
