import { describe, expect, it } from 'vitest';
import { resolvePolicy, runAttempts, type AttemptRecord, type AttemptResult } from '../../dist/runtime/engine/index.js';

const DEFAULTS = { max_retries: 3, retry_delay: 5, max_retry_delay: 50, step_timeout: 1000 };

/** A loop over scripted attempt results, recording what the loop stores and how long it waits. */
function loop(
  results: AttemptResult[],
  o: { retries?: number; nonRetryable?: string[]; stopAfter?: number; stopInBackoff?: boolean } = {},
) {
  const records: AttemptRecord[] = [];
  const delays: number[] = [];
  let calls = 0;
  const policy = resolvePolicy(
    { name: 's', type: 'x', retry: { max_retries: o.retries ?? 3, retry_delay: 10 } },
    { retry: { nonRetryable: o.nonRetryable } },
    DEFAULTS,
  );
  const run = runAttempts({
    policy,
    attempt: async (n) => {
      calls++;
      expect(n).toBe(calls);
      return results[Math.min(n - 1, results.length - 1)];
    },
    stopped: () => o.stopAfter !== undefined && calls >= o.stopAfter,
    sleepUnlessStopped: async (ms) => {
      delays.push(ms);
      return o.stopInBackoff ?? false;
    },
    record: (r) => records.push(r),
  });
  return { run, records, delays, calls: () => calls };
}

const fail = (code: string, extra: object = {}): AttemptResult => ({
  ok: false,
  error: { code, message: `${code} happened`, ...extra },
  logs: [],
});
const ok = (output: unknown): AttemptResult => ({ ok: true, output, logs: [{ t: 1, level: 'info', msg: 'done' }] });

describe('runAttempts: how retries work', () => {
  it('retries a failing attempt with backoff until one succeeds, keeping earlier attempts in the logs', async () => {
    const l = loop([fail('E_STEP_FAILED'), fail('E_STEP_TIMEOUT'), ok({ n: 1 })]);
    expect(await l.run).toEqual({ ok: true, output: { n: 1 } });
    expect(l.calls()).toBe(3);
    expect(l.delays).toEqual([10, 20]);
    expect(l.records.map((r) => [r.attempt, r.status])).toEqual([
      [1, 'running'],
      [2, 'running'],
      [3, 'completed'],
    ]);
    const last = l.records.at(-1)!;
    expect(last.logs!.map((x) => [x.attempt, x.level, x.msg])).toEqual([
      [1, 'warn', 'attempt 1 failed: E_STEP_FAILED: E_STEP_FAILED happened'],
      [2, 'warn', 'attempt 2 failed: E_STEP_TIMEOUT: E_STEP_TIMEOUT happened'],
      [3, 'info', 'done'],
    ]);
  });

  it('gives up after max_retries retries with the last error', async () => {
    const l = loop([fail('E_STEP_FAILED')], { retries: 2 });
    expect(await l.run).toEqual({ ok: false, error: { code: 'E_STEP_FAILED', message: 'E_STEP_FAILED happened' } });
    expect(l.calls()).toBe(3);
    expect(l.records.at(-1)).toMatchObject({ attempt: 3, status: 'failed' });
    expect(l.records.at(-1)!.completedAt).toBeInstanceOf(Date);
  });

  it('never retries the catalogue codes no retry can fix, a retryable:false error or a function nonRetryable code', async () => {
    for (const r of [fail('E_INPUT_INVALID'), fail('E_STEP_CONFIG'), fail('E_VALIDATION'), fail('E_MINE', { retryable: false })]) {
      const l = loop([r]);
      expect((await l.run).ok).toBe(false);
      expect(l.calls(), r.ok ? '' : r.error.code).toBe(1);
    }
    const listed = loop([fail('E_LISTED')], { nonRetryable: ['E_LISTED'] });
    await listed.run;
    expect(listed.calls()).toBe(1);
  });

  it('retries a function error code the catalogue does not know', async () => {
    const l = loop([fail('E_UPSTREAM_BUSY'), ok(1)]);
    expect(await l.run).toEqual({ ok: true, output: 1 });
    expect(l.calls()).toBe(2);
  });

  it('does not retry once the run has failed elsewhere, and ends a backoff cut short as failed', async () => {
    const stopped = loop([fail('E_STEP_FAILED')], { stopAfter: 1 });
    expect((await stopped.run).ok).toBe(false);
    expect(stopped.calls()).toBe(1);
    expect(stopped.delays).toEqual([]);

    const cut = loop([fail('E_STEP_FAILED')], { stopInBackoff: true });
    expect((await cut.run).ok).toBe(false);
    expect(cut.calls()).toBe(1);
    expect(cut.records.map((r) => r.status)).toEqual(['running', 'failed']);
    expect(cut.records.at(-1)!.logs!.at(-1)!.msg).toBe('attempt 1 failed: E_STEP_FAILED: E_STEP_FAILED happened');
  });
});
