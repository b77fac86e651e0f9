import { Piscina } from 'piscina';
import { fileURLToPath } from 'node:url';
import { decode, encode } from '../queue/index.js';
import type { StepOutcome, StepTask, WorkerInit } from './protocol.js';

export interface StepPoolOptions {
  root: string;
  dirs: string[];
  threads: number;
  /** tasks one thread runs at once (async steps overlap their waits) */
  tasksPerThread: number;
  maxOldGenerationMb: number;
  /** extra time a worker gets past a step's timeout before its thread is terminated */
  hardKillGraceMs: number;
}

/**
 * The Piscina pool that runs step attempts on worker threads. A step that
 * blocks its thread past its timeout (plus a grace) gets the thread
 * terminated; a thread that crashes (process.exit, out of memory) is replaced
 * by Piscina. Either way the attempt fails with a code and the host stays up.
 */
export class StepPool {
  readonly piscina: Piscina;
  constructor(private readonly o: StepPoolOptions) {
    const workerData: WorkerInit = { root: o.root, dirs: o.dirs };
    this.piscina = new Piscina({
      filename: fileURLToPath(new URL('./worker.js', import.meta.url)),
      minThreads: o.threads,
      maxThreads: o.threads,
      concurrentTasksPerWorker: o.tasksPerThread,
      idleTimeout: 60_000,
      workerData,
      resourceLimits: { maxOldGenerationSizeMb: o.maxOldGenerationMb },
    });
  }

  async run(task: StepTask): Promise<StepOutcome> {
    const ac = new AbortController();
    const kill = setTimeout(() => ac.abort(), task.timeoutMs + this.o.hardKillGraceMs);
    try {
      const out = (await this.piscina.run(encode(task), { signal: ac.signal })) as Uint8Array;
      return decode<StepOutcome>(out);
    } catch (err) {
      if (ac.signal.aborted) {
        return { ok: false, error: { code: 'E_STEP_TIMEOUT', message: `step "${task.stepName}" blocked its worker thread past its ${task.timeoutMs} ms timeout; the thread was terminated` }, logs: [] };
      }
      return { ok: false, error: { code: 'E_WORKER_CRASHED', message: `the worker thread running step "${task.stepName}" died: ${(err as Error)?.message ?? String(err)}` }, logs: [] };
    } finally {
      clearTimeout(kill);
    }
  }

  get utilization(): number {
    return this.piscina.utilization;
  }

  get queueSize(): number {
    return this.piscina.queueSize;
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
