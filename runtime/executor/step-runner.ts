import type { OutboundPolicy } from '../net/index.js';
import type { Logger } from '../observability/index.js';
import { attempt } from './attempt.js';
import type { CatalogueEntry } from './catalogue.js';
import { Limiter, type CancelSignal } from '../engine/index.js';
import { StepPool } from './pool.js';
import type { StepOutcome, StepTask } from './protocol.js';

export type AttemptTask = Omit<StepTask, 'seq' | 'deadline'>;

export interface StepRunnerOptions {
  root: string;
  dirs: string[];
  /** threads of the default pool */
  threads: number;
  /** heap limit of the default pool's threads (executor.worker_max_old_generation_mb) */
  defaultMemoryMb: number;
  /** dev mode: the catalogue generation the threads import */
  version?: number;
  /** where the http step may go (steps.http) */
  outbound: OutboundPolicy;
  log: Logger;
}

/**
 * Runs the attempts of one catalogue: the pools (one per memory class), the
 * per-function concurrency limiters, and the inline built-ins.
 */
export interface StepRunner {
  readonly catalogue: ReadonlyMap<string, CatalogueEntry>;
  /** by memory class: `default`, `64mb`, ... */
  readonly pools: ReadonlyMap<string, StepPool>;
  /** `signal`: the run was cancelled (aborts an attempt on a thread; an inline one is too short to matter) */
  readonly runAttempt: (task: AttemptTask, signal?: CancelSignal) => Promise<StepOutcome>;
  readonly isInline: (type: string) => boolean;
  /** Stops at once. */
  close(): Promise<void>;
  /** Stops once the tasks it has finished. */
  retire(): Promise<void>;
}

/**
 * Piscina applies `resourceLimits` per pool, so each distinct `memoryMb`
 * gets a small pool of its own beside the default one; attempts are routed
 * by function name, looked up once per attempt.
 */
export function createStepRunner(catalogue: ReadonlyMap<string, CatalogueEntry>, o: StepRunnerOptions): StepRunner {
  const pool = (minThreads: number, activeThreads: number, maxThreads: number, mb: number, functionLimit: boolean) =>
    new StepPool({
      root: o.root,
      dirs: o.dirs,
      minThreads,
      activeThreads,
      maxThreads,
      idleTimeoutMs: 60_000,
      tasksPerThread: 64,
      maxOldGenerationMb: mb,
      functionLimit,
      hardKillGraceMs: 250,
      version: o.version,
      outbound: o.outbound,
      log: o.log,
    });
  // one spare thread kept warm, more (up to as many again) started while threads are blocked:
  // a step that spins blocks its thread until the watchdog replaces it, and a new thread takes
  // hundreds of milliseconds to load the functions, so the other steps need somewhere to run
  const defaultPool = pool(o.threads + 1, o.threads, o.threads * 2, o.defaultMemoryMb, false);
  const pools = new Map<string, StepPool>([['default', defaultPool]]);
  const inline = new Set<string>();
  const routes = new Map<string, (t: AttemptTask, signal?: CancelSignal) => Promise<StepOutcome>>();

  for (const e of catalogue.values()) {
    let run: (t: AttemptTask, signal?: CancelSignal) => Promise<StepOutcome>;
    if (e.builtin && e.fn.inline) {
      inline.add(e.name);
      run = (t) => attempt(catalogue, t, []);
    } else {
      let p = defaultPool;
      const mb = e.fn.memoryMb;
      if (mb !== undefined && mb !== o.defaultMemoryMb) {
        const cls = `${mb}mb`;
        let q = pools.get(cls);
        // one warm thread (no start-up on the first attempt); a second when busy
        if (!q) pools.set(cls, (q = pool(1, Math.min(o.threads, 2), Math.min(o.threads, 2), mb, true)));
        p = q;
      }
      run = (t, signal) => p.run(t, signal);
    }
    const n = e.fn.concurrency;
    if (n !== undefined) {
      const limiter = new Limiter(n);
      const inner = run;
      // the attempt (and its timeout) starts when it has a slot
      run = (t, signal) => limiter.run(() => inner(t, signal));
    }
    routes.set(e.name, run);
  }
  // an unknown type still goes to a thread, which answers E_STEP_UNKNOWN
  const fallback = (t: AttemptTask, signal?: CancelSignal) => defaultPool.run(t, signal);

  return {
    catalogue,
    pools,
    runAttempt: (t, signal) => (routes.get(t.type) ?? fallback)(t, signal),
    isInline: (type) => inline.has(type),
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
    async retire() {
      await Promise.all([...pools.values()].map((p) => p.retire()));
    },
  };
}
