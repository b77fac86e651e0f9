import { durationMs, type StepDefinition } from '../registry/index.js';
import type { RetryOptions } from '../sdk/index.js';

/** How one step is run: its timeout and its retries. */
export interface StepPolicy {
  timeoutMs: number;
  /** attempts in all, including the first */
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  coefficient: number;
  nonRetryable: ReadonlySet<string>;
}

export interface PolicyDefaults {
  max_retries: number;
  retry_delay: number;
  max_retry_delay: number;
  step_timeout: number;
}

/** Codes that no retry can fix. */
const NEVER_RETRY = ['E_INPUT_INVALID', 'E_OUTPUT_INVALID', 'E_STEP_UNKNOWN', 'E_STEP_CONFIG', 'E_STORE_REJECTED'];

/**
 * Resolves a step's policy. Precedence: the step in the workflow definition,
 * then the function's own `defineFunction` options, then the executor config
 * (the seed's `executor.max_retries` and `executor.retry_delay`).
 */
export function resolvePolicy(
  step: StepDefinition,
  fn: { timeoutMs?: number; retry?: RetryOptions } | undefined,
  d: PolicyDefaults,
): StepPolicy {
  const r = step.retry;
  const fr = fn?.retry;
  const maxAttempts = r?.max_retries !== undefined ? r.max_retries + 1 : (fr?.maxAttempts ?? d.max_retries + 1);
  return {
    timeoutMs: durationMs(step.timeout, fn?.timeoutMs ?? d.step_timeout),
    maxAttempts: Math.max(1, maxAttempts),
    initialDelayMs: durationMs(r?.retry_delay, fr?.initialDelayMs ?? d.retry_delay),
    maxDelayMs: durationMs(r?.max_delay, fr?.maxDelayMs ?? d.max_retry_delay),
    coefficient: r?.backoff_coefficient ?? (fr?.backoff === 'fixed' ? 1 : 2),
    nonRetryable: new Set([...NEVER_RETRY, ...(fr?.nonRetryable ?? [])]),
  };
}

/** Delay before attempt `nextAttempt` (2 = first retry): initial * coefficient^(n-2), capped. */
export function backoffDelay(p: StepPolicy, nextAttempt: number): number {
  const raw = p.initialDelayMs * p.coefficient ** Math.max(0, nextAttempt - 2);
  return Math.min(p.maxDelayMs, Math.round(raw));
}

/** Whether a failed attempt should be retried. */
export function shouldRetry(p: StepPolicy, attempt: number, error: { code: string; retryable?: boolean }): boolean {
  if (attempt >= p.maxAttempts) return false;
  if (error.retryable === false) return false;
  return !p.nonRetryable.has(error.code);
}
