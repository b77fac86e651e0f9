import { describe, expect, it } from 'vitest';
import { Cancellations } from '../../dist/runtime/executor/cancellations.js';

describe('run cancellations (executor/cancellations.ts)', () => {
  it('fires a driven run’s listeners once when it is cancelled, not those removed, and not another run’s', () => {
    const c = new Cancellations();
    const a = c.track('a');
    const b = c.track('b');
    const heard: string[] = [];
    const kept = () => heard.push('kept');
    const removed = () => heard.push('removed');
    a.addEventListener('abort', kept, { once: true });
    a.addEventListener('abort', removed);
    a.removeEventListener('abort', removed);
    b.addEventListener('abort', () => heard.push('b'));
    expect(a.aborted).toBe(false);
    c.cancel('a');
    c.cancel('a');
    expect(a.aborted).toBe(true);
    expect(b.aborted).toBe(false);
    expect(heard).toEqual(['kept']);
    // a listener added after the cancel is not called (the signal is aborted: callers look at that)
    a.addEventListener('abort', () => heard.push('late'));
    expect(heard).toEqual(['kept']);
    expect(c.isCancelled('a')).toBe(true);
  });

  it('remembers a cancel for a run not driven here, until forgotten; untracked runs are not aborted', () => {
    const c = new Cancellations();
    c.cancel('queued');
    expect(c.isCancelled('queued')).toBe(true);
    c.forget('queued');
    expect(c.isCancelled('queued')).toBe(false);
    const s = c.track('done');
    c.untrack('done');
    c.cancel('done');
    expect(s.aborted).toBe(false);
  });
});
