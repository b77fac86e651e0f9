import { Packr } from 'msgpackr';

/** A run as queued: everything an executor needs to start or resume it. */
export interface RunMessage {
  run_id: string;
  workflow_id: string;
  input: unknown;
  /** ms since epoch, when the API accepted the run */
  accepted_at: number;
  /** the result address of the API process whose caller waits for the result (execute with wait=true) */
  reply?: string;
  /**
   * JetStream: deliveries of this run before this message, when an executor that stopped handed
   * the run back by publishing it again (see JetStreamQueue.consumeRuns). The delivery count
   * is this plus the message's own, so the next executor resumes from the recorded steps.
   */
  delivered_before?: number;
  /**
   * A resume: the drive of the run this message is for (1, 2, ... each time the run wakes from
   * a durable wait, or is redriven). An executor takes it only if the run's record still waits
   * for that drive (store/waits.ts `claim`): a stale or repeated message is acked and dropped.
   */
  drive?: number;
  /** a child run: the run whose `workflow` step waits for it */
  parent_run_id?: string;
}

/** A finished run, as sent to a waiting API process. */
export interface RunResult {
  run_id: string;
  status: string;
  output?: unknown;
  error?: { code: string; message: string } | null;
  started_at?: number;
  completed_at?: number;
  /** too large for one message: only the run id and status came; the waiter reads the record */
  partial?: boolean;
}

/** A request to cancel a run, broadcast to every executor. */
export interface CancelMessage {
  run_id: string;
}

/** A workflow whose latest version or status changed, broadcast to every process. */
export interface WorkflowChange {
  id: string;
  name: string;
}

// One Packr per process; plain maps (no record extension) so that any version
// of the runtime can read any other's messages.
const packr = new Packr({ useRecords: false, moreTypes: false });

export function encode(v: unknown): Uint8Array {
  return packr.pack(v);
}

export function decode<T>(buf: Uint8Array): T {
  return packr.unpack(buf) as T;
}
