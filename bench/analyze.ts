import { cpuPerRun, type CpuPerRun } from './cost.js';
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
  sent: number;
  /** planned requests never sent: the stage was stopped, or they timed out waiting for a connection */
  unsent: number;
  /** the generator: how late it took up requests after their due time, and its own CPU */
  generator: {
    sched_lag_ms: Summary;
    cores: number;
    cpu_s: number;
    /** most requests in flight (connections in use) */
    peak_in_flight: number;
    /** requests that found all --max-connections busy, and how long they waited */
    waited_for_connection: number;
    connection_wait_ms: Summary;
  };
  /** more than 1% of the requests waited for a free connection: --max-connections bounded the concurrency */
  connection_limited: boolean;
  /** the generator took up 1% of the requests more than 5 ms late: its own lateness is a visible part of the latency */
  generator_late: boolean;
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
  /** HTTP latency of the accepted (2xx) and of the refused (non-2xx) requests */
  http_ok_ms: Summary;
  http_refused_ms: Summary;
  /** non-2xx responses by error code */
  refused_by_code: Record<string, number>;
  /** completed_at - accepted_at of the stage's completed runs */
  e2e_ms: Summary;
  /** started_at - accepted_at: time in the queue */
  queue_ms: Summary;
  runs: { accepted: number; completed: number; failed: number; other_final: number; not_final: number; missing: number };
  resources: Record<Group, GroupUsage> | null;
  /** system CPU over the stage's window / runs completed in it (see cost.ts; null for the baseline) */
  cpu_per_run: CpuPerRun | null;
}

/**
 * `cpuWindow`: the span (ms since t0) whose CPU is divided by the runs completed in it; null
 * when the stage has no runs to count (the baseline).
 */
export function stageReport(
  st: StageRecord,
  runs: Map<string, RunRow>,
  samples: Sample[],
  t0: number,
  cpuWindow: { fromMs: number; toMs: number } | null,
): StageReport {
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
  const lag = summarize(st.schedLagMs);
  const late = st.schedLagMs.reduce((n, l) => (l > 5 ? n + 1 : n), 0);
  let completedInWindow = 0;
  if (cpuWindow)
    for (const row of runs.values()) {
      const t = row.status === 'completed' && row.completedMs !== null ? row.completedMs - t0 : null;
      if (t !== null && t >= cpuWindow.fromMs && t < cpuWindow.toMs) completedInWindow++;
    }
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
    sent: st.sent,
    unsent: st.unsent,
    generator: {
      sched_lag_ms: lag,
      cores: round(st.generatorCores, 2),
      cpu_s: round(st.generatorCpuS, 2),
      peak_in_flight: st.peakInFlight,
      waited_for_connection: st.connWaitMs.length,
      connection_wait_ms: summarize(st.connWaitMs),
    },
    connection_limited: st.connWaitMs.length > 0.01 * Math.max(1, st.sent),
    generator_late: late > 0.01 * Math.max(1, st.schedLagMs.length),
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
    http_ok_ms: summarize(st.okLatencies),
    http_refused_ms: summarize(st.refusedLatencies),
    refused_by_code: st.refusedByCode,
    e2e_ms: summarize(e2e),
    queue_ms: summarize(queue),
    runs: r,
    resources: usageBetween(samples, st.startMs, st.endMs),
    cpu_per_run: cpuWindow ? cpuPerRun(samples, cpuWindow.fromMs, cpuWindow.toMs, completedInWindow) : null,
  };
}

/**
 * The CPU window of each stage: from its start to the next stage's start, or, for the last
 * stage and for stages followed by a pause (find-max settles between steps), to when its last
 * run completed (at least its planned end). Seamless stages thus split the whole load between
 * them; each one's figure is the CPU spent while it ran over the runs that completed meanwhile.
 */
export function cpuWindows(records: StageRecord[], runs: Map<string, RunRow>, t0: number): { fromMs: number; toMs: number }[] {
  return records.map((st, i) => {
    let last = st.startMs + st.durationS * 1000;
    for (const id of st.runIds) {
      const row = runs.get(id);
      if (row?.status === 'completed' && row.completedMs !== null) last = Math.max(last, row.completedMs - t0);
    }
    const nextStart = records[i + 1]?.startMs;
    return { fromMs: st.startMs, toMs: nextStart !== undefined ? Math.min(nextStart, last) : last };
  });
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
  /** the latest a request due in this second was taken up by the scheduler (ms) */
  sched_lag_max_ms: number | null;
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
      sched_lag_max_ms: b?.schedLagMaxMs === null || b?.schedLagMaxMs === undefined ? null : round(b.schedLagMaxMs, 2),
    });
  }
  return out;
}

/** One row over all stages: counts added up, percentiles over every response and run. */
export function totalsOf(
  records: StageRecord[],
  reports: StageReport[],
  runs: Map<string, RunRow>,
  samples: Sample[],
  t0: number,
  withCpu: boolean,
): StageReport | null {
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
    sent: sum((r) => r.sent),
    unsent: sum((r) => r.unsent),
    generator: {
      sched_lag_ms: summarize(records.flatMap((st) => st.schedLagMs)),
      cores: round(sum((r) => r.generator.cpu_s) / Math.max(0.001, durationS), 2),
      cpu_s: round(
        sum((r) => r.generator.cpu_s),
        2,
      ),
      peak_in_flight: Math.max(...reports.map((r) => r.generator.peak_in_flight)),
      waited_for_connection: sum((r) => r.generator.waited_for_connection),
      connection_wait_ms: summarize(records.flatMap((st) => st.connWaitMs)),
    },
    connection_limited: reports.some((r) => r.connection_limited),
    generator_late: reports.some((r) => r.generator_late),
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
    http_ok_ms: summarize(records.flatMap((st) => st.okLatencies)),
    http_refused_ms: summarize(records.flatMap((st) => st.refusedLatencies)),
    refused_by_code: mergeCounts(records.map((st) => st.refusedByCode)),
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
    cpu_per_run: withCpu ? overallCpuPerRun(records, runs, samples, t0) : null,
  };
}

/** From the start of the load until the last run completed, over every completed run. */
function overallCpuPerRun(records: StageRecord[], runs: Map<string, RunRow>, samples: Sample[], t0: number): CpuPerRun {
  let last = records[records.length - 1].startMs + records[records.length - 1].durationS * 1000;
  let completed = 0;
  for (const st of records)
    for (const id of st.runIds) {
      const row = runs.get(id);
      if (row?.status !== 'completed' || row.completedMs === null) continue;
      completed++;
      last = Math.max(last, row.completedMs - t0);
    }
  return cpuPerRun(samples, records[0].startMs, last, completed);
}

function mergeCounts(all: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of all) for (const [k, n] of Object.entries(c)) out[k] = (out[k] ?? 0) + n;
  return out;
}
