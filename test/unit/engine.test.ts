import { describe, expect, it } from 'vitest';
import { backoffDelay, resolvePolicy, shouldRetry } from '../../dist/runtime/engine/index.js';
import { ErrorCodes } from '../../dist/runtime/errors/index.js';

const DEFAULTS = { max_retries: 3, retry_delay: 1000, max_retry_delay: 300_000, step_timeout: 30_000 };
const NEVER_RETRY = ['E_INPUT_INVALID', 'E_OUTPUT_INVALID', 'E_STEP_UNKNOWN', 'E_STEP_CONFIG', 'E_STORE_REJECTED'];
/** the catalogue's `retryable: false` codes: the one source of codes that are never retried */
const CATALOGUE_NON_RETRYABLE = Object.entries(ErrorCodes)
  .filter(([, e]) => !e.retryable)
  .map(([c]) => c);

describe('resolvePolicy', () => {
  it('uses the executor config when neither the step nor the function says anything', () => {
    const p = resolvePolicy({ name: 's', type: 'echo' }, undefined, DEFAULTS);
    expect(p.timeoutMs).toBe(30_000);
    expect(p.maxRetries).toBe(3); // up to 4 attempts: the first and 3 retries
    expect(p.initialDelayMs).toBe(1000);
    expect(p.maxDelayMs).toBe(300_000);
    expect(p.coefficient).toBe(2);
    expect([...p.nonRetryable].sort()).toEqual([...CATALOGUE_NON_RETRYABLE].sort());
    for (const c of NEVER_RETRY) expect(p.nonRetryable.has(c), c).toBe(true);
  });

  it('the function options override the config', () => {
    const p = resolvePolicy(
      { name: 's', type: 'x' },
      { timeoutMs: 5000, retry: { maxRetries: 6, initialDelayMs: 50, maxDelayMs: 400, backoff: 'fixed', nonRetryable: ['E_MINE'] } },
      DEFAULTS,
    );
    expect(p.timeoutMs).toBe(5000);
    expect(p.maxRetries).toBe(6);
    expect(p.initialDelayMs).toBe(50);
    expect(p.maxDelayMs).toBe(400);
    expect(p.coefficient).toBe(1);
    expect(p.nonRetryable.has('E_MINE')).toBe(true);
    for (const c of NEVER_RETRY) expect(p.nonRetryable.has(c)).toBe(true);
  });

  it('the step in the definition overrides the function and the config', () => {
    const fn = { timeoutMs: 5000, retry: { maxRetries: 6, initialDelayMs: 50, maxDelayMs: 400, backoff: 'fixed' as const } };
    const p = resolvePolicy(
      { name: 's', type: 'x', timeout: '2s', retry: { max_retries: 1, retry_delay: '250ms', max_delay: '1m', backoff_coefficient: 3 } },
      fn,
      DEFAULTS,
    );
    expect(p.timeoutMs).toBe(2000);
    expect(p.maxRetries).toBe(1);
    expect(p.initialDelayMs).toBe(250);
    expect(p.maxDelayMs).toBe(60_000);
    expect(p.coefficient).toBe(3);
  });

  it('mixes layers field by field', () => {
    // the step sets only the retry delay; attempts come from the function, the timeout from the config
    const p = resolvePolicy({ name: 's', type: 'x', retry: { retry_delay: 10 } }, { retry: { maxRetries: 8 } }, DEFAULTS);
    expect(p.initialDelayMs).toBe(10);
    expect(p.maxRetries).toBe(8);
    expect(p.timeoutMs).toBe(30_000);
    expect(p.maxDelayMs).toBe(300_000);
    expect(p.coefficient).toBe(2);
  });

  it('step max_retries 0 means exactly one attempt, even if the function allows more', () => {
    expect(resolvePolicy({ name: 's', type: 'x', retry: { max_retries: 0 } }, { retry: { maxRetries: 4 } }, DEFAULTS).maxRetries).toBe(0);
  });

  it('never resolves to fewer than one attempt', () => {
    expect(resolvePolicy({ name: 's', type: 'x' }, { retry: { maxRetries: -1 } }, DEFAULTS).maxRetries).toBe(0);
    expect(resolvePolicy({ name: 's', type: 'x' }, undefined, { ...DEFAULTS, max_retries: 0 }).maxRetries).toBe(0);
  });

  it('numbers in the step are milliseconds', () => {
    const p = resolvePolicy({ name: 's', type: 'x', timeout: 1234, retry: { max_delay: 999 } }, undefined, DEFAULTS);
    expect(p.timeoutMs).toBe(1234);
    expect(p.maxDelayMs).toBe(999);
  });
});

