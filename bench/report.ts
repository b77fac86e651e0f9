import { renderChart, type Marker, type Panel } from './chart.js';
import type { StageReport, TimelinePoint } from './analyze.js';
import type { StepCheck } from './db.js';
import { GROUPS, type Group, type GroupUsage } from './procstat.js';
import { fmt } from './stats.js';

/** `--baseline`: the same stages against a trivial node:http server, just before the system. */
export interface BaselineReport {
  url: string;
  pid: number;
  stages: StageReport[];
  totals: StageReport | null;
}

export interface FindMaxStep {
  rate: number;
  stage: number;
  p95_ms: number | null;
  success_pct: number | null;
  achieved_rps: number;
  /** every run of the step final within the settle wait */
  drained: boolean;
  settle_ms: number;
  pass: boolean;
  reasons: string[];
}

export interface FindMaxReport {
  workflow: string;
  steps: FindMaxStep[];
  /** highest offered rate that passed, null when the first step failed */
  max_sustained_rps: number | null;
  stopped_by: string;
}

export interface Reconciliation {
  accepted: number;
  duplicate_run_ids: number;
  found: number;
  missing: number;
  not_final: number;
  lost: number;
  completed: number;
  failed: number;
  cancelled: number;
  redelivered_runs: number;
  steps: StepCheck;
  unobserved_runs: number;
  drain_waited_ms: number;
  runtime_log: { error_lines: number; unique_violations: number; file: string } | null;
  pg_rollbacks: number | null;
  pg_deadlocks: number | null;
  ok: boolean;
  problems: string[];
}

export interface BenchResult {
  version: 1;
  started_at: string;
  finished_at: string;
  profile: string;
  mode: 'child' | 'url';
  /** the child runtime's mode (services, postgres, embedded); null with --url */
  runtime_mode?: string | null;
  url: string;
  database: string;
  git: { commit: string | null; dirty: boolean | null };
  machine: { cpus: number; cpu_model: string; mem_gb: number; node: string; platform: string };
  options: Record<string, unknown>;
  workflows: Record<string, { id: string; name: string; steps: number }>;
  stages: StageReport[];
  totals: StageReport | null;
  thresholds: { http_req_failed_pct: number | null; http_p95_ms: number | null; p95_bound_ms: number; pass: boolean } | null;
  find_max: { p95_bound_ms: number; results: FindMaxReport[] } | null;
  reconciliation: Reconciliation;
  resources: {
    load: Record<Group, GroupUsage> | null;
    load_and_drain: Record<Group, GroupUsage> | null;
    sampled_runtime_pids: number[];
  };
  /** the load generator's settings and its event-loop delay over the load (ms) */
  generator: { loop_lag_p99_ms: number; loop_lag_max_ms: number; max_connections: number; timeout_s: number };
  baseline: BaselineReport | null;
  timeline: TimelinePoint[];
  files: Record<string, string>;
}

const GROUP_LABEL: Record<Group, string> = {
  runtime: 'runtime (node)',
  nats: 'nats-server',
  postgres: 'postgres (bench database + shared processes)',
  redis: 'redis-server',
  bench: 'bench (the load generator)',
  other: 'everything else on the machine',
};

