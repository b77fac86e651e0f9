import { describe, expect, it } from 'vitest';
import {
  DurableConfigError,
  dueTicks,
  nextTick,
  resolvePolicy,
  runDefinition,
  sleepEnd,
  timeoutEnd,
  timeoutHint,
  type Unit,
} from '../../dist/runtime/engine/index.js';

describe('sleep and timeout configs', () => {
  const now = Date.parse('2026-12-02T10:00:00Z');
  it('takes a duration or an ISO time, exactly one of them', () => {
    expect(sleepEnd({ duration: '2s' }, now).toISOString()).toBe('2026-12-02T10:00:02.000Z');
    expect(sleepEnd({ duration: 1500 }, now).getTime()).toBe(now + 1500);
    expect(sleepEnd({ until: '2026-12-24T09:00:00Z' }, now).toISOString()).toBe('2026-12-24T09:00:00.000Z');
    expect(() => sleepEnd({}, now)).toThrow(DurableConfigError);
    expect(() => sleepEnd({ duration: '1s', until: '2026-12-24T09:00:00Z' }, now)).toThrow(/exactly one/);
    expect(() => sleepEnd({ until: 'tomorrow' }, now)).toThrow(/ISO 8601/);
    expect(() => sleepEnd({ duration: 'soon' }, now)).toThrow(/duration/);
    expect(() => sleepEnd({ duration: -5 }, now)).toThrow(/duration/);
  });
  it('a timeout is optional', () => {
    expect(timeoutEnd({}, now)).toBeNull();
    expect(timeoutEnd({ timeout: '1h' }, now)?.getTime()).toBe(now + 3_600_000);
    expect(() => timeoutEnd({ timeout: 'never' }, now)).toThrow(/timeout/);
  });
});

describe('schedule ticks (croner)', () => {
  const s = (catchup: 'none' | 'latest' | 'all', next: string) => ({
    cron: '*/2 * * * * *',
    timezone: 'UTC',
    catchup,
    next_tick: new Date(next),
  });
  const now = new Date('2026-12-02T10:00:10.500Z');
  it('fires the due tick on time', () => {
    expect(dueTicks(s('none', '2026-12-02T10:00:10Z'), now).map((d) => d.toISOString())).toEqual(['2026-12-02T10:00:10.000Z']);
    expect(dueTicks(s('none', '2026-12-02T10:00:12Z'), now)).toEqual([]);
  });
  it('after downtime: none drops missed ticks, latest fires the last, all fires each', () => {
    const down = new Date('2026-12-02T10:01:00.500Z');
    expect(dueTicks(s('none', '2026-12-02T10:00:10Z'), down).map((d) => d.toISOString())).toEqual([
      '2026-12-02T10:00:52.000Z',
      '2026-12-02T10:00:54.000Z',
      '2026-12-02T10:00:56.000Z',
      '2026-12-02T10:00:58.000Z',
      '2026-12-02T10:01:00.000Z',
    ]); // the ones within 10 s are not missed
    expect(dueTicks(s('latest', '2026-12-02T10:00:10Z'), down).map((d) => d.toISOString())).toEqual(['2026-12-02T10:01:00.000Z']);
    expect(dueTicks(s('all', '2026-12-02T10:00:10Z'), down)).toHaveLength(26);
  });
  it('honours the time zone and the 5-field form', () => {
    const t = nextTick('0 9 * * *', 'Europe/Stockholm', new Date('2026-12-02T07:00:00Z'));
    expect(t?.toISOString()).toBe('2026-12-02T08:00:00.000Z'); // 09:00 in Stockholm (UTC+1 in December)
    expect(() => nextTick('*/2 * * *', 'UTC', new Date())).toThrow();
  });
});

