import { describe, expect, it } from 'vitest';
import { uuidv7 } from 'uuidv7';
import { uuidv7Time } from '../../dist/runtime/api/routes-executions.js';

describe('uuidv7Time', () => {
  it('reads the millisecond a run id was minted', () => {
    const before = Date.now();
    const id = uuidv7();
    const after = Date.now();
    expect(uuidv7Time(id)).toBeGreaterThanOrEqual(before);
    expect(uuidv7Time(id)).toBeLessThanOrEqual(after);
    expect(uuidv7Time('017f22e2-79b0-7cc3-98c4-dc0c0c07398f')).toBe(Date.parse('2022-02-22T19:22:22.000Z'));
  });
});
