import { describe, expect, it } from 'vitest';
import { Limiter } from '../../dist/runtime/engine/index.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('Limiter (defineFunction concurrency)', () => {
  it('runs at most `limit` at once and starts the waiting ones in arrival order', async () => {
    const l = new Limiter(2);
    const started: number[] = [];
    const release: (() => void)[] = [];
    const runs = [0, 1, 2, 3, 4].map((i) =>
      l.run(() => {
        started.push(i);
        return new Promise<number>((r) => (release[i] = () => r(i)));
      }),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    expect(l.queued).toBe(3);
    release[1]();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    release[0]();
    release[2]();
    await tick();
    expect(started).toEqual([0, 1, 2, 3, 4]);
    release[3]();
    release[4]();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4]);
    expect(l.queued).toBe(0);
  });

  it('frees the slot when the call throws', async () => {
    const l = new Limiter(1);
    await expect(l.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await l.run(async () => 'next')).toBe('next');
  });
});
