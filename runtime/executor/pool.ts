import { Piscina } from 'piscina';
import { fileURLToPath } from 'node:url';
import type { EventLoopUtilization } from 'node:perf_hooks';
import type { CancelSignal } from '../engine/index.js';
import type { OutboundPolicy } from '../net/index.js';
import type { Logger } from '../observability/index.js';
import { decode, encode } from '../queue/index.js';
import { cancelledError, type StepOutcome, type StepTask, type WorkerInit } from './protocol.js';
import { createWatchBuffer, WatchReader } from './watchdog.js';

type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>;

export interface StepPoolOptions {
  root: string;
  dirs: string[];
  /** threads kept running */
  minThreads: number;
  maxThreads: number;
  /** healthy threads given work at once; threads beyond these stand by for when some are blocked */
  activeThreads: number;
  /** how long a thread above minThreads may idle before it stops */
  idleTimeoutMs: number;
  /** tasks one thread runs at once (async steps overlap their waits) */
  tasksPerThread: number;
  maxOldGenerationMb: number;
  /** whether the heap limit is the function's own `memoryMb` (else the config's), for the out-of-memory message */
  functionLimit: boolean;
  /** dev mode: the catalogue generation, so threads import the same module versions as the host */
  version?: number;
  /** where the http step may go (steps.http) */
  outbound: OutboundPolicy;
  /** extra time a blocked thread gets past a step's timeout before it is terminated */
  hardKillGraceMs: number;
  log: Logger;
}

/** A thread whose heartbeat is older than this gets no new tasks (see balancer()). */
const BLOCKED_AFTER_MS = 75;

/**
 * The Piscina pool that runs step attempts on worker threads. A step that
 * blocks its thread past its timeout (plus a grace) gets the thread
 * terminated by the watchdog; a thread that crashes (process.exit, out of
 * memory) is replaced by Piscina. Either way the attempt fails with a code and
 * the host stays up.
 */
export class StepPool {
  private readonly piscina: Piscina;
  private seq = 0;
  private readonly watch: WatchReader;
  private readonly timedOut = new Set<number>();
  /** threads the watchdog has terminated (Piscina does not know until they exit) */
  private readonly killed = new Set<number>();
  /** when the watchdog last terminated a thread */
  private lastKill = 0;
  private readonly watchdog: NodeJS.Timeout;
  /** each thread's event-loop reading at the previous load() */
  private readonly loadSeen = new WeakMap<object, EventLoopUtilization>();

  constructor(private readonly o: StepPoolOptions) {
    const buf = createWatchBuffer();
    this.watch = new WatchReader(buf);
    const workerData: WorkerInit = { root: o.root, dirs: o.dirs, watch: buf, version: o.version, outbound: o.outbound };
    this.piscina = new Piscina({
      // a CommonJS entry that imports worker.js: see worker-entry.cts
      filename: fileURLToPath(new URL('./worker-entry.cjs', import.meta.url)),
      minThreads: o.minThreads,
      maxThreads: o.maxThreads,
      concurrentTasksPerWorker: o.tasksPerThread,
      // 'sync' parks idle threads in Atomics.wait, which starves async steps (timers, I/O)
      atomics: 'disabled',
      idleTimeout: o.idleTimeoutMs,
      workerData,
      resourceLimits: { maxOldGenerationSizeMb: o.maxOldGenerationMb },
      loadBalancer: this.balancer(),
    });
    // with no task to fail, Piscina reports a dead thread as an 'error' event
    this.piscina.on('error', (err) => o.log.warn({ err }, 'worker thread error'));
    this.watchdog = setInterval(() => this.checkThreads(), 100);
    this.watchdog.unref();
  }

  /**
   * Piscina's least-busy choice, but never a thread whose event loop is blocked
   * (a step spinning on it): tasks posted there would wait until the step ends
   * or the watchdog kills the thread, so they go to a healthy thread, to a spare
   * thread, or wait in the queue.
   */
  private balancer(): LoadBalancer {
    const max = this.o.tasksPerThread;
    return (_task, workers) => {
      const now = Date.now();
      let best: (typeof workers)[number] | null = null;
      let spare: (typeof workers)[number] | null = null;
      let blocked: (typeof workers)[number] | null = null;
      let healthy = 0;
      for (const w of workers) {
        if (w.terminating || w.destroyed || this.killed.has(w.id)) continue;
        if (this.watch.blocked(w.id, now, BLOCKED_AFTER_MS)) {
          if (w.currentUsage < max && (!blocked || w.currentUsage < blocked.currentUsage)) blocked = w;
          continue;
        }
        // the first `activeThreads` healthy threads share the work (more threads than cores only
        // add contention); the others take tasks only when those are full
        const active = ++healthy <= this.o.activeThreads;
        if (w.currentUsage >= max) continue;
        if (active) {
          if (w.currentUsage === 0) return w;
          if (!best || w.currentUsage < best.currentUsage) best = w;
        } else if (!spare || w.currentUsage < spare.currentUsage) spare = w;
      }
      if (best ?? spare) return best ?? spare;
      // no healthy thread has room: below maxThreads, null makes Piscina start one; at the maximum
      // a blocked thread gets it (nothing else would hand the task out once the threads recover)
      return workers.length < this.o.maxThreads ? null : blocked;
    };
  }

