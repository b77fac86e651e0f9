import { cpuBetween, type Group, type Sample } from './procstat.js';
import { round } from './stats.js';

/** The processes of the system under test: what a run costs is their CPU. */
export const SYSTEM_GROUPS = ['runtime', 'postgres', 'nats', 'redis'] as const satisfies readonly Group[];

/**
 * CPU per run: the CPU of the system's processes (the runtime with its threads, nats-server,
 * the postgres processes of the measured database and the shared ones, redis-server) over a
 * window, divided by the runs completed in it. The bench process (the generator) is not part
 * of the system and is shown beside it; "other" (everything else on the machine) says how
 * noisy the window was.
 */
export interface CpuPerRun {
  /** seconds since the load's t0 */
  from_s: number;
  to_s: number;
  completed_runs: number;
  /** µs of CPU per completed run: the system's total and each group */
  us_per_run: Record<'total' | (typeof SYSTEM_GROUPS)[number] | 'bench', number> | null;
  /** cores over the window: the system's total, each group, the bench and everything else */
  cores: Record<'total' | Group, number> | null;
}

export function cpuPerRun(samples: Sample[], fromMs: number, toMs: number, completedRuns: number): CpuPerRun {
  const cpu = cpuBetween(samples, fromMs, toMs);
  const out: CpuPerRun = {
    from_s: round(fromMs / 1000, 1),
    to_s: round(toMs / 1000, 1),
    completed_runs: completedRuns,
    us_per_run: null,
    cores: null,
  };
  if (!cpu || toMs <= fromMs) return out;
  const total = SYSTEM_GROUPS.reduce((n, g) => n + cpu[g], 0);
  const wall = (toMs - fromMs) / 1000;
  out.cores = {
    total: round(total / wall, 2),
    ...(Object.fromEntries(Object.entries(cpu).map(([g, s]) => [g, round(s / wall, 2)])) as Record<Group, number>),
  };
  if (completedRuns > 0) {
    const us = (s: number) => Math.round((s * 1e6) / completedRuns);
    out.us_per_run = {
      total: us(total),
      runtime: us(cpu.runtime),
      postgres: us(cpu.postgres),
      nats: us(cpu.nats),
      redis: us(cpu.redis),
      bench: us(cpu.bench),
    };
  }
  return out;
}
