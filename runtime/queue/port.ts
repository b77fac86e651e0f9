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
   */
  dequeueId?: string;
  /** Done with the run. `dequeued`: it already left the queue with its final rows (dequeueId). */
  ack(opts?: { dequeued?: boolean }): void;
  /** tell the queue we are still working on it (extends the lease, `queue.ack_wait`) */
  working(): void;
}

/** Stops a subscription. */
export type Unsubscribe = () => void;

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
 * processes (results for waiting callers, cancels, registry changes). Adapters: `jetstream.ts`.
 *
 * The contract every adapter keeps: `publishRun` resolves only once the run is durably stored;
 * delivery is at least once to any number of consumers; a delivery not acked within the lease
 * (extended by `working()`) is delivered again; a run delivered `max_deliver` times without an
 * ack goes to the dead-letter handler. Broadcasts are best effort (at most once).
 */
export interface Queue {
  /** Stores a run; resolves once it is durable. With an idempotency key, a repeat is not stored again. */
  publishRun(msg: RunMessage, idempotency?: IdempotencyClaim): Promise<PublishResult>;
  /** Hands each run to `handle`, at most `maxInFlight` at once. Resolves to a stop function. */
  consumeRuns(maxInFlight: number, handle: (d: Delivery) => Promise<void>): Promise<() => Promise<void>>;
  /** Runs waiting for an executor, and runs delivered but not acked. */
  consumerPending(): Promise<{ pending: number; ackPending: number }>;
  /** A run still in the queue (waiting or delivered, not acked), when the queue can look it up; else null. */
  queuedRun(runId: string): Promise<{ msg: RunMessage; deliveries: number } | null>;
  /** Called with each run that used up its deliveries; the run is then removed from the queue. */
  onDeadLetter(cb: (run: RunMessage, deliveries: number) => Promise<void>): Unsubscribe;

  /** This process's address for the results of runs whose callers wait here. */
  resultAddress(processId: string): string;
  onResults(address: string, cb: (r: RunResult) => void): Unsubscribe;
  publishResult(address: string, r: RunResult): void;

  /** Cancels, heard by every executor. */
  publishCancel(runId: string): void;
  onCancel(cb: (runId: string) => void): Unsubscribe;

  /** Registry changes, heard by every process (each drops its cached name → id mapping). */
  publishWorkflowChange(c: WorkflowChange): void;
  onWorkflowChange(cb: (c: WorkflowChange) => void): Unsubscribe;

  ready(): Promise<boolean>;
  close(): Promise<void>;
}