export function renderMarkdown(r: BenchResult): string {
  const L: string[] = [];
  L.push(`# Bench ${r.started_at}`, '');
  L.push(
    `- profile: **${r.profile}**; target ${r.mode === 'child' ? `child runtime (${r.runtime_mode ?? 'services'} mode) at ${r.url}` : r.url}; database ${r.database}`,
  );
  L.push(
    `- git ${r.git.commit?.slice(0, 12) ?? '?'}${r.git.dirty ? ' (uncommitted changes)' : ''}; node ${r.machine.node}; ${r.machine.cpus} × ${r.machine.cpu_model}; ${r.machine.mem_gb} GB`,
  );
  L.push(
    `- workflows: ${Object.entries(r.workflows)
      .map(([k, w]) => `${k} \`${w.name}\` (${w.steps} step row${w.steps > 1 ? 's' : ''} per run)`)
      .join(', ')}`,
  );
  if (r.thresholds) {
    const t = r.thresholds;
    L.push(
      `- seed thresholds: http_req_failed ${fmt(t.http_req_failed_pct, 3)}% (< 1%), HTTP p95 ${fmt(t.http_p95_ms, 1)} ms (< ${t.p95_bound_ms}) → **${t.pass ? 'PASS' : 'FAIL'}**`,
    );
  }
  const rc = r.reconciliation;
  L.push(
    `- reconciliation: **${rc.ok ? 'OK' : 'PROBLEMS'}**: ${rc.accepted} accepted, ${rc.lost} lost, ${rc.failed} failed, ${rc.steps.duplicatedSteps} duplicated steps`,
  );
  const cost = r.totals?.cpu_per_run;
  if (cost?.us_per_run) {
    const u = cost.us_per_run;
    L.push(
      `- CPU per run: **${fmt(u.total, 0)} µs** (runtime ${fmt(u.runtime, 0)}, postgres ${fmt(u.postgres, 0)}, nats-server ${fmt(u.nats, 0)}, redis ${fmt(u.redis, 0)}) over ${cost.completed_runs} completed runs, ${fmt(cost.from_s, 1)}–${fmt(cost.to_s, 1)} s; the generator used ${fmt(u.bench, 0)} µs per run more, everything else on the machine ${fmt(cost.cores?.other, 2)} cores`,
    );
  }
  if (r.baseline?.totals && r.totals) {
    L.push(
      `- baseline (trivial node:http server, same stages just before): HTTP p95 ${fmt(r.baseline.totals.http_ms.p95, 2)} ms vs the system's ${fmt(r.totals.http_ms.p95, 2)} ms (+${fmt((r.totals.http_ms.p95 ?? 0) - (r.baseline.totals.http_ms.p95 ?? 0), 2)} ms)`,
    );
  }
  L.push('');

  if (r.find_max) {
    L.push(
      '## Find max',
      '',
      `A step passes when HTTP p95 ≤ ${r.find_max.p95_bound_ms} ms, 2xx ≥ 99% of the planned requests, and achieved ≥ 95% of offered.`,
      '',
    );
    for (const f of r.find_max.results) {
      L.push(
        `### ${f.workflow}-step workflow: max sustained **${f.max_sustained_rps ?? 'none'}${f.max_sustained_rps ? ' req/s' : ''}** (${f.stopped_by})`,
        '',
      );
      L.push(
        '| offered/s | achieved/s | 2xx % | HTTP p50 ms | HTTP p95 ms | E2E p95 ms | send lag p99 ms | CPU µs/run | drained | result |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|:--|:--|',
      );
      for (const s of f.steps) {
        const st = r.stages[s.stage];
        L.push(
          `| ${s.rate} | ${fmt(s.achieved_rps)} | ${fmt(s.success_pct, 2)} | ${fmt(st?.http_ms.p50, 1)} | ${fmt(s.p95_ms, 1)} | ${fmt(st?.e2e_ms.p95)} | ${fmt(st?.generator.sched_lag_ms.p99, 1)} | ${fmt(st?.cpu_per_run?.us_per_run?.total, 0)} | ${s.drained ? 'yes' : 'no'} (${fmt(s.settle_ms / 1000, 1)} s) | ${s.pass ? 'pass' : `fail: ${s.reasons.join('; ')}`} |`,
        );
      }
      L.push('');
    }
  }

  L.push('## Stages', '');
  L.push(
    '| # | stage | wf | s | offered/s | achieved/s | 2xx | non-2xx | errors | HTTP p50 | p95 | p99 | max | E2E p50 | p95 | p99 | CPU µs/run | runtime cores | pg cores | other cores |',
  );
  L.push('|--:|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  const rows = [...r.stages, ...(r.totals ? [r.totals] : [])];
  for (const s of rows) {
    const total = s === r.totals;
    L.push(
      `| ${total ? '' : s.index + 1} | ${total ? '**all stages**' : s.label} | ${s.workflow} | ${s.duration_s} | ${fmt(s.offered_rps)} | ${fmt(s.achieved_rps)} | ${s.ok} | ${s.non2xx} | ${s.errors} | ${fmt(s.http_ms.p50, 2)} | ${fmt(s.http_ms.p95, 2)} | ${fmt(s.http_ms.p99, 2)} | ${fmt(s.http_ms.max, 1)} | ${fmt(s.e2e_ms.p50)} | ${fmt(s.e2e_ms.p95)} | ${fmt(s.e2e_ms.p99)} | ${fmt(s.cpu_per_run?.us_per_run?.total, 0)} | ${fmt(s.resources?.runtime.cores, 2)} | ${fmt(s.resources?.postgres.cores, 2)} | ${fmt(s.resources?.other.cores, 2)} |`,
    );
  }
  L.push(
    '',
    "Latencies in ms. HTTP: from the request's due time (its place in the evenly spaced schedule) to the response read, so the generator's own lateness and any wait for a free connection are inside it. " +
      "E2E: `completed_at − accepted_at` from `workflow_instances`. CPU µs/run: the system's CPU during the stage / runs completed meanwhile (below). " +
      'Cores: CPU seconds per wall second during the stage; "other" is every process outside the system under test and the bench (a busy machine makes every figure noisier).',
    '',
  );

  if (rows.some((s) => s.non2xx > 0)) {
    L.push('## Accepted and refused', '');
    L.push(
      '| # | stage | accepted | p50 | p95 | p99 | refused | p50 | p95 | p99 | max | refused by code |',
      '|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|:--|',
    );
    for (const s of rows) {
      const total = s === r.totals;
      const codes = Object.entries(s.refused_by_code ?? {})
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      L.push(
        `| ${total ? '' : s.index + 1} | ${total ? '**all stages**' : s.label} | ${s.ok} | ${fmt(s.http_ok_ms?.p50, 2)} | ${fmt(s.http_ok_ms?.p95, 2)} | ${fmt(s.http_ok_ms?.p99, 2)} | ${s.non2xx} | ${fmt(s.http_refused_ms?.p50, 2)} | ${fmt(s.http_refused_ms?.p95, 2)} | ${fmt(s.http_refused_ms?.p99, 2)} | ${fmt(s.http_refused_ms?.max, 1)} | ${codes} |`,
      );
    }
    L.push(
      '',
      'HTTP latency (ms, from the due time) of the requests the system accepted (2xx) and of those it refused (non-2xx: admission control answers 503 E_OVERLOADED at once).',
      '',
    );
  }

  L.push('## Generator', '');
  L.push(
    '| # | stage | sent | unsent | send lag p50 ms | p99 | max | waited for a connection | wait p99 ms | peak in flight | generator cores |',
    '|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  );
  for (const s of rows) {
    const g = s.generator;
    L.push(
      `| ${s === r.totals ? '' : s.index + 1} | ${s === r.totals ? '**all stages**' : s.label} | ${s.sent} | ${s.unsent} | ${fmt(g.sched_lag_ms.p50, 2)} | ${fmt(g.sched_lag_ms.p99, 2)} | ${fmt(g.sched_lag_ms.max, 1)} | ${g.waited_for_connection} | ${fmt(g.connection_wait_ms.p99, 1)} | ${g.peak_in_flight} | ${fmt(g.cores, 2)} |`,
    );
  }
  L.push(
    '',
    `Send lag: how long after its due time the scheduler sent each request (timers tick per millisecond; more means the bench process was busy). ` +
      `At most ${r.generator.max_connections} requests are in flight (keep-alive connections, opened as needed); more wait for one. ` +
      `Generator cores: the bench process's own CPU (process.cpuUsage) over the stage. Its event-loop delay over the load: p99 ${fmt(r.generator.loop_lag_p99_ms, 1)} ms, max ${fmt(r.generator.loop_lag_max_ms, 1)} ms.`,
    '',
  );

  const costRows = rows.filter((s) => s.cpu_per_run);
  if (costRows.length) {
    L.push('## CPU per run', '');
    L.push(
      '| # | stage | window s | completed runs | **total µs/run** | runtime | postgres | nats-server | redis | generator (not in total) | system cores | other cores |',
      '|--:|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    );
    for (const s of costRows) {
      const c = s.cpu_per_run!;
      const u = c.us_per_run;
      L.push(
        `| ${s === r.totals ? '' : s.index + 1} | ${s === r.totals ? '**load start → last run completed**' : s.label} | ${fmt(c.from_s, 1)}–${fmt(c.to_s, 1)} | ${c.completed_runs} | **${fmt(u?.total, 0)}** | ${fmt(u?.runtime, 0)} | ${fmt(u?.postgres, 0)} | ${fmt(u?.nats, 0)} | ${fmt(u?.redis, 0)} | ${fmt(u?.bench, 0)} | ${fmt(c.cores?.total, 2)} | ${fmt(c.cores?.other, 2)} |`,
      );
    }
    L.push(
      '',
      "CPU of the system under test (the runtime process with its threads, nats-server, redis-server, and the postgres processes: the shared background ones and the backends of the bench database; other databases' backends are not counted) " +
        "over the window, interpolated between the 1-second /proc samples, divided by the runs that completed in it. A stage's window runs to the next stage's start, or to its last completion when a pause follows. " +
        'NATS, Redis and the shared postgres processes also serve whatever else runs on the machine: "other cores" says how busy the rest of it was.',
      '',
    );
  }

  if (r.baseline) {
    const b = r.baseline;
    L.push('## Baseline: a trivial node:http server', '');
    L.push(
      `The same stages, driven by the same generator against a child process answering \`{}\` to every request (${b.url}), just before the system's. Δ = system − baseline.`,
      '',
    );
    L.push(
      '| # | stage | achieved/s sys / base | HTTP p50 sys / base | p95 sys / base | **Δ p95** | p99 sys / base | send lag p99 sys / base | generator cores sys / base | server cores |',
      '|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|',
    );
    const pairs: [StageReport, StageReport | undefined][] = r.stages.map((s, i) => [s, b.stages[i]]);
    if (r.totals && b.totals) pairs.push([r.totals, b.totals]);
    for (const [s, base] of pairs) {
      const total = s === r.totals;
      const d = s.http_ms.p95 !== null && base?.http_ms.p95 != null ? s.http_ms.p95 - base.http_ms.p95 : null;
      L.push(
        `| ${total ? '' : s.index + 1} | ${total ? '**all stages**' : s.label} | ${fmt(s.achieved_rps)} / ${fmt(base?.achieved_rps)} | ${fmt(s.http_ms.p50, 2)} / ${fmt(base?.http_ms.p50, 2)} | ${fmt(s.http_ms.p95, 2)} / ${fmt(base?.http_ms.p95, 2)} | **${d === null ? '-' : `${d >= 0 ? '+' : ''}${fmt(d, 2)}`}** | ${fmt(s.http_ms.p99, 2)} / ${fmt(base?.http_ms.p99, 2)} | ${fmt(s.generator.sched_lag_ms.p99, 2)} / ${fmt(base?.generator.sched_lag_ms.p99, 2)} | ${fmt(s.generator.cores, 2)} / ${fmt(base?.generator.cores, 2)} | ${fmt(base?.resources?.runtime.cores, 2)} |`,
      );
    }
    L.push('');
  }
  const notes = r.stages.flatMap((s) => [
    ...Object.entries(s.non2xx_samples).map(
      ([code, body]) => `- stage ${s.index + 1}: HTTP ${code} ×${s.non2xx_by_status[code]}: \`${body.replace(/`/g, "'").slice(0, 200)}\``,
    ),
    ...s.error_samples.map((e) => `- stage ${s.index + 1}: error \`${e}\` (${s.errors} errors, ${s.timeouts} timeouts)`),
    ...(s.late
      ? [`- stage ${s.index + 1}: ${s.late} responses arrived more than 1 s after the stage's end (not counted as achieved)`]
      : []),
    ...(s.unsent
      ? [`- stage ${s.index + 1}: ${s.unsent} planned requests were never sent (stopped, or timed out waiting for a connection)`]
      : []),
    ...(s.connection_limited
      ? [
          `- stage ${s.index + 1}: **connection-limited**: ${s.generator.waited_for_connection} requests found all ${r.generator.max_connections} connections busy (wait p99 ${fmt(s.generator.connection_wait_ms.p99)} ms, inside their latency); a higher --max-connections would put more in flight at once`,
        ]
      : []),
    ...(s.generator_late
      ? [
          `- stage ${s.index + 1}: **the generator ran late**: send lag p99 ${fmt(s.generator.sched_lag_ms.p99, 1)} ms, max ${fmt(s.generator.sched_lag_ms.max)} ms (the bench process was busy; that lateness is inside the latencies)`,
        ]
      : []),
  ]);
  if (notes.length) L.push(...notes.slice(0, 30), '');

  L.push('## Reconciliation against Postgres', '');
  L.push('| check | value |', '|:--|--:|');
  L.push(`| run_ids accepted (2xx with run_id) | ${rc.accepted} |`);
  L.push(`| duplicate run_ids in responses | ${rc.duplicate_run_ids} |`);
  L.push(`| rows found in workflow_instances | ${rc.found} |`);
  L.push(
    `| **lost** (missing ${rc.missing} + not final ${rc.not_final} after ${fmt(rc.drain_waited_ms / 1000, 1)} s drain) | **${rc.lost}** |`,
  );
  L.push(`| completed / failed / cancelled | ${rc.completed} / ${rc.failed} / ${rc.cancelled} |`);
  L.push(`| step rows | ${rc.steps.stepRows} |`);
  L.push(`| duplicated steps (rows per (instance_id, step_name) > 1) | ${rc.steps.duplicatedSteps} |`);
  L.push(`| unique index on (instance_id, step_name) | ${rc.steps.uniqueIndex ? 'present' : '**absent**'} |`);
  L.push(`| unique violations in the runtime log | ${rc.runtime_log ? rc.runtime_log.unique_violations : 'n/a'} |`);
  L.push(`| completed runs with a wrong number of step rows | ${rc.steps.runsWithWrongStepCount} |`);
  L.push(`| step rows not completed (of completed runs) | ${rc.steps.stepsNotCompleted} |`);
  L.push(`| step rows with retry_count > 0 | ${rc.steps.retriedSteps} |`);
  L.push(`| runs delivered more than once (deliveries > 1) | ${rc.redelivered_runs} |`);
  L.push(`| rows of the bench workflows without a response (cut off / timed out) | ${rc.unobserved_runs} |`);
  L.push(`| runtime log lines at error level | ${rc.runtime_log ? rc.runtime_log.error_lines : 'n/a'} |`);
  L.push(`| Postgres rollbacks / deadlocks during the run | ${rc.pg_rollbacks ?? 'n/a'} / ${rc.pg_deadlocks ?? 'n/a'} |`);
  if (rc.problems.length) L.push('', ...rc.problems.map((p) => `- **${p}**`));
  L.push('');

  L.push('## Resources', '');
  L.push(
    'Sampled from /proc every second. Cores = CPU seconds / wall seconds (this machine has ' +
      r.machine.cpus +
      '). RSS is summed over the group\'s processes (postgres counts shared buffers once per backend; "private" is RssAnon).',
    '',
  );
  L.push(
    '| process | CPU s (load) | cores (load) | CPU s (load + drain) | peak RSS MB | peak private MB | max procs |',
    '|:--|--:|--:|--:|--:|--:|--:|',
  );
  for (const g of GROUPS) {
    const a = r.resources.load?.[g];
    const b = r.resources.load_and_drain?.[g];
    const mem = g === 'other' ? '| - | - | - |' : `| ${fmt(b?.peakRssMb, 0)} | ${fmt(b?.peakAnonMb, 0)} | ${b?.maxProcs ?? '-'} |`;
    L.push(`| ${GROUP_LABEL[g]} | ${fmt(a?.cpuS, 1)} | ${fmt(a?.cores, 2)} | ${fmt(b?.cpuS, 1)} ${mem}`);
  }
  L.push('');
  if (r.files.svg?.startsWith('raw/'))
    L.push('## Over time', '', `The chart is over 60 KB: it stays with the raw JSON in \`${r.files.svg}\` (not in git).`, '');
  else if (r.files.svg) L.push('## Over time', '', `![latency, throughput and CPU over time](${r.files.svg})`, '');
  L.push(
    `Files: ${Object.entries(r.files)
      .map(([k, f]) => `${k} \`${f}\``)
      .join(', ')}`,
    '',
  );
  return L.join('\n');
}

export function renderTimelineSvg(r: BenchResult): string {
  const tl = r.timeline;
  const markers: Marker[] = r.stages.map((s) => ({ atS: s.start_s, label: `${s.index + 1}` }));
  const COLORS: Record<Group, string> = {
    runtime: '#d62728',
    postgres: '#1f77b4',
    nats: '#2ca02c',
    redis: '#9467bd',
    bench: '#7f7f7f',
    other: '#e377c2',
  };
  const panels: Panel[] = [
    {
      title: 'Latency per second (log scale)',
      unit: 'ms',
      log: true,
      series: [
        { name: 'HTTP p50', color: '#2ca02c', values: tl.map((p) => p.http_p50) },
        { name: 'HTTP p95', color: '#ff7f0e', values: tl.map((p) => p.http_p95) },
        { name: 'HTTP p99', color: '#d62728', values: tl.map((p) => p.http_p99) },
        { name: 'E2E p95 (by accept)', color: '#1f77b4', values: tl.map((p) => p.e2e_p95), dashed: true },
        { name: 'send lag (max)', color: '#aaaaaa', values: tl.map((p) => p.sched_lag_max_ms), dashed: true },
      ],
    },
    {
      title: 'Throughput per second',
      unit: 'req/s',
      series: [
        { name: 'offered', color: '#999999', values: tl.map((p) => p.offered), dashed: true },
        { name: '2xx responses', color: '#ff7f0e', values: tl.map((p) => p.ok) },
        { name: 'runs completed', color: '#1f77b4', values: tl.map((p) => p.completed) },
        { name: 'non-2xx + errors', color: '#d62728', values: tl.map((p) => p.non2xx + p.errors) },
      ],
    },
    {
      title: 'CPU per process group',
      unit: 'cores',
      series: GROUPS.map((g) => ({ name: g, color: COLORS[g], values: tl.map((p) => p.cores[g] ?? null) })),
    },
  ];
  return renderChart(`${r.profile} · ${r.started_at}`, panels, markers, Math.max(1, tl.length));
}
