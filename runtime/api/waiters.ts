import type { RunResult } from '../queue/index.js';

/**
 * Runs whose caller waits for the result (execute with wait=true). Executors
 * publish each waited-for result on this API process's own result subject.
 */
export class Waiters {
  private readonly pending = new Map<string, (r: RunResult | null) => void>();

  /** Resolves with the result, or null after `timeoutMs`. */
  wait(runId: string, timeoutMs: number): { promise: Promise<RunResult | null>; cancel: () => void } {
    let timer: NodeJS.Timeout;
    const promise = new Promise<RunResult | null>((resolve) => {
      this.pending.set(runId, resolve);
      timer = setTimeout(() => this.settle(runId, null), timeoutMs);
    }).finally(() => clearTimeout(timer));
    return { promise, cancel: () => this.settle(runId, null) };
  }

  deliver(r: RunResult): void {
    this.settle(r.run_id, r);
  }

  /** Answers every waiter now (as a wait that timed out: 202, the run goes on): the process is stopping. */
  releaseAll(): void {
    for (const runId of [...this.pending.keys()]) this.settle(runId, null);
  }

  get size(): number {
    return this.pending.size;
  }

  private settle(runId: string, r: RunResult | null): void {
    const resolve = this.pending.get(runId);
    if (!resolve) return;
    this.pending.delete(runId);
    resolve(r);
  }
}
