/**
 * Shared memory between the pool and its worker threads, so that a thread
 * whose event loop is blocked past a step's deadline can be found and
 * terminated without giving every task an AbortSignal (which costs more than
 * half of Piscina's throughput).
 *
 * Each thread owns a slot (by threadId) of three float64s: the time of its last
 * heartbeat, the earliest hard deadline among its running steps, and the task
 * number that deadline belongs to.
 */
export const WATCH_SLOTS = 256;
/** How often a thread's event loop writes its heartbeat (a blocked loop stops writing it). */
export const HEARTBEAT_MS = 20;
const FIELDS = 3;

export function createWatchBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(WATCH_SLOTS * FIELDS * Float64Array.BYTES_PER_ELEMENT);
}

/** Worker side: heartbeats and the deadlines of the steps it runs. */
export class WatchSlot {
  private readonly view: Float64Array;
  private readonly base: number;
  private readonly running = new Map<number, number>();

  constructor(buf: SharedArrayBuffer, threadId: number) {
    this.view = new Float64Array(buf);
    this.base = (threadId % WATCH_SLOTS) * FIELDS;
    this.view[this.base] = Date.now();
    this.view[this.base + 1] = 0;
    setInterval(() => (this.view[this.base] = Date.now()), HEARTBEAT_MS).unref();
  }

  started(task: number, deadline: number): void {
    this.running.set(task, deadline);
    if (this.view[this.base + 1] === 0 || deadline < this.view[this.base + 1]!) this.publish(task, deadline);
  }

  finished(task: number): void {
    this.running.delete(task);
    if (this.view[this.base + 2] !== task) return;
    let best = 0;
    let bestTask = 0;
    for (const [t, d] of this.running) if (best === 0 || d < best) [best, bestTask] = [d, t];
    this.publish(bestTask, best);
  }

  private publish(task: number, deadline: number): void {
    this.view[this.base + 2] = task;
    this.view[this.base + 1] = deadline;
  }
}

/** Pool side: which thread is stuck past a deadline, and on which task. */
export class WatchReader {
  private readonly view: Float64Array;
  constructor(buf: SharedArrayBuffer) {
    this.view = new Float64Array(buf);
  }

  /** The task a blocked thread is late on, or null. A thread is blocked when its heartbeat is older than `staleMs`. */
  overdue(threadId: number, now: number, staleMs: number): number | null {
    const b = (threadId % WATCH_SLOTS) * FIELDS;
    const deadline = this.view[b + 1]!;
    if (deadline === 0 || now < deadline || now - this.view[b]! < staleMs) return null;
    return this.view[b + 2]!;
  }

  /**
   * Whether a thread is running a step and its event loop has not turned for `staleMs`. An idle
   * thread is never blocked, even if it was not scheduled for a while (CPU contention): tasks
   * are held back only from a thread that will answer them by finishing a step or by dying.
   */
  blocked(threadId: number, now: number, staleMs: number): boolean {
    const b = (threadId % WATCH_SLOTS) * FIELDS;
    const beat = this.view[b]!;
    return beat !== 0 && this.view[b + 1] !== 0 && now - beat > staleMs;
  }

  clear(threadId: number): void {
    const b = (threadId % WATCH_SLOTS) * FIELDS;
    this.view[b + 1] = 0;
  }
}
