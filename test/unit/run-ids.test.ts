import { describe, expect, it } from 'vitest';
import { uuidv7, uuidv7Time } from '../../dist/runtime/ids.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('run ids (runtime/ids.ts)', () => {
  it('are UUIDv7, strictly ascending, and unique across many refills of the random pool', () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7());
    for (const id of ids) expect(id).toMatch(V7);
    for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1]).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // the random part differs (not a pool read twice)
    expect(new Set(ids.map((id) => id.slice(19))).size).toBeGreaterThan(9_990);
  });

  it('carry the millisecond they were minted (uuidv7Time)', () => {
    const before = Date.now();
    const id = uuidv7();
    const after = Date.now();
    expect(uuidv7Time(id)).toBeGreaterThanOrEqual(before);
    expect(uuidv7Time(id)).toBeLessThanOrEqual(after);
    expect(uuidv7Time('017f22e2-79b0-7cc3-98c4-dc0c0c07398f')).toBe(Date.parse('2022-02-22T19:22:22.000Z'));
  });
});
