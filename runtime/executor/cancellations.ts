import type { CancelSignal } from '../engine/index.js';
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
  private readonly active = new Map<string, RunCancel>();

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
  track(runId: string): CancelSignal {
    const c = new RunCancel();
    this.active.set(runId, c);
    return c;
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

/** A run's cancel signal: fires its listeners once, each at most once, in the order they came. */
class RunCancel implements CancelSignal {
  aborted = false;
  private listeners: (() => void)[] | null = null;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return; // like AbortSignal: an aborted signal fires no more
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const ls = this.listeners ?? [];
    this.listeners = null;
    for (const l of ls) l();
  }
}
