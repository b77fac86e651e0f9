import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Circuit } from '../../dist/runtime/cache/circuit.js';

describe('Circuit', () => {
  const log = pino({ level: 'silent' });

  it('stops calling after the failures in a row, probes after openMs, and closes on a success', async () => {
    const c = new Circuit({ failures: 3, openMs: 60, log, name: 'dep' });
    let calls = 0;
    let up = false;
    const fn = async () => {
      calls++;
      if (!up) throw new Error('down');
      return 'v';
    };
    for (let i = 0; i < 3; i++) expect(await c.call(fn, 'fallback')).toBe('fallback');
    expect(calls).toBe(3);
    expect(c.isOpen).toBe(true);
    for (let i = 0; i < 10; i++) expect(await c.call(fn, 'fallback')).toBe('fallback');
    expect(calls).toBe(3); // open: no call at all
    await new Promise((r) => setTimeout(r, 70));
    expect(await c.call(fn, 'fallback')).toBe('fallback'); // the probe, still down: open again
    expect(calls).toBe(4);
    expect(await c.call(fn, 'fallback')).toBe('fallback');
    expect(calls).toBe(4);
    up = true;
    await new Promise((r) => setTimeout(r, 70));
    expect(await c.call(fn, 'fallback')).toBe('v');
    expect(c.isOpen).toBe(false);
    expect(await c.call(fn, 'fallback')).toBe('v');
    expect(calls).toBe(6);
  });

  it('a success resets the count: failures must come in a row', async () => {
    const c = new Circuit({ failures: 2, openMs: 1000, log, name: 'dep' });
    let n = 0;
    const flaky = async () => {
      if (n++ % 2 === 0) throw new Error('x');
      return 1;
    };
    for (let i = 0; i < 6; i++) await c.call(flaky, 0);
    expect(c.isOpen).toBe(false);
  });
});