  /** Runs one attempt on a thread; `signal` (the run was cancelled) aborts it there within a heartbeat. */
  async run(task: Omit<StepTask, 'seq' | 'deadline'>, signal?: CancelSignal, redispatches = 0): Promise<StepOutcome> {
    if (signal?.aborted) return { ok: false, error: cancelledError(task.stepName), logs: [] };
    const seq = ++this.seq;
    const full: StepTask = { ...task, seq, deadline: Date.now() + task.timeoutMs + this.o.hardKillGraceMs };
    const onAbort = () => this.watch.cancel(seq);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return decode<StepOutcome>((await this.piscina.run(encode(full))) as Uint8Array);
    } catch (err) {
      if (this.timedOut.delete(seq)) {
        return {
          ok: false,
          error: {
            code: 'E_STEP_TIMEOUT',
            message: `step "${task.stepName}" blocked its worker thread past its ${task.timeoutMs} ms timeout (${task.timeoutHint ?? 'executor.step_timeout'}); the thread was terminated`,
          },
          logs: [],
        };
      }
      const e = err as { code?: string; message?: string };
      // a task that was on (or queued for) a thread the watchdog just terminated because another
      // step blocked it: not its failure, so it runs again, and that is not an attempt
      if (Date.now() - this.lastKill < 2000 && /exited with code: 1$/.test(e?.message ?? '') && redispatches < 3) {
        return this.run(task, signal, redispatches + 1);
      }
      const limit = this.o.functionLimit ? `memoryMb of function "${task.type}"` : 'executor.worker_max_old_generation_mb';
      const why =
        e?.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `ran out of memory (limit ${this.o.maxOldGenerationMb} MB, ${limit})`
          : `died: ${e?.message ?? String(err)}`;
      return {
        ok: false,
        error: { code: 'E_WORKER_CRASHED', message: `the worker thread running step "${task.stepName}" ${why}` },
        logs: [],
      };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Terminates threads that are blocked past a step's hard deadline; Piscina replaces them. */
  private checkThreads(): void {
    const now = Date.now();
    const live = new Set<number>();
    for (const w of this.piscina.threads) {
      live.add(w.threadId);
      const late = this.watch.overdue(w.threadId, now, 250);
      if (late === null) continue;
      this.watch.clear(w.threadId);
      this.timedOut.add(late);
      this.lastKill = now;
      this.killed.add(w.threadId);
      this.o.log.warn({ threadId: w.threadId, task: late }, 'worker thread blocked past a step deadline; terminating it');
      void w.terminate();
    }
    for (const id of this.killed) if (!live.has(id)) this.killed.delete(id);
    this.watch.release(live);
  }

  get utilization(): number {
    return this.piscina.utilization;
  }

  get queueSize(): number {
    return this.piscina.queueSize;
  }

  /**
   * The threads running now, and their event loops' busy and elapsed time (ms, summed over the
   * threads) since the previous call: what the executor registry reports as utilization. Unlike
   * Piscina's `utilization` (run time of tasks since the pool started, which overlapping async
   * tasks inflate) this is how busy the threads were lately, a blocked thread counting as busy.
   */
  load(): { threads: number; busyMs: number; elapsedMs: number } {
    let busyMs = 0;
    let elapsedMs = 0;
    const threads = this.piscina.threads;
    for (const w of threads) {
      const now = w.performance.eventLoopUtilization();
      const prev = this.loadSeen.get(w);
      const d = prev ? w.performance.eventLoopUtilization(now, prev) : now;
      this.loadSeen.set(w, now);
      busyMs += d.active;
      elapsedMs += d.active + d.idle;
    }
    return { threads: threads.length, busyMs, elapsedMs };
  }

  /** Stops at once: tasks still running fail. */
  async close(): Promise<void> {
    clearInterval(this.watchdog);
    await this.piscina.destroy();
  }

  /** Stops once the tasks it has finished (a retired dev-mode generation). */
  async retire(): Promise<void> {
    await this.piscina.close();
    clearInterval(this.watchdog);
  }
}
