import type { AttemptResult, LogLine } from '../engine/index.js';
import type { OutboundPolicy } from '../net/index.js';
import type { PlainError } from '../errors/index.js';

/** One step attempt, sent to a worker thread (msgpack-encoded). */
export interface StepTask {
  type: string;
  input: unknown;
  config: Record<string, unknown>;
  runId: string;
  workflowId: string;
  stepName: string;
  attempt: number;
  runInput: unknown;
  steps: Record<string, unknown>;
  timeoutMs: number;
  /** where the timeout comes from and how to raise it (engine/policy.ts timeoutHint) */
  timeoutHint?: string;
  /** task number, for the watchdog */
  seq: number;
  /** ms since epoch after which a thread still blocked on this task is terminated */
  deadline: number;
}

export type StepLogLine = LogLine;

/** What a worker thread answers (msgpack-encoded); errors are data, never thrown. */
export type StepOutcome = AttemptResult;

export interface WorkerInit {
  root: string;
  dirs: string[];
  /** see watchdog.ts */
  watch: SharedArrayBuffer;
  /** dev mode: the catalogue generation to import (see catalogue.ts) */
  version?: number;
  /** where the http step may go (steps.http) */
  outbound: OutboundPolicy;
}

/** The error of a step attempt stopped because its run was cancelled (E_CANCELLED: the catalogue never retries it). */
export function cancelledError(stepName: string): PlainError {
  return { code: 'E_CANCELLED', message: `step "${stepName}" stopped: the run was cancelled` };
}
