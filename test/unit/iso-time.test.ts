import { describe, expect, it } from 'vitest';
import { isoTime } from '../../dist/runtime/iso-time.js';

describe('isoTime: toISOString, cached by the second', () => {
  it('gives what toISOString gives, across seconds, back and forth, and outside the four-digit years', () => {
    const now = Date.now();
    const samples = [
      now,
      now + 1,
      now + 999,
      now + 1000,
      now - 1,
      now,
      0,
      -1,
      -999,
      -1000,
      -1001,
      999,
      1000,
      Date.UTC(2026, 11, 31, 23, 59, 59, 999),
      Date.UTC(2027, 0, 1),
      253402300799999,
      253402300800000,
      -62167219200001,
    ];
    for (let i = 0; i < 5000; i++) samples.push(now + Math.floor(Math.random() * 20_000) - 10_000);
    for (const ms of samples) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});