describe('backoffDelay', () => {
  const exp = { timeoutMs: 1, maxRetries: 9, initialDelayMs: 100, maxDelayMs: 1000, coefficient: 2, nonRetryable: new Set<string>() };

  it('grows exponentially from the first retry and is capped at maxDelay', () => {
    expect([2, 3, 4, 5, 6, 7, 30].map((a) => backoffDelay(exp, a))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('uses the initial delay for attempt numbers below 2', () => {
    expect(backoffDelay(exp, 1)).toBe(100);
    expect(backoffDelay(exp, 0)).toBe(100);
  });

  it('is constant with a fixed backoff (coefficient 1)', () => {
    const fixed = { ...exp, coefficient: 1, initialDelayMs: 250 };
    expect([2, 3, 4, 10].map((a) => backoffDelay(fixed, a))).toEqual([250, 250, 250, 250]);
  });

  it('rounds fractional coefficients to whole milliseconds', () => {
    const p = { ...exp, coefficient: 1.5, initialDelayMs: 100, maxDelayMs: 10_000 };
    expect([2, 3, 4, 5].map((a) => backoffDelay(p, a))).toEqual([100, 150, 225, 338]);
  });

  it('a cap below the initial delay wins', () => {
    expect(backoffDelay({ ...exp, initialDelayMs: 5000, maxDelayMs: 1000 }, 2)).toBe(1000);
  });

  it('works with a policy from resolvePolicy (fixed backoff from the function)', () => {
    const p = resolvePolicy({ name: 's', type: 'x' }, { retry: { initialDelayMs: 40, backoff: 'fixed' } }, DEFAULTS);
    expect([2, 3, 4].map((a) => backoffDelay(p, a))).toEqual([40, 40, 40]);
    const e = resolvePolicy({ name: 's', type: 'x', retry: { retry_delay: '1s', max_delay: '3s' } }, undefined, DEFAULTS);
    expect([2, 3, 4, 5].map((a) => backoffDelay(e, a))).toEqual([1000, 2000, 3000, 3000]);
  });
});

describe('shouldRetry', () => {
  const p = resolvePolicy({ name: 's', type: 'x', retry: { max_retries: 2 } }, { retry: { nonRetryable: ['E_CUSTOM_FATAL'] } }, DEFAULTS);

  it('retries a retryable failure while attempts remain', () => {
    expect(p.maxRetries).toBe(2);
    expect(shouldRetry(p, 1, { code: 'E_STEP_FAILED' })).toBe(true);
    expect(shouldRetry(p, 2, { code: 'E_STEP_TIMEOUT', retryable: true })).toBe(true);
  });

  it('stops once the retries are used up', () => {
    expect(shouldRetry(p, 3, { code: 'E_STEP_FAILED' })).toBe(false);
    expect(shouldRetry(p, 4, { code: 'E_STEP_FAILED' })).toBe(false);
  });

  it('never retries the built-in non-retryable codes', () => {
    for (const code of NEVER_RETRY) expect(shouldRetry(p, 1, { code }), code).toBe(false);
  });

  it('never retries codes the function lists as non-retryable', () => {
    expect(shouldRetry(p, 1, { code: 'E_CUSTOM_FATAL' })).toBe(false);
    expect(shouldRetry(resolvePolicy({ name: 's', type: 'x' }, undefined, DEFAULTS), 1, { code: 'E_CUSTOM_FATAL' })).toBe(true);
  });

  it('never retries an error marked retryable:false, whatever its code', () => {
    expect(shouldRetry(p, 1, { code: 'E_STEP_FAILED', retryable: false })).toBe(false);
  });

  it('retryable:true does not override a non-retryable code', () => {
    expect(shouldRetry(p, 1, { code: 'E_INPUT_INVALID', retryable: true })).toBe(false);
  });

  it('a one-attempt policy never retries', () => {
    const one = resolvePolicy({ name: 's', type: 'x', retry: { max_retries: 0 } }, undefined, DEFAULTS);
    expect(shouldRetry(one, 1, { code: 'E_STEP_FAILED' })).toBe(false);
  });
});
