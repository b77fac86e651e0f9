/**
 * Shared memory between a pool and its worker threads, so that a thread whose
 * event loop is blocked can be found (and given no new tasks), and one blocked
 * past a step's deadline terminated, without giving every task an AbortSignal
 * (which costs more than half of Piscina's throughput).
 *
 * Each live thread claims a slot of its own (an owner array holds the
 * threadIds; the pool frees the slots of threads that are gone), holding four
 * float64s: the time of its last heartbeat, the earliest hard deadline among
 * its running steps, the task that deadline belongs to, and the task whose
 * handler is executing synchronously right now (0 when none), which is the
 * one to blame when the thread is found blocked.
 */
export const WATCH_SLOTS = 256;
/** How often a thread's event loop writes its heartbeat (a blocked loop stops writing it). */
export const HEARTBEAT_MS = 20;
const FIELDS = 4;
const OWNERS_BYTES = WATCH_SLOTS * Int32Array.BYTES_PER_ELEMENT;
const SLOTS_BYTES = WATCH_SLOTS * FIELDS * Float64Array.BYTES_PER_ELEMENT;
/** Cancelled tasks, as a ring the threads read on each heartbeat: a counter, then the task numbers. */
const CANCEL_RING = 256;
const CANCEL_BYTES = 8 + CANCEL_RING * Float64Array.BYTES_PER_ELEMENT;

export function createWatchBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(OWNERS_BYTES + SLOTS_BYTES + CANCEL_BYTES);
}

/** Worker side: heartbeats, the deadlines of the steps it runs, and which one is in user code. */
export class WatchSlot {
  private readonly view: Float64Array;
  private readonly base: number;
  private readonly running = new Map<number, number>();

  private readonly cancelCount: Int32Array;
  private readonly cancelRing: Float64Array;
  private cancelSeen: number;

  /** `onCancel` is called on the heartbeat for each task of this pool that was cancelled since. */
  constructor(
    buf: SharedArrayBuffer,
    threadId: number,
    private readonly onCancel: (task: number) => void = () => {},
  ) {
    this.cancelCount = new Int32Array(buf, OWNERS_BYTES + SLOTS_BYTES, 1);
    this.cancelRing = new Float64Array(buf, OWNERS_BYTES + SLOTS_BYTES + 8, CANCEL_RING);
    this.cancelSeen = Atomics.load(this.cancelCount, 0);
    const owners = new Int32Array(buf, 0, WATCH_SLOTS);
    let slot = -1;
    for (let i = 0; i < WATCH_SLOTS && slot < 0; i++) if (Atomics.compareExchange(owners, i, 0, threadId) === 0) slot = i;
    if (slot < 0) throw new Error(`no free watch slot among ${WATCH_SLOTS} for worker thread ${threadId}`);
    this.view = new Float64Array(buf, OWNERS_BYTES, WATCH_SLOTS * FIELDS);
    this.base = slot * FIELDS;
    this.view.fill(0, this.base, this.base + FIELDS);
    this.view[this.base] = Date.now();
  }

  /**
   * The heartbeat, kept only while a step runs here: an idle thread is never blocked (see
   * WatchReader.blocked) and has nothing to cancel, and three idle threads beating every 20 ms
   * had cost 15 ms of CPU a second (a fifth of what the whole system spent on a run at 800/s).
   */
  private heartbeat: NodeJS.Timeout | null = null;

  private beat(): void {
    this.view[this.base] = Date.now();
    this.readCancels();
  }

  /** Whether `task` was cancelled before it got here (it waited in the queue, or came to a new thread). */
  wasCancelled(task: number): boolean {
    const count = Atomics.load(this.cancelCount, 0);
    for (let i = Math.max(0, count - CANCEL_RING); i < count; i++) if (this.cancelRing[i % CANCEL_RING] === task) return true;
    return false;
  }

  private readCancels(): void {
    const count = Atomics.load(this.cancelCount, 0);
    // more than a ring behind: the oldest are lost, which only delays those cancels to the attempt's end
    for (let i = Math.max(this.cancelSeen, count - CANCEL_RING); i < count; i++) this.onCancel(this.cancelRing[i % CANCEL_RING]);
    this.cancelSeen = count;
  }

