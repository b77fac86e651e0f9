import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TtlCache } from '../../dist/runtime/cache/index.js';
import { Waiters } from '../../dist/runtime/api/index.js';

describe('TtlCache', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('returns a value until its TTL has passed, then undefined', () => {
    const c = new TtlCache<string>(1000);
    c.set('k', 'v');
    expect(c.get('k')).toBe('v');
    vi.advanceTimersByTime(999);
    expect(c.get('k')).toBe('v');
    vi.advanceTimersByTime(1); // exactly at the TTL: still there
    expect(c.get('k')).toBe('v');
    vi.advanceTimersByTime(1);
    expect(c.get('k')).toBeUndefined();
    // an expired entry stays gone even if the clock goes back
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    expect(c.get('k')).toBeUndefined();
  });

  it('each entry has its own expiry; set refreshes it', () => {
    const c = new TtlCache<number>(1000);
    c.set('a', 1);
    vi.advanceTimersByTime(600);
    c.set('b', 2);
    vi.advanceTimersByTime(600); // a is 1200 ms old, b 600 ms
    expect(c.get('a')).toBeUndefined();
    expect(c.get('b')).toBe(2);
    c.set('b', 3);
    vi.advanceTimersByTime(900);
    expect(c.get('b')).toBe(3);
  });

  it('returns undefined for unknown keys and after delete', () => {
    const c = new TtlCache<string>(1000);
    expect(c.get('missing')).toBeUndefined();
    c.set('k', 'v');
    c.delete('k');
    expect(c.get('k')).toBeUndefined();
    c.delete('never-set'); // no throw
  });

  it('keeps at most `max` entries, dropping the oldest first', () => {
    const c = new TtlCache<number>(60_000, 3);
    for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) c.set(k, i);
    expect(c.get('a')).toBeUndefined();
    expect([c.get('b'), c.get('c'), c.get('d')]).toEqual([1, 2, 3]);
    c.set('e', 4);
    expect(c.get('b')).toBeUndefined();
    expect([c.get('c'), c.get('d'), c.get('e')]).toEqual([2, 3, 4]);
  });

  it('stays bounded over many inserts', () => {
    const c = new TtlCache<number>(60_000, 100);
    for (let i = 0; i < 10_000; i++) c.set(`k${i}`, i);
    let present = 0;
    for (let i = 0; i < 10_000; i++) if (c.get(`k${i}`) !== undefined) present++;
    expect(present).toBe(100);
    expect(c.get('k9999')).toBe(9999);
    expect(c.get('k9900')).toBe(9900);
    expect(c.get('k9899')).toBeUndefined();
  });

  it('updating a key that is already cached does not evict another live entry', () => {
    const c = new TtlCache<number>(60_000, 2);
    c.set('a', 1);
    c.set('b', 2);
    c.set('b', 20); // same key: the cache does not grow, so nothing needs to go
    expect(c.get('b')).toBe(20);
    expect(c.get('a')).toBe(1);
  });
});

describe('Waiters', () => {
  const result = (run_id: string, output: unknown = { ok: true }) => ({ run_id, status: 'completed', output });

  it('resolves with the delivered result before the timeout', async () => {
    const w = new Waiters();
    const { promise } = w.wait('r1', 5_000);
    expect(w.size).toBe(1);
    const t0 = Date.now();
    w.deliver(result('r1', { n: 1 }));
    await expect(promise).resolves.toEqual({ run_id: 'r1', status: 'completed', output: { n: 1 } });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(w.size).toBe(0);
  });

  it('resolves with null after the timeout when nothing is delivered', async () => {
    const w = new Waiters();
    const t0 = Date.now();
    const { promise } = w.wait('r2', 50);
    await expect(promise).resolves.toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    expect(w.size).toBe(0);
  });

  it('a delivery after the timeout is ignored (the caller already got null)', async () => {
    const w = new Waiters();
    const { promise } = w.wait('r3', 20);
    expect(await promise).toBeNull();
    w.deliver(result('r3'));
    expect(await promise).toBeNull();
    expect(w.size).toBe(0);
  });

  it('delivers only to the waiter of the same run id', async () => {
    const w = new Waiters();
    const a = w.wait('a', 5_000);
    const b = w.wait('b', 50);
    w.deliver(result('a', 'A'));
    w.deliver(result('zzz')); // nobody waits: no effect
    expect((await a.promise)?.output).toBe('A');
    expect(await b.promise).toBeNull();
    expect(w.size).toBe(0);
  });

  it('cancel resolves with null at once and frees the slot', async () => {
    const w = new Waiters();
    const h = w.wait('r4', 60_000);
    h.cancel();
    await expect(h.promise).resolves.toBeNull();
    expect(w.size).toBe(0);
    w.deliver(result('r4'));
    expect(await h.promise).toBeNull();
  });

  it('clears its timer when delivered (no timer keeps the process alive)', async () => {
    vi.useFakeTimers();
    try {
      const w = new Waiters();
      const h = w.wait('r5', 60_000);
      expect(vi.getTimerCount()).toBe(1);
      w.deliver(result('r5'));
      await h.promise;
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
