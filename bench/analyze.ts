import type { RunRow } from './db.js';
import { GROUPS, usageBetween, type Group, type GroupUsage, type Sample } from './procstat.js';
import type { Recorder, StageRecord } from './recorder.js';
import { pct, round, summarize, type Summary } from './stats.js';

/** Responses later than this after a stage's planned end do not count toward its achieved rate. */
export const LATE_GRACE_MS = 1000;

export interface StageReport {
  index: number;
  label: string;
  workflow: string;
  from: number;
  to: number;
  duration_s: number;
  /** seconds since the load started */
  start_s: number;
  wall_s: number;
  offered_rps: number;
  /** 2xx responses that arrived within the stage (+1 s grace), per planned second */
  achieved_rps: number;
  planned: number;
  connections: number;
  per_connection_rate: number;
  /** achieved < 95% of offered while a connection's requests of one second (sent one after
   * another) took most of that second: the generator, not the system, may have set the rate */
  client_limited: boolean;
  sent: number;
  responses: number;
  ok: number;
  late: number;
  non2xx: number;
  non2xx_by_status: Record<string, number>;
  non2xx_samples: Record<string, string>;
  errors: number;
  timeouts: number;
  error_samples: string[];
  missing_run_id: number;
  /** 2xx / planned */
  success_pct: number | null;
  http_ms: Summary;
  /** completed_at - accepted_at of the stage's completed runs */
  e2e_ms: Summary;
  /** started_at - accepted_at: time in the queue */
  queue_ms: Summary;
  runs: { accepted: number; completed: number; failed: number; other_final: number; not_final: number; missing: number };
  resources: Record<Group, GroupUsage> | null;
}

export function stageReport(st: StageRecord, runs: Map<string, RunRow>, samples: Sample[], t0: number): StageReport {
  const windowEnd = t0 + st.startMs + st.durationS * 1000 + LATE_GRACE_MS;
  const e2e: number[] = [];
  const queue: number[] = [];
  const r = { accepted: st.runIds.length, completed: 0, failed: 0, other_final: 0, not_final: 0, missing: 0 };
  let inWindow = 0;
  for (const id of st.runIds) {
    const row = runs.get(id);
    if (!row) {
      r.missing++;
      continue;
    }
    if (row.status === 'completed') r.completed++;
    else if (row.status === 'failed') r.failed++;
    else if (row.status === 'cancelled') r.other_final++;
    else r.not_final++;
    if (row.status === 'completed' && row.completedMs !== null && row.acceptedMs !== null) e2e.push(row.completedMs - row.acceptedMs);
    if (row.startedMs !== null && row.acceptedMs !== null) queue.push(row.startedMs - row.acceptedMs);
  }
  for (const t of st.okArrivals) if (t <= windowEnd - t0) inWindow++;
  const non2xx = Object.values(st.non2xx).reduce((n, c) => n + c, 0);
  const http = summarize(st.latencies);
  const achieved = inWindow / st.durationS;
  const offered = st.planned / st.durationS;
  return {
    index: st.index,
    label: st.label,
    workflow: st.workflow,
    from: st.from,
    to: st.to,
    duration_s: st.durationS,
    start_s: round(st.startMs / 1000, 1),
    wall_s: round((st.endMs - st.startMs) / 1000, 1),
    offered_rps: round(st.planned / st.durationS, 1),
    achieved_rps: round(achieved, 1),
    planned: st.planned,
    connections: st.connections,
    per_connection_rate: st.perConnectionRate,
    client_limited: achieved < 0.95 * offered && st.perConnectionRate * (http.mean ?? 0) > 800,
    sent: st.sent,
    responses: st.responses,
    ok: st.ok,
    late: st.ok - inWindow,
    non2xx,
    non2xx_by_status: st.non2xx,
    non2xx_samples: st.non2xxSamples,
    errors: st.errors,
    timeouts: st.timeouts,
    error_samples: st.errorSamples,
    missing_run_id: st.missingRunId,
    success_pct: pct(st.ok, st.planned),
    http_ms: http,
    e2e_ms: summarize(e2e),
    queue_ms: summarize(queue),
    runs: r,
    resources: usageBetween(samples, st.startMs, st.endMs),
  };
}

export interface TimelinePoint {
  t: number;
  offered: number;
  ok: number;
  non2xx: number;
  errors: number;
  http_p50: number | null;
  http_p95: number | null;
  http_p99: number | null;
  /** runs completed in this second (Postgres completed_at) */
  completed: number;
  /** p95 of completed_at - accepted_at for runs accepted in this second */
  e2e_p95: number | null;
  cores: Partial<Record<Group, number>>;
  /** the bench process's own event-loop delay (max in this second, ms) */
  bench_loop_lag_ms: number | null;
}

