import { readdir, readFile, readlink } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';

/**
 * CPU and memory of the processes under test, from /proc once a second.
 *
 * A group's CPU is the sum of utime+stime over its live processes; for postgres the
 * postmaster's cutime+cstime is added too, so that backends that exit during the run
 * (their time moves to the parent when reaped) still count. Memory: VmRSS summed over the
 * group (for postgres this counts shared buffers once per backend, so also RssAnon, the
 * private part).
 */
export type Group = 'runtime' | 'nats' | 'postgres' | 'redis' | 'bench' | 'other';
/** 'other': every other process on the machine (busy time in /proc/stat minus the groups) */
export const GROUPS: Group[] = ['runtime', 'nats', 'postgres', 'redis', 'bench', 'other'];

export interface GroupSample {
  cpuS: number;
  rssMb: number;
  anonMb: number;
  procs: number;
}

export interface Sample {
  /** ms since the sampler's t0 */
  t: number;
  groups: Record<Group, GroupSample>;
}

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  cpu: number;
  childCpu: number;
}

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* 100 on Linux */
}

async function readStat(pid: number): Promise<ProcStat | null> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    const open = s.indexOf('(');
    const close = s.lastIndexOf(')');
    const comm = s.slice(open + 1, close);
    const f = s.slice(close + 2).split(' ');
    // fields after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return {
      pid,
      comm,
      ppid: Number(f[1]),
      cpu: (Number(f[11]) + Number(f[12])) / clkTck,
      childCpu: (Number(f[13]) + Number(f[14])) / clkTck,
    };
  } catch {
    return null; // exited between readdir and read
  }
}

/** Busy CPU seconds of the whole machine since boot (all cores). */
async function machineBusyS(): Promise<number> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0);
    return busy / clkTck;
  } catch {
    return 0;
  }
}

async function readMem(pid: number): Promise<{ rss: number; anon: number }> {
  try {
    const s = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 };
  } catch {
    return { rss: 0, anon: 0 };
  }
}

export class ProcSampler {
  readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  /** last CPU seen of each member process, and the CPU of members that have exited since */
  private readonly lastCpu = new Map<number, { group: Group; cpu: number }>();
  private readonly departed: Record<Group, number> = { runtime: 0, nats: 0, postgres: 0, redis: 0, bench: 0, other: 0 };

  /** `runtimePid`: the runtime's process (its descendants are counted with it) */
  constructor(
    private readonly t0: number,
    private runtimePid: number | null,
  ) {}

  setRuntimePid(pid: number | null): void {
    this.runtimePid = pid;
  }

  start(everyMs = 1000): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.sample();
  }

  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const busy = await machineBusyS();
      const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
      const stats = (await Promise.all(pids.map(readStat))).filter((s): s is ProcStat => s !== null);
      const byPid = new Map(stats.map((s) => [s.pid, s]));
      const members: Record<Group, ProcStat[]> = { runtime: [], nats: [], postgres: [], redis: [], bench: [], other: [] };
      for (const s of stats) {
        if (s.pid === process.pid) members.bench.push(s);
        else if (this.runtimePid !== null && descends(s, this.runtimePid, byPid)) members.runtime.push(s);
        else if (s.comm === 'nats-server') members.nats.push(s);
        else if (s.comm === 'postgres') members.postgres.push(s);
        else if (s.comm === 'redis-server') members.redis.push(s);
      }
      // a process that exited keeps its CPU in the group's total (postgres backends need not:
      // the postmaster's cutime takes them over when it reaps them)
      for (const [pid, last] of this.lastCpu) {
        if (!byPid.has(pid)) {
          if (last.group !== 'postgres') this.departed[last.group] += last.cpu;
          this.lastCpu.delete(pid);
        }
      }
      const groups = {} as Record<Group, GroupSample>;
      let known = 0;
      for (const g of GROUPS) {
        if (g === 'other') continue;
        const list = members[g];
        let cpu = this.departed[g];
        for (const p of list) {
          cpu += p.cpu;
          this.lastCpu.set(p.pid, { group: g, cpu: p.cpu });
          // the postmaster's parent is not postgres: its reaped children are backends
          if (g === 'postgres' && byPid.get(p.ppid)?.comm !== 'postgres') cpu += p.childCpu;
        }
        const mem = await Promise.all(list.map((p) => readMem(p.pid)));
        groups[g] = {
          cpuS: cpu,
          rssMb: mem.reduce((n, m) => n + m.rss, 0),
          anonMb: mem.reduce((n, m) => n + m.anon, 0),
          procs: list.length,
        };
        known += cpu;
      }
      // cumulative figures of different origins: only differences between samples mean anything
      groups.other = { cpuS: busy - known, rssMb: 0, anonMb: 0, procs: 0 };
      this.samples.push({ t: Date.now() - this.t0, groups });
    } finally {
      this.busy = false;
    }
  }
}

function descends(s: ProcStat, root: number, byPid: Map<number, ProcStat>): boolean {
  let cur: ProcStat | undefined = s;
  for (let i = 0; cur && i < 32; i++) {
    if (cur.pid === root) return true;
    cur = byPid.get(cur.ppid);
  }
  return false;
}

export interface GroupUsage {
  cpuS: number;
  /** cpuS / wall seconds: 1.0 = one core busy */
  cores: number;
  peakRssMb: number;
  peakAnonMb: number;
  maxProcs: number;
}

/** CPU used and peak memory between two times (ms since t0), from the samples. */
export function usageBetween(samples: Sample[], fromMs: number, toMs: number): Record<Group, GroupUsage> | null {
  const inRange = samples.filter((s) => s.t >= fromMs - 600 && s.t <= toMs + 600);
  if (inRange.length < 2) return null;
  const a = inRange[0];
  const b = inRange[inRange.length - 1];
  const wall = Math.max(0.001, (b.t - a.t) / 1000);
  const out = {} as Record<Group, GroupUsage>;
  for (const g of GROUPS) {
    const cpuS = Math.max(0, b.groups[g].cpuS - a.groups[g].cpuS);
    out[g] = {
      cpuS: Math.round(cpuS * 100) / 100,
      cores: Math.round((cpuS / wall) * 100) / 100,
      peakRssMb: Math.round(Math.max(...inRange.map((s) => s.groups[g].rssMb))),
      peakAnonMb: Math.round(Math.max(...inRange.map((s) => s.groups[g].anonMb))),
      maxProcs: Math.max(...inRange.map((s) => s.groups[g].procs)),
    };
  }
  return out;
}

/**
 * Finds the runtime of a system the harness did not start: the process listening on `port`
 * (from /proc/net/tcp*), else one whose command line runs dist/runtime/main.js.
 */
export async function findRuntimePid(port: number | null): Promise<number | null> {
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
  if (port) {
    const inodes = new Set<string>();
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      const text = await readFile(table, 'utf8').catch(() => '');
      for (const line of text.split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        // local_address is HEXIP:HEXPORT, st 0A = LISTEN, inode is the 10th field
        if (f.length > 9 && f[3] === '0A' && parseInt(f[1].split(':')[1], 16) === port) inodes.add(f[9]);
      }
    }
    for (const pid of inodes.size ? pids : []) {
      if (pid === process.pid) continue;
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
        const m = /^socket:\[(\d+)\]$/.exec(target);
        if (m && inodes.has(m[1])) return pid;
      }
    }
  }
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      if (cmd.some((a) => a.endsWith('dist/runtime/main.js'))) return pid;
    } catch {
      /* gone */
    }
  }
  return null;
}
