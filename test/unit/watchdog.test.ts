import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HEARTBEAT_MS, WatchReader, WatchSlot, createWatchBuffer } from '../../dist/runtime/executor/watchdog.js';

describe('worker watch slot', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('beats only while a step runs, and a thread idle for long is never taken for blocked', () => {
    const buf = createWatchBuffer();
    const reader = new WatchReader(buf);
    const cancelled: number[] = [];
    const slot = new WatchSlot(buf, 7, (t) => cancelled.push(t));
    expect(vi.getTimerCount()).toBe(0); // idle: no heartbeat timer at all
    vi.advanceTimersByTime(10_000);
    expect(reader.blocked(7, Date.now(), 75)).toBe(false);

    slot.started(1, Date.now() + 5_000);
    expect(vi.getTimerCount()).toBe(1);
    // the beat is fresh the moment the step starts, though the thread was silent for 10 s
    expect(reader.blocked(7, Date.now(), 75)).toBe(false);
    vi.advanceTimersByTime(HEARTBEAT_MS * 10);
    expect(reader.blocked(7, Date.now(), 75)).toBe(false);
    // cancels are read on the beat while the step runs
    reader.cancel(1);
    vi.advanceTimersByTime(HEARTBEAT_MS);
    expect(cancelled).toEqual([1]);

    slot.started(2, Date.now() + 5_000);
    slot.finished(1);
    expect(vi.getTimerCount()).toBe(1); // still one running
    slot.finished(2);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(reader.blocked(7, Date.now(), 75)).toBe(false);
  });

  it('a running step whose thread stops beating is found blocked', () => {
    const buf = createWatchBuffer();
    const reader = new WatchReader(buf);
    const slot = new WatchSlot(buf, 9);
    slot.started(3, Date.now() + 50);
    // the thread's loop is blocked: its timers do not run while the clock moves on
    vi.setSystemTime(Date.now() + 200);
    expect(reader.blocked(9, Date.now(), 75)).toBe(true);
    expect(reader.overdue(9, Date.now(), 100)).toBe(3);
  });
});
