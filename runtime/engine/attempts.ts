import type { PlainError } from '../errors/index.js';
import { backoffDelay, shouldRetry, type StepPolicy } from './policy.js';

/** A log line of a step attempt; in a step record after a retry it carries its attempt number. */
export interface LogLine {
  t: number;
  level: 'info' | 'warn' | 'error';
  msg: string;
  data?: unknown;
  attempt?: number;
}

/** Log lines a step record keeps (and one attempt may write). */
export const MAX_LOG_LINES = 200;

/** What one attempt gave: an output, or an error as data (with `retryable: false` when it said so). */
export type AttemptResult =
  { ok: true; output: unknown; logs: LogLine[] } | { ok: false; error: PlainError & { retryable?: boolean }; logs: LogLine[] };

/** The state of the step's record after each attempt, for the caller to store. */
export interface AttemptRecord {
  attempt: number;
  status: 'running' | 'completed' | 'failed';
  output: unknown;
  error: PlainError | null;
  completedAt: Date | null;
  logs: LogLine[] | null;
}

export interface AttemptLoop {
  policy: StepPolicy;
  /** runs attempt `n` (1 = the first) */
  attempt(n: number): Promise<AttemptResult>;
  /** true once another part of the run has failed: finish this attempt, do not retry */
  stopped: () => boolean;
  /** waits out a backoff, or less if the run fails meanwhile; true when it did */
  sleepUnlessStopped: (ms: number) => Promise<boolean>;
  /** the record after each attempt (and after a backoff cut short) */
  record(r: AttemptRecord): void;
  /** a failed attempt is about to be retried after `delayMs` */
  retrying?(attempt: number, delayMs: number, error: PlainError): void;
}

/**
 * Runs a step's attempts until one succeeds or the policy gives up: how retries work, in
 * one place. A failed attempt is retried while `shouldRetry` says so and the run has not
 * failed elsewhere, after `backoffDelay`. The record keeps the logs of earlier attempts,
 * each line with its attempt number, and one warn line per failed attempt with its error.
 */
export async function runAttempts(l: AttemptLoop): Promise<{ ok: true; output: unknown } | { ok: false; error: PlainError }> {
  let history: LogLine[] | null = null;
  for (let attempt = 1; ; attempt++) {
    const outcome = await l.attempt(attempt);
    const logs = withHistory(history, outcome.logs, attempt);
    if (outcome.ok) {
      l.record({ attempt, status: 'completed', output: outcome.output, error: null, completedAt: new Date(), logs });
      return { ok: true, output: outcome.output };
    }
    const error = outcome.error;
    const retry = shouldRetry(l.policy, attempt, error) && !l.stopped();
    l.record({ attempt, status: retry ? 'running' : 'failed', output: null, error, completedAt: retry ? null : new Date(), logs });
    if (!retry) return { ok: false, error };
    history = [
      ...(history ? (logs ?? []) : outcome.logs.map((line) => ({ ...line, attempt }))),
      { t: Date.now(), level: 'warn', msg: `attempt ${attempt} failed: ${error.code}: ${error.message}`, attempt },
    ];
    const delay = backoffDelay(l.policy, attempt + 1);
    l.retrying?.(attempt, delay, error);
    if (await l.sleepUnlessStopped(delay)) {
      // another branch or item failed the run during the backoff: this step ends with its last error
      l.record({ attempt, status: 'failed', output: null, error, completedAt: new Date(), logs: history });
      return { ok: false, error };
    }
  }
}

/**
 * A step record's logs: the current attempt's lines, after those of earlier attempts and
 * their failures once there was a retry (each line then carries its attempt number).
 */
function withHistory(history: LogLine[] | null, lines: LogLine[], attempt: number): LogLine[] | null {
  if (!history) return lines.length ? lines : null;
  const all = history.concat(lines.map((line) => ({ ...line, attempt })));
  return all.length > MAX_LOG_LINES ? all.slice(-MAX_LOG_LINES) : all;
}
