import { renderChart, type Marker, type Panel } from './chart.js';
import type { StageReport, TimelinePoint } from './analyze.js';
import type { StepCheck } from './db.js';
import { GROUPS, type Group, type GroupUsage } from './procstat.js';
import { fmt } from './stats.js';

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
    sampled_runtime_pid: number | null;
  };
  /** the load generator's own health: its event-loop delay during the load (ms) */
  generator: { loop_lag_p99_ms: number; loop_lag_max_ms: number; slices: number; max_connections: number };
  timeline: TimelinePoint[];
  files: Record<string, string>;
}

const GROUP_LABEL: Record<Group, string> = {
  runtime: 'runtime (node)',
  nats: 'nats-server',
  postgres: 'postgres (all)',
  redis: 'redis-server',
  bench: 'bench (autocannon)',
  other: 'everything else on the machine',
};

export function renderMarkdown(r: BenchResult): string {
  const L: string[] = [];
  L.push(`# Bench ${r.started_at}`, '');
  L.push(`- profile: **${r.profile}**; target ${r.mode === 'child' ? `child runtime at ${r.url}` : r.url}; database ${r.database}`);
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
      L.push('| offered/s | achieved/s | 2xx % | HTTP p95 ms | drained | result |', '|---:|---:|---:|---:|:--|:--|');
      for (const s of f.steps) {
        L.push(
          `| ${s.rate} | ${fmt(s.achieved_rps)} | ${fmt(s.success_pct, 2)} | ${fmt(s.p95_ms, 1)} | ${s.drained ? 'yes' : 'no'} (${fmt(s.settle_ms / 1000, 1)} s) | ${s.pass ? 'pass' : `fail: ${s.reasons.join('; ')}`} |`,
        );
      }
      L.push('');
    }
  }

  L.push('## Stages', '');
  L.push(
    '| # | stage | wf | s | offered/s | achieved/s | 2xx | non-2xx | errors | HTTP p50 | p95 | p99 | max | E2E p50 | p95 | p99 | runtime cores | pg cores | other cores |',
  );
  L.push('|--:|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  const rows = [...r.stages, ...(r.totals ? [r.totals] : [])];
  for (const s of rows) {
    const total = s === r.totals;
    L.push(
      `| ${total ? '' : s.index + 1} | ${total ? '**all stages**' : s.label} | ${s.workflow} | ${s.duration_s} | ${fmt(s.offered_rps)} | ${fmt(s.achieved_rps)} | ${s.ok} | ${s.non2xx} | ${s.errors} | ${fmt(s.http_ms.p50, 2)} | ${fmt(s.http_ms.p95, 2)} | ${fmt(s.http_ms.p99, 2)} | ${fmt(s.http_ms.max, 1)} | ${fmt(s.e2e_ms.p50)} | ${fmt(s.e2e_ms.p95)} | ${fmt(s.e2e_ms.p99)} | ${fmt(s.resources?.runtime.cores, 2)} | ${fmt(s.resources?.postgres.cores, 2)} | ${fmt(s.resources?.other.cores, 2)} |`,
    );
  }
  L.push(
    '',
    'Latencies in ms. HTTP: request written → response read (autocannon). E2E: `completed_at − accepted_at` from `workflow_instances`. ' +
      'Cores: CPU seconds per wall second during the stage; "other" is every process outside the system under test and the bench (a busy machine makes every figure noisier).',
    '',
  );
  const notes = r.stages.flatMap((s) => [
    ...Object.entries(s.non2xx_samples).map(
      ([code, body]) => `- stage ${s.index + 1}: HTTP ${code} ×${s.non2xx_by_status[code]}: \`${body.replace(/`/g, "'").slice(0, 200)}\``,
    ),
    ...s.error_samples.map((e) => `- stage ${s.index + 1}: error \`${e}\` (${s.errors} errors, ${s.timeouts} timeouts)`),
    ...(s.late
      ? [`- stage ${s.index + 1}: ${s.late} responses arrived more than 1 s after the stage's end (not counted as achieved)`]
      : []),
    ...(s.sent < s.planned ? [`- stage ${s.index + 1}: ${s.planned - s.sent} planned requests were never sent`] : []),
    ...(s.client_limited
      ? [
          `- stage ${s.index + 1}: **client-limited?** ${s.connections} connections at ${s.per_connection_rate} req/s each with mean latency ${fmt(s.http_ms.mean)} ms: rerun with a higher --max-connections to tell`,
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
  L.push(
    '',
    `Load generator: autocannon in the bench process, ${r.generator.slices} staggered instances per second; its event-loop delay p99 ${fmt(r.generator.loop_lag_p99_ms, 1)} ms, max ${fmt(r.generator.loop_lag_max_ms, 1)} ms (HTTP latencies include it).`,
    '',
  );
  if (r.files.svg) L.push('## Over time', '', `![latency, throughput and CPU over time](${r.files.svg})`, '');
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
        { name: 'bench loop lag (max)', color: '#aaaaaa', values: tl.map((p) => p.bench_loop_lag_ms), dashed: true },
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
