import { describe, expect, it } from 'vitest';
import { findUnstorable } from '../../dist/runtime/store/index.js';

describe('findUnstorable: what PostgreSQL cannot hold in JSON, and where', () => {
  it('finds nothing in ordinary values', () => {
    for (const v of [null, 1, 'text', true, [], {}, { a: [1, { b: 'é😀' }], c: null }]) expect(findUnstorable(v)).toBeNull();
  });

  it('points at a NUL or a lone surrogate in a string, a key or an array item', () => {
    expect(findUnstorable('a\u0000b')).toEqual({ path: '', what: 'a NUL character (\\u0000)' });
    expect(findUnstorable({ a: { b: ['ok', 'x\u0000'] } })?.path).toBe('/a/b/1');
    expect(findUnstorable({ a: 1, ['k\u0000']: 2 })?.path).toBe('/k\u0000');
    expect(findUnstorable({ s: '\ud800' })).toEqual({ path: '/s', what: 'a lone UTF-16 surrogate (half of a \\uD8xx\\uDCxx pair)' });
    expect(findUnstorable([{ x: 'ok' }, { y: ['\udc00'] }], '/input')?.path).toBe('/input/1/y/0');
  });

  it('looks at own fields only', () => {
    const proto = { bad: 'x\u0000' };
    expect(findUnstorable(Object.create(proto) as object)).toBeNull();
  });
});
