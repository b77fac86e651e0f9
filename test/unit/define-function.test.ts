import { describe, expect, it } from 'vitest';
import { defineFunction, NonRetryableError, RetryableError } from '../../dist/runtime/sdk/index.js';

describe('defineFunction options', () => {
  const handler = () => null;

  it('accepts a positive integer concurrency and memoryMb', () => {
    const fn = defineFunction({ name: 'x', concurrency: 3, memoryMb: 64, handler });
    expect(fn).toMatchObject({ concurrency: 3, memoryMb: 64, kind: 'workflow-function' });
  });

  it.each([0, -1, 1.5, Number.NaN, '2'])('refuses concurrency %s with a TypeError naming the option', (v) => {
    expect(() => defineFunction({ name: 'x', concurrency: v as number, handler })).toThrow(TypeError);
    expect(() => defineFunction({ name: 'x', concurrency: v as number, handler })).toThrow(
      /defineFunction \(x\): concurrency must be a positive integer/,
    );
  });

  it.each([0, 8, 64.5, '64'])('refuses memoryMb %s with a TypeError naming the option', (v) => {
    expect(() => defineFunction({ memoryMb: v as number, handler })).toThrow(/defineFunction: memoryMb must be an integer of at least 16/);
  });

  it('counts retries, like the workflow and the config: maxAttempts is refused with the new name', () => {
    expect(defineFunction({ name: 'x', retry: { maxRetries: 0 }, handler }).retry).toEqual({ maxRetries: 0 });
    expect(() => defineFunction({ name: 'x', retry: { maxAttempts: 3 } as never, handler })).toThrow(
      /defineFunction \(x\): retry.maxAttempts is now retry.maxRetries, the retries after the first attempt \(maxAttempts 3 = maxRetries 2\)/,
    );
    for (const v of [-1, 1.5, '2']) {
      expect(() => defineFunction({ retry: { maxRetries: v as number }, handler })).toThrow(
        /retry.maxRetries must be an integer of at least 0/,
      );
    }
  });
});

describe('coded errors', () => {
  it('RetryableError and NonRetryableError carry a code and say whether a retry may help', () => {
    const r = new RetryableError('E_BUSY', 'try later');
    const n = new NonRetryableError('E_BAD', 'never');
    expect([r.code, r.message, r.retryable, r instanceof Error]).toEqual(['E_BUSY', 'try later', true, true]);
    expect([n.code, n.message, n.retryable, n instanceof Error]).toEqual(['E_BAD', 'never', false, true]);
  });
});
