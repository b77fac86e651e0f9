import { describe, expect, it } from 'vitest';
import { defineFunction } from '../../dist/runtime/sdk/index.js';

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
});
