import { readdir, readFile, readlink } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';

/**
 * CPU and memory of the processes under test, from /proc once a second.
 *
 * A group's CPU is the sum of utime+stime over its live processes plus what its processes
 * that exited had used when last seen. Postgres is shared with whoever else uses the server
 * (other engineers' test suites), so its group is the postmaster, the shared background
 * processes (checkpointer, writers, launchers) and only the backends and autovacuum workers
 * of the measured database (read from their process titles); backends of other databases,
 * and the reaped children in the postmaster's cutime, are left to "other". Memory: VmRSS
 * summed over the group (for postgres this counts shared buffers once per backend, so also
 * RssAnon, the private part).
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
    // fields after comm: state(0) ppid(1) ... utime(11) stime(12)
    return {
      pid,
      comm,
      ppid: Number(f[1]),
      cpu: (Number(f[11]) + Number(f[12])) / clkTck,
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
  private running: Promise<void> | null = null;
  /** last CPU seen of each member process, and the CPU of members that have exited since */
  private readonly lastCpu = new Map<number, { group: Group; cpu: number }>();
  private readonly departed: Record<Group, number> = { runtime: 0, nats: 0, postgres: 0, redis: 0, bench: 0, other: 0 };

  /** database of each postgres backend seen (shared processes are not cached: a new backend's title may not be set yet) */
  private readonly pgDb = new Map<number, string>();

  /**
   * `runtimePids`: the runtime's processes (their descendants are counted with them);
   * `database`: the database whose backends count as the system's (null: every backend).
   * `now`: the clock the samples are stamped with (ms since t0).
   */
  constructor(
    private readonly now: () => number,
    private readonly runtimePids: number[],
    private readonly database: string | null,
  ) {}

  /** Samples now (resolved once that first sample is in) and then every `everyMs`. */
  async start(everyMs = 1000): Promise<void> {
    this.timer = setInterval(() => {
      if (!this.running) void this.sample();
    }, everyMs);
    this.timer.unref();
    await this.sample();
  }

  /** Stops sampling, with a last sample. */
  async stop(): Promise<void> {
    this.cancel();
    await this.sample();
  }

  /** Stops sampling. */
  cancel(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One sample; while one is being taken, waits for it and takes another. */
  async sample(): Promise<void> {
    while (this.running) await this.running;
    this.running = this.take();
    try {
      await this.running;
    } finally {
      this.running = null;
    }
  }

  private async take(): Promise<void> {
    const busy = await machineBusyS();
    const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
    const stats = (await Promise.all(pids.map(readStat))).filter((s): s is ProcStat => s !== null);
    const byPid = new Map(stats.map((s) => [s.pid, s]));
    const members: Record<Group, ProcStat[]> = { runtime: [], nats: [], postgres: [], redis: [], bench: [], other: [] };
    for (const s of stats) {
      if (s.pid === process.pid) members.bench.push(s);
      else if (this.runtimePids.some((root) => descends(s, root, byPid))) members.runtime.push(s);
      else if (s.comm === 'nats-server') members.nats.push(s);
      else if (s.comm === 'postgres') {
        if (await this.ofDatabase(s.pid)) members.postgres.push(s);
      } else if (s.comm === 'redis-server') members.redis.push(s);
    }
    // a process that exited keeps its CPU (as last seen) in the group's total
    for (const [pid, last] of this.lastCpu) {
      if (!byPid.has(pid)) {
        this.departed[last.group] += last.cpu;
        this.lastCpu.delete(pid);
      }
    }
    for (const pid of this.pgDb.keys()) if (!byPid.has(pid)) this.pgDb.delete(pid);
    const groups = {} as Record<Group, GroupSample>;
    let known = 0;
    for (const g of GROUPS) {
      if (g === 'other') continue;
      const list = members[g];
      let cpu = this.departed[g];
      for (const p of list) {
        cpu += p.cpu;
        this.lastCpu.set(p.pid, { group: g, cpu: p.cpu });
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
    this.samples.push({ t: this.now(), groups });
  }

  /** Whether a postgres process belongs to the measured system: shared, or serving its database. */
  private async ofDatabase(pid: number): Promise<boolean> {
    let db = this.pgDb.get(pid) ?? null;
    if (db === null) {
      db = await postgresDatabase(pid);
      if (db !== null) this.pgDb.set(pid, db);
    }
    return db === null || this.database === null || db === this.database;
  }
}

/**
 * The database a postgres process serves, from its title ("postgres: 15/main: user db
 * 127.0.0.1(5432) idle", "postgres: autovacuum worker db"); null for the shared background
 * processes and the postmaster.
 */
async function postgresDatabase(pid: number): Promise<string | null> {
  let title: string;
  try {
    title = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0+$/, '').replace(/\0/g, ' ');
  } catch {
    return null;
  }
  const m = /^postgres: (?:[^:\s]+: )?(.*)$/.exec(title);
  if (!m) return null; // the postmaster: its command line is the binary's path
  const words = m[1].trim().split(/\s+/);
  if (words[0] === 'autovacuum' && words[1] === 'worker') return words[2] ?? null;
  if (words.length >= 3 && /\(\d+\)$|^\[local\]$/.test(words[2])) return words[1];
  return null;
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

/**
 * CPU seconds of each group between two times (ms since t0), interpolated linearly between the
 * samples around each end (null when the samples do not cover the span).
 */
export function cpuBetween(samples: Sample[], fromMs: number, toMs: number): Record<Group, number> | null {
  const a = cpuAt(samples, fromMs);
  const b = cpuAt(samples, toMs);
  if (!a || !b) return null;
  const out = {} as Record<Group, number>;
  for (const g of GROUPS) out[g] = Math.max(0, b[g] - a[g]);
  return out;
}

function cpuAt(samples: Sample[], t: number): Record<Group, number> | null {
  if (!samples.length || t < samples[0].t - 1500 || t > samples[samples.length - 1].t + 1500) return null;
  let i = 0;
  while (i < samples.length - 1 && samples[i + 1].t < t) i++;
  const a = samples[i];
  const b = samples[Math.min(i + 1, samples.length - 1)];
  const f = b.t > a.t ? Math.min(1, Math.max(0, (t - a.t) / (b.t - a.t))) : 0;
  const out = {} as Record<Group, number>;
  for (const g of GROUPS) out[g] = a.groups[g].cpuS + f * (b.groups[g].cpuS - a.groups[g].cpuS);
  return out;
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
