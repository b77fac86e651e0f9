import { CANCEL_MEMORY_MS } from '../store/index.js';

/**
 * The runs this executor host has been told to cancel (a broadcast through the queue
 * from `POST /api/v1/executions/:run_id/cancel`, and `run_cancels` read at start and after
 * a reconnect), and the runs it is driving.
 * A run being driven is aborted at once; a run not started yet is remembered
 * for `rememberMs`, so that a host that takes it from the queue later skips it.
 */
export class Cancellations {
  /** run id → when it was cancelled (insertion order is time order) */
  private readonly heard = new Map<string, number>();
  private readonly active = new Map<string, AbortController>();

  constructor(
    private readonly rememberMs = CANCEL_MEMORY_MS,
    private readonly maxRemembered = 100_000,
  ) {}

  cancel(runId: string): void {
    this.active.get(runId)?.abort();
    this.heard.delete(runId);
    this.heard.set(runId, Date.now());
    this.prune();
  }

  isCancelled(runId: string): boolean {
    return this.heard.has(runId);
  }

  /** A cancelled run was redriven (its durable cancel removed): it runs again. */
  forget(runId: string): void {
    this.heard.delete(runId);
  }

  /** The signal that fires when `runId` is cancelled while this host drives it; call `untrack` when done. */
  track(runId: string): AbortSignal {
    const ac = new AbortController();
    this.active.set(runId, ac);
    return ac.signal;
  }

  untrack(runId: string): void {
    this.active.delete(runId);
  }

  private prune(): void {
    const oldest = Date.now() - this.rememberMs;
    for (const [id, at] of this.heard) {
      if (at >= oldest && this.heard.size <= this.maxRemembered) break;
      this.heard.delete(id);
    }
  }
}
