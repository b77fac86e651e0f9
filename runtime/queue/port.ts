import type { RunMessage, RunResult, WorkflowChange } from './codec.js';

/** A delivered run message, with the transport kept out of the executor's sight. */
export interface Delivery {
  data: RunMessage;
  /** 1 on first delivery */
  deliveryCount: number;
  ack(): void;
  /** tell the queue we are still working on it (extends the lease, `nats.ack_wait`) */
  working(): void;
}

/** Stops a subscription. */
export type Unsubscribe = () => void;

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
  /** Stores a run; resolves once it is durable. `msgId` deduplicates within the duplicate window. */
  publishRun(msg: RunMessage, msgId?: string): Promise<{ duplicate: boolean }>;
  /** Hands each run to `handle`, at most `maxInFlight` at once. Resolves to a stop function. */
  consumeRuns(maxInFlight: number, handle: (d: Delivery) => Promise<void>): Promise<() => Promise<void>>;
  /** Runs waiting for an executor, and runs delivered but not acked. */
  consumerPending(): Promise<{ pending: number; ackPending: number }>;
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
