/** Percentiles by nearest rank over a copy of the values (the input is left as it is). */
export interface Summary {
  count: number;
  min: number | null;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

export function summarize(values: ArrayLike<number>): Summary {
  const n = values.length;
  if (n === 0) return { count: 0, min: null, mean: null, p50: null, p90: null, p95: null, p99: null, max: null };
  const a = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += a[i];
  return {
    count: n,
    min: round(a[0]),
    mean: round(sum / n),
    p50: round(rank(a, 0.5)),
    p90: round(rank(a, 0.9)),
    p95: round(rank(a, 0.95)),
    p99: round(rank(a, 0.99)),
    max: round(a[n - 1]),
  };
}

export function percentile(values: ArrayLike<number>, p: number): number | null {
  if (values.length === 0) return null;
  return rank(Float64Array.from(values).sort(), p);
}

function rank(sorted: Float64Array, p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i];
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** "12.3" / "-" for tables */
export function fmt(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(digits).replace(/\.0+$/, '');
}

export function pct(part: number, whole: number): number | null {
  return whole > 0 ? round((100 * part) / whole, 3) : null;
}
