import { ErrorCodes } from '../errors/index.js';
import { durationMs, type StepDefinition } from './definition.js';
import type { RetryOptions } from '../sdk/index.js';

/**
 * How one step is run: its timeout and its retries. Counts are retries after the first
 * attempt everywhere (the seed's `executor.max_retries`, a step's `retry.max_retries`, a
 * function's `retry.maxRetries`, the record's `retry_count`): 3 retries is up to 4 attempts.
 */
export interface StepPolicy {
  timeoutMs: number;
  /** where the timeout comes from, for a timeout's message */
  timeoutFrom: 'step' | 'function' | 'default';
  /** retries after the first attempt */
  maxRetries: number;
  initialDelayMs: number;
  maxDelayMs: number;
  coefficient: number;
  /** codes that are never retried: the catalogue's non-retryable ones and the function's `nonRetryable` */
  nonRetryable: ReadonlySet<string>;
}

export interface PolicyDefaults {
  max_retries: number;
  retry_delay: number;
  max_retry_delay: number;
  step_timeout: number;
}

/** The catalogue's codes that no retry can fix (its `retryable: false` column). */
const CATALOGUE_NON_RETRYABLE: readonly string[] = Object.entries(ErrorCodes)
  .filter(([, e]) => !e.retryable)
  .map(([code]) => code);
const CATALOGUE_NON_RETRYABLE_SET: ReadonlySet<string> = new Set(CATALOGUE_NON_RETRYABLE);

/** The last policy resolved for each step definition, with what it was resolved from (definitions never change). */
const resolved = new WeakMap<object, { fn: unknown; d: PolicyDefaults; policy: StepPolicy }>();

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
  const last = resolved.get(step);
  if (last && last.fn === fn && last.d === d) return last.policy;
  const policy = resolve(step, fn, d);
  resolved.set(step, { fn, d, policy });
  return policy;
}

function resolve(step: StepDefinition, fn: { timeoutMs?: number; retry?: RetryOptions } | undefined, d: PolicyDefaults): StepPolicy {
  const r = step.retry;
  const fr = fn?.retry;
  return {
    timeoutMs: durationMs(step.timeout, fn?.timeoutMs ?? d.step_timeout),
    timeoutFrom: step.timeout !== undefined ? 'step' : fn?.timeoutMs !== undefined ? 'function' : 'default',
    maxRetries: Math.max(0, r?.max_retries ?? fr?.maxRetries ?? d.max_retries),
    initialDelayMs: durationMs(r?.retry_delay, fr?.initialDelayMs ?? d.retry_delay),
    maxDelayMs: durationMs(r?.max_delay, fr?.maxDelayMs ?? d.max_retry_delay),
    coefficient: r?.backoff_coefficient ?? (fr?.backoff === 'fixed' ? 1 : 2),
    nonRetryable: fr?.nonRetryable?.length ? new Set([...CATALOGUE_NON_RETRYABLE, ...fr.nonRetryable]) : CATALOGUE_NON_RETRYABLE_SET,
  };
}

/** Delay before attempt `nextAttempt` (2 = first retry): initial * coefficient^(n-2), capped. */
export function backoffDelay(p: StepPolicy, nextAttempt: number): number {
  const raw = p.initialDelayMs * p.coefficient ** Math.max(0, nextAttempt - 2);
  return Math.min(p.maxDelayMs, Math.round(raw));
}

/**
 * Whether failed attempt number `attempt` (1 = the first) should be retried: retries remain,
 * the error did not say `retryable: false` (NonRetryableError), and its code is not one that
 * never retries (the catalogue's non-retryable codes, the function's `nonRetryable`).
 */
export function shouldRetry(p: StepPolicy, attempt: number, error: { code: string; retryable?: boolean }): boolean {
  if (attempt > p.maxRetries) return false;
  if (error.retryable === false) return false;
  return !p.nonRetryable.has(error.code);
}

/** Says where a step's timeout comes from and how to raise it (appended to E_STEP_TIMEOUT's message). */
export function timeoutHint(p: Pick<StepPolicy, 'timeoutFrom'>): string {
  if (p.timeoutFrom === 'step') return 'its "timeout" in the workflow definition; raise it there';
  if (p.timeoutFrom === 'function') return 'timeoutMs in its defineFunction; raise it there, or set "timeout" on the step';
  return 'the default, executor.step_timeout; raise it with "timeout" on the step (e.g. "timeout": "2m") or timeoutMs in defineFunction';
}
