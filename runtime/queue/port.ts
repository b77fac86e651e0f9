import type { RunMessage, RunResult, WorkflowChange } from './codec.js';

/** A delivered run message, with the transport kept out of the executor's sight. */
export interface Delivery {
  data: RunMessage;
  /** 1 on first delivery */
  deliveryCount: number;
  /**
   * Set when the queue lives in the same PostgreSQL as the records (queue.driver=postgres):
   * the run can leave the queue in the transaction that commits its final rows
   * (`BatchWriter.writeRun(row, { dequeue })`), so the record and the ack are one atomic step.
   * It names this delivery of the run: a delete for a delivery that is no longer the current
   * one (its lease ended and another executor took the run) removes nothing.
   */
  dequeue?: QueueEntry;
  /** Done with the run. `dequeued`: it already left the queue with its final rows (`dequeue`). */
  ack(opts?: { dequeued?: boolean }): void;
  /** tell the queue we are still working on it (extends the lease, `queue.ack_wait`) */
  working(): void;
}

/** A run's row in the postgres queue, at one delivery (the fence of a delete). */
export interface QueueEntry {
  readonly id: string;
  readonly delivery: number;
}

/** Stops consuming (see Queue.consumeRuns). */
export type StopConsuming = (graceMs?: number) => Promise<{ handedBack: number }>;

/** Resolves true when `p` settles within `ms`, false otherwise. */
export function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  if (!Number.isFinite(ms)) return p.then(() => true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), Math.max(0, ms));
    void p.then(() => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Stops a subscription. */
export type Unsubscribe = () => void;

/** How often a holder of runs tells the queue it still works on them: a third of the lease. */
export function keepAliveInterval(ackWaitMs: number): number {
  return Math.max(250, Math.floor(ackWaitMs / 3));
}

/** A run started with an idempotency key: the key names that run for `ttlMs`. */
export interface IdempotencyClaim {
  /** scoped by the caller (workflow name and the client's key) */
  key: string;
  ttlMs: number;
}

/**
 * `duplicate`: the key already names a run (within the dedupe window), and `holder` is that
 * run's id when the queue can tell (the postgres queue can, JetStream cannot).
 */
export interface PublishResult {
  duplicate: boolean;
  holder?: string;
}

/**
 * The queue port: how runs travel from the API to executors, and the broadcasts between
 * processes (results for waiting callers, cancels, registry changes). Adapters: `jetstream.ts`
 * (NATS JetStream) and `postgres.ts` (a table in the records' database).
 *
 * The contract every adapter keeps: `publishRun` resolves only once the run is durably stored;
 * delivery is at least once to any number of consumers; a delivery not acked within the lease
 * (extended by `working()`) is delivered again; a run delivered `max_deliver` times without an
 * ack goes to the dead-letter handler. Broadcasts are best effort (at most once).
 */
export interface Queue {
  /** Stores a run; resolves once it is durable. With an idempotency key, a repeat is not stored again. */
  publishRun(msg: RunMessage, idempotency?: IdempotencyClaim): Promise<PublishResult>;
  /**
   * Hands each run to `handle`, at most `maxInFlight` at once. Resolves to a stop function: it
   * takes no more runs, waits for those being handled up to `graceMs`, then hands the rest back
   * to the queue for another executor (their handlers may still run: the process is exiting),
   * and says how many it handed back.
   */
  consumeRuns(maxInFlight: number, handle: (d: Delivery) => Promise<void>): Promise<StopConsuming>;
  /** Runs waiting for an executor, and runs delivered but not acked. */
  consumerPending(): Promise<{ pending: number; ackPending: number }>;
  /** A run still in the queue (waiting or delivered, not acked), when the queue can look it up; else null. */
  queuedRun(runId: string): Promise<{ msg: RunMessage; deliveries: number } | null>;
  /**
   * Called with each run that used up its deliveries; the run is then removed from the queue
   * (with the postgres queue, `dequeue` lets the callback remove it with the record it writes).
   * The stop function resolves once a callback in progress has ended.
   */
  onDeadLetter(cb: (run: RunMessage, deliveries: number, dequeue?: QueueEntry) => Promise<void>): () => Promise<void>;

  /** This process's address for the results of runs whose callers wait here. */
  resultAddress(processId: string): string;
  onResults(address: string, cb: (r: RunResult) => void): Unsubscribe;
  /** A result too large for one message goes as `{ run_id, status, partial: true }` (the waiter reads the record). */
  publishResult(address: string, r: RunResult): void;

  /**
   * Cancels, heard by every executor. Broadcasts are at most once: `resync` is called whenever
   * some may have been missed (a reconnect), so the listener can read the durable cancels again.
   */
  publishCancel(runId: string): void;
  onCancel(cb: (runId: string) => void, resync?: () => void): Unsubscribe;

  /** Registry changes, heard by every process (each drops its cached name → id mapping). */
  publishWorkflowChange(c: WorkflowChange): void;
  onWorkflowChange(cb: (c: WorkflowChange) => void): Unsubscribe;

  ready(): Promise<boolean>;
  close(): Promise<void>;
}
