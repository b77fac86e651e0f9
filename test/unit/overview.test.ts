import { describe, expect, it } from 'vitest';
import { bucketSeconds, MAX_BUCKETS, queuedRuns, toSeries, totalsOf, windowBuckets } from '../../dist/runtime/api/overview.js';

const at = (iso: string) => Date.parse(iso);

describe('overview buckets (GET /api/v1/overview)', () => {
  it('picks the smallest bucket size that keeps every window from 1 to 60 minutes at 90 buckets or fewer', () => {
    expect(bucketSeconds(60)).toBe(1);
    expect(bucketSeconds(5 * 60)).toBe(5);
    expect(bucketSeconds(15 * 60)).toBe(10);
    expect(bucketSeconds(30 * 60)).toBe(20);
    expect(bucketSeconds(60 * 60)).toBe(40);
    for (let m = 1; m <= 60; m++) {
      const s = bucketSeconds(m * 60);
      expect(Math.ceil((m * 60) / s), `${m} min`).toBeLessThanOrEqual(MAX_BUCKETS);
      expect(Math.ceil((m * 60) / s), `${m} min`).toBeGreaterThanOrEqual(30);
    }
  });

  it('cuts a window into contiguous aligned buckets, the last one holding now', () => {
    const now = at('2026-12-01T10:00:07.500Z');
    const b = windowBuckets(now, 900, 10);
    expect(b.starts).toHaveLength(90);
    expect(b.starts.at(-1)!.toISOString()).toBe('2026-12-01T10:00:00.000Z');
    expect(b.starts[0].toISOString()).toBe('2026-12-01T09:45:10.000Z');
    expect(b.end.toISOString()).toBe('2026-12-01T10:00:10.000Z');
    for (let i = 1; i < b.starts.length; i++) expect(b.starts[i].getTime() - b.starts[i - 1].getTime()).toBe(10_000);
    expect(now).toBeGreaterThanOrEqual(b.starts.at(-1)!.getTime());
    expect(now).toBeLessThan(b.end.getTime());
    // a second later: the same buckets (a chart does not shift between polls)
    expect(windowBuckets(now + 1000, 900, 10).starts.map(String)).toEqual(b.starts.map(String));
    // a window that is not a whole number of buckets gets one bucket more, never fewer
    expect(windowBuckets(now, 47 * 60, bucketSeconds(47 * 60)).starts).toHaveLength(71);
  });

  it('fills every bucket, zeros included, oldest first, and totals them', () => {
    const b = windowBuckets(at('2026-12-01T10:00:00Z'), 60, 10);
    const series = toSeries(
      b,
      [
        { bucket: 0, n: 3 },
        { bucket: 5, n: 2 },
      ],
      [
        { bucket: 0, status: 'completed', n: 2 },
        { bucket: 5, status: 'failed', n: 1 },
        { bucket: 5, status: 'completed', n: 1 },
        { bucket: 4, status: 'cancelled', n: 1 },
        { bucket: 99, status: 'completed', n: 7 }, // outside: dropped
      ],
    );
    expect(series.map((p) => p.t)).toEqual(b.starts.map((t) => t.toISOString()));
    expect(series[0]).toEqual({ t: '2026-12-01T09:59:10.000Z', started: 3, completed: 2, failed: 0, cancelled: 0 });
    expect(series[1]).toEqual({ t: '2026-12-01T09:59:20.000Z', started: 0, completed: 0, failed: 0, cancelled: 0 });
    expect(series[5]).toEqual({ t: '2026-12-01T10:00:00.000Z', started: 2, completed: 1, failed: 1, cancelled: 0 });
    expect(totalsOf(series)).toEqual({ started: 5, completed: 3, failed: 1, cancelled: 1, success_rate: 0.75 });
  });

  it('has no success rate when no run completed or failed (cancelled runs count neither way)', () => {
    const b = windowBuckets(at('2026-12-01T10:00:00Z'), 60, 10);
    expect(totalsOf(toSeries(b, [], [])).success_rate).toBeNull();
    expect(totalsOf(toSeries(b, [], [{ bucket: 1, status: 'cancelled', n: 4 }])).success_rate).toBeNull();
    expect(totalsOf(toSeries(b, [], [{ bucket: 1, status: 'failed', n: 3 }])).success_rate).toBe(0);
    const third = totalsOf(
      toSeries(
        b,
        [],
        [
          { bucket: 1, status: 'completed', n: 1 },
          { bucket: 2, status: 'failed', n: 2 },
        ],
      ),
    );
    expect(third.success_rate).toBe(0.3333);
  });

  it('counts as queued what waits in the queue and what executors hold but do not run yet', () => {
    expect(queuedRuns({ pending: 4, delivered: 10 }, 6)).toBe(8);
    // the executors' counts are a few seconds old: never below what waits in the queue
    expect(queuedRuns({ pending: 4, delivered: 2 }, 6)).toBe(4);
    expect(queuedRuns({ pending: null, delivered: null }, 0)).toBeNull();
  });
});
