import { describe, expect, it } from 'vitest';
import { findUnstorable } from '../../dist/runtime/store/index.js';
import { storableText } from '../../dist/runtime/store/storable.js';

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

  it('points at a BigInt (JSON.stringify throws on one)', () => {
    expect(findUnstorable({ rows: [{ n: 10n }] })).toEqual({ path: '/rows/0/n', what: 'a BigInt, which JSON cannot hold' });
  });
});

describe('storableText: what a text column takes', () => {
  it('replaces a NUL and a lone surrogate with U+FFFD and keeps whole pairs', () => {
    expect(storableText('a\u0000b')).toBe('a\ufffdb');
    expect(storableText('cut \ud83d')).toBe('cut \ufffd');
    expect(storableText('\ude00 first')).toBe('\ufffd first');
    expect(storableText('both \ud83d\ude00 \ud800\u0000')).toBe('both \ud83d\ude00 \ufffd\ufffd');
  });

  it('gives back the same string when nothing needs replacing', () => {
    const s = 'plain é 😀';
    expect(storableText(s)).toBe(s);
  });
});