export function timeline(rec: Recorder, runs: Map<string, RunRow>, samples: Sample[]): TimelinePoint[] {
  const completed: number[] = [];
  const e2eBy: number[][] = [];
  for (const row of runs.values()) {
    if (row.completedMs !== null) {
      const s = Math.floor((row.completedMs - rec.t0) / 1000);
      if (s >= 0) completed[s] = (completed[s] ?? 0) + 1;
    }
    if (row.status === 'completed' && row.completedMs !== null && row.acceptedMs !== null) {
      const s = Math.floor((row.acceptedMs - rec.t0) / 1000);
      if (s >= 0) (e2eBy[s] ??= []).push(row.completedMs - row.acceptedMs);
    }
  }
  const cpuAt: Partial<Record<Group, number>>[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const s = Math.floor(b.t / 1000);
    const dt = (b.t - a.t) / 1000;
    if (s < 0 || dt <= 0) continue;
    const c: Partial<Record<Group, number>> = {};
    for (const g of GROUPS) c[g] = round(Math.max(0, b.groups[g].cpuS - a.groups[g].cpuS) / dt, 2);
    cpuAt[s] = c;
  }
  const n = Math.max(rec.buckets.length, completed.length, e2eBy.length);
  const out: TimelinePoint[] = [];
  for (let s = 0; s < n; s++) {
    const b = rec.buckets[s];
    const lat = b ? summarize(b.latencies) : null;
    const e2e = e2eBy[s] ? summarize(e2eBy[s]) : null;
    out.push({
      t: s,
      offered: b?.offered ?? 0,
      ok: b?.ok ?? 0,
      non2xx: b?.non2xx ?? 0,
      errors: b?.errors ?? 0,
      http_p50: lat?.p50 ?? null,
      http_p95: lat?.p95 ?? null,
      http_p99: lat?.p99 ?? null,
      completed: completed[s] ?? 0,
      e2e_p95: e2e?.p95 ?? null,
      cores: cpuAt[s] ?? {},
      bench_loop_lag_ms: b?.loopLagMs ?? null,
    });
  }
  return out;
}

/** One row over all stages: counts added up, percentiles over every response and run. */
export function totalsOf(records: StageRecord[], reports: StageReport[], runs: Map<string, RunRow>, samples: Sample[]): StageReport | null {
  if (!records.length) return null;
  const sum = (f: (r: StageReport) => number) => reports.reduce((n, r) => n + f(r), 0);
  const latencies: number[] = [];
  const e2e: number[] = [];
  const queue: number[] = [];
  const non2xx: Record<string, number> = {};
  for (const st of records) {
    for (const l of st.latencies) latencies.push(l);
    for (const [c, n] of Object.entries(st.non2xx)) non2xx[c] = (non2xx[c] ?? 0) + n;
    for (const id of st.runIds) {
      const row = runs.get(id);
      if (!row || row.acceptedMs === null) continue;
      if (row.status === 'completed' && row.completedMs !== null) e2e.push(row.completedMs - row.acceptedMs);
      if (row.startedMs !== null) queue.push(row.startedMs - row.acceptedMs);
    }
  }
  const durationS = records.reduce((n, s) => n + s.durationS, 0);
  const first = records[0];
  const last = records[records.length - 1];
  const planned = sum((r) => r.planned);
  const ok = sum((r) => r.ok);
  const workflows = [...new Set(records.map((s) => s.workflow))].join('+');
  return {
    index: -1,
    label: 'all stages',
    workflow: workflows,
    from: Math.min(...records.map((s) => Math.min(s.from, s.to))),
    to: Math.max(...records.map((s) => Math.max(s.from, s.to))),
    duration_s: durationS,
    start_s: round(first.startMs / 1000, 1),
    wall_s: round((last.endMs - first.startMs) / 1000, 1),
    offered_rps: round(planned / durationS, 1),
    achieved_rps: round((ok - sum((r) => r.late)) / durationS, 1),
    planned,
    connections: Math.max(...reports.map((r) => r.connections)),
    per_connection_rate: Math.max(...reports.map((r) => r.per_connection_rate)),
    client_limited: reports.some((r) => r.client_limited),
    sent: sum((r) => r.sent),
    responses: sum((r) => r.responses),
    ok,
    late: sum((r) => r.late),
    non2xx: sum((r) => r.non2xx),
    non2xx_by_status: non2xx,
    non2xx_samples: {},
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    error_samples: [],
    missing_run_id: sum((r) => r.missing_run_id),
    success_pct: pct(ok, planned),
    http_ms: summarize(latencies),
    e2e_ms: summarize(e2e),
    queue_ms: summarize(queue),
    runs: {
      accepted: sum((r) => r.runs.accepted),
      completed: sum((r) => r.runs.completed),
      failed: sum((r) => r.runs.failed),
      other_final: sum((r) => r.runs.other_final),
      not_final: sum((r) => r.runs.not_final),
      missing: sum((r) => r.runs.missing),
    },
    resources: usageBetween(samples, first.startMs, last.endMs),
  };
}