describe('catch and suspension in the interpreter', () => {
  const run = (def: any, script: (u: Unit) => any, done = new Map<string, unknown>(), input: unknown = { x: 1 }) =>
    runDefinition(def, { runId: 'r', input, done }, { step: async (u) => script(u), node: () => {} });

  it('a caught failure runs the catch steps with the error, and the run goes on after the node', async () => {
    const seen: Unit[] = [];
    const out = await run(
      {
        steps: [
          { name: 'pay', type: 't', catch: [{ name: 'refund', type: 't', config: { why: '{{ error.code }}' } }] },
          { name: 'after', type: 't' },
        ],
      },
      (u) => {
        seen.push(u);
        if (u.name === 'pay') return { ok: false, error: { code: 'E_DECLINED', message: 'no' } };
        return { ok: true, output: u.name };
      },
    );
    expect(out).toEqual({ ok: true, output: 'after' });
    expect(seen.map((u) => u.name)).toEqual(['pay', 'pay#catch/refund', 'after']);
    expect(seen[1].roots.error).toMatchObject({ code: 'E_DECLINED', message: 'no' });
    expect(seen[2].input).toBe('pay#catch/refund'); // the catch's output stands for the node's
  });

  it('an uncaught failure fails the run; a suspension stops it without a result', async () => {
    const failed = await run({ steps: [{ name: 'a', type: 't' }] }, () => ({ ok: false, error: { code: 'E_X', message: 'x' } }));
    expect(failed).toMatchObject({ ok: false, step: 'a', error: { code: 'E_X' } });
    const ran: string[] = [];
    const slept = await run(
      {
        steps: [
          { name: 'a', type: 't' },
          { name: 'b', type: 't' },
        ],
      },
      (u) => {
        ran.push(u.name);
        return { ok: false, suspended: true };
      },
    );
    expect(slept).toEqual({ ok: false, suspended: true });
    expect(ran).toEqual(['a']); // nothing after a waiting step runs
  });

  it('a waiting branch does not stop its siblings: they run to their end (or their own wait), then the run sleeps', async () => {
    const ran: string[] = [];
    const out = await run(
      {
        steps: [
          {
            name: 'p',
            parallel: {
              branches: [
                {
                  name: 'waits',
                  steps: [
                    { name: 'w', type: 'sleep' },
                    { name: 'after-w', type: 't' },
                  ],
                },
                {
                  name: 'works',
                  steps: [
                    { name: 'x', type: 't' },
                    { name: 'y', type: 't' },
                  ],
                },
              ],
            },
          },
        ],
      },
      async (u) => {
        ran.push(u.name);
        if (u.step.type === 'sleep') return { ok: false, suspended: true };
        await new Promise((r) => setTimeout(r, 5)); // the sibling is still running when the wait parks
        return { ok: true, output: u.name };
      },
    );
    expect(out).toEqual({ ok: false, suspended: true });
    expect(ran.sort()).toEqual(['p/waits/w', 'p/works/x', 'p/works/y']);
  });

  it('every item of a map that waits parks in the same drive (not one wave per drive)', async () => {
    const ran: string[] = [];
    const out = await run(
      { steps: [{ name: 'm', map: { items: '{{ input.xs }}', concurrency: 2, steps: [{ name: 'nap', type: 'sleep' }] } }] },
      (u) => {
        ran.push(u.name);
        return { ok: false, suspended: true };
      },
      new Map(),
      { xs: [1, 2, 3, 4, 5] },
    );
    expect(out).toEqual({ ok: false, suspended: true });
    expect(ran).toHaveLength(5);
  });

  it('a sibling that fails while another branch waits still fails the run', async () => {
    const out = await run(
      {
        steps: [
          {
            name: 'p',
            parallel: {
              branches: [
                { name: 'a', steps: [{ name: 'w', type: 'sleep' }] },
                { name: 'b', steps: [{ name: 'f', type: 't' }] },
              ],
            },
          },
        ],
      },
      (u) => (u.step.type === 'sleep' ? { ok: false, suspended: true } : { ok: false, error: { code: 'E_X', message: 'x' } }),
    );
    expect(out).toMatchObject({ ok: false, step: 'p/b/f', error: { code: 'E_X' } });
  });
});

describe('a timeout says where it comes from', () => {
  const d = { max_retries: 0, retry_delay: 100, max_retry_delay: 1000, step_timeout: 30_000 };
  it('the default, a function option, or the step', () => {
    expect(timeoutHint(resolvePolicy({ name: 's', type: 't' }, undefined, d))).toMatch(/default, executor\.step_timeout.*"timeout"/);
    expect(timeoutHint(resolvePolicy({ name: 's', type: 't' }, { timeoutMs: 5 }, d))).toMatch(/timeoutMs in its defineFunction/);
    expect(timeoutHint(resolvePolicy({ name: 's', type: 't', timeout: '1s' }, { timeoutMs: 5 }, d))).toMatch(/workflow definition/);
  });
});