  started(task: number, deadline: number): void {
    this.running.set(task, deadline);
    if (!this.heartbeat) {
      // the beat is fresh before the deadline is published, so a waking thread never looks blocked
      this.beat();
      this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
      this.heartbeat.unref();
    }
    if (this.view[this.base + 1] === 0 || deadline < this.view[this.base + 1]) this.publish(task, deadline);
  }

  finished(task: number): void {
    this.running.delete(task);
    if (!this.running.size && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = null;
    }
    if (this.view[this.base + 2] !== task) return;
    let best = 0;
    let bestTask = 0;
    for (const [t, d] of this.running) if (best === 0 || d < best) [best, bestTask] = [d, t];
    this.publish(bestTask, best);
  }

  /** The handler of `task` is about to run its synchronous part (0: it has returned). */
  inUserCode(task: number): void {
    this.view[this.base + 3] = task;
  }

  private publish(task: number, deadline: number): void {
    this.view[this.base + 2] = task;
    this.view[this.base + 1] = deadline;
  }
}

/** Pool side: which thread is blocked, and which one is stuck past a deadline, on which task. */
export class WatchReader {
  private readonly owners: Int32Array;
  private readonly view: Float64Array;
  /** threadId → slot, found once per thread */
  private readonly slots = new Map<number, number>();

  private readonly cancelCount: Int32Array;
  private readonly cancelRing: Float64Array;

  constructor(buf: SharedArrayBuffer) {
    this.owners = new Int32Array(buf, 0, WATCH_SLOTS);
    this.view = new Float64Array(buf, OWNERS_BYTES, WATCH_SLOTS * FIELDS);
    this.cancelCount = new Int32Array(buf, OWNERS_BYTES + SLOTS_BYTES, 1);
    this.cancelRing = new Float64Array(buf, OWNERS_BYTES + SLOTS_BYTES + 8, CANCEL_RING);
  }

  /** Tells the threads to abort `task` (they read it within a heartbeat). */
  cancel(task: number): void {
    const n = Atomics.load(this.cancelCount, 0);
    this.cancelRing[n % CANCEL_RING] = task;
    Atomics.store(this.cancelCount, 0, n + 1);
  }

  private base(threadId: number): number {
    let slot = this.slots.get(threadId);
    if (slot === undefined) {
      slot = this.owners.indexOf(threadId);
      if (slot < 0) return -1; // still starting: it has not claimed a slot yet
      this.slots.set(threadId, slot);
    }
    return slot * FIELDS;
  }

  /**
   * The task to blame on a thread blocked past a deadline, or null: the one in user code when
   * there is one, else the one whose deadline passed. Blocked: no heartbeat for `staleMs`.
   */
  overdue(threadId: number, now: number, staleMs: number): number | null {
    const b = this.base(threadId);
    if (b < 0) return null;
    const deadline = this.view[b + 1];
    if (deadline === 0 || now < deadline || now - this.view[b] < staleMs) return null;
    return this.view[b + 3] || this.view[b + 2];
  }

  /**
   * Whether a thread is running a step and its event loop has not turned for `staleMs`. An idle
   * thread is never blocked, even if it was not scheduled for a while (CPU contention): tasks
   * are held back only from a thread that will answer them by finishing a step or by dying.
   */
  blocked(threadId: number, now: number, staleMs: number): boolean {
    const b = this.base(threadId);
    if (b < 0) return false;
    return this.view[b + 1] !== 0 && now - this.view[b] > staleMs;
  }

  clear(threadId: number): void {
    const b = this.base(threadId);
    if (b >= 0) this.view[b + 1] = 0;
  }

  /** Frees the slots of threads that are gone, so that new threads can claim them. */
  release(live: ReadonlySet<number>): void {
    for (let i = 0; i < WATCH_SLOTS; i++) {
      const owner = this.owners[i];
      if (owner === 0 || live.has(owner)) continue;
      this.view.fill(0, i * FIELDS, (i + 1) * FIELDS);
      this.slots.delete(owner);
      Atomics.store(this.owners, i, 0);
    }
  }
}
