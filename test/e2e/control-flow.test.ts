import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrashHarness } from '../helpers/crash.js';
import { testSql, waitFor } from '../helpers/env.js';
import { testModes } from '../helpers/modes.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

// parallel, map and choice through HTTP, the executor and Postgres
const ORDER = {
  order_id: 'o-7',
  tier: 'gold',
  items: [
    { sku: 'a', qty: 2 },
    { sku: 'b', qty: 1 },
    { sku: 'c', qty: 5 },
  ],
};

const FULFIL = {
  steps: [
    { name: 'load', type: 'transform', config: { template: { id: '{{ run.input.order_id }}', items: '{{ run.input.items }}' } } },
    {
      name: 'checks',
      parallel: {
        branches: [
          { name: 'fraud', steps: [{ name: 'score', type: 'transform', config: { template: { score: 3, order: '{{ input.id }}' } } }] },
          {
            name: 'stock',
            steps: [
              { name: 'wait', type: 'delay', config: { ms: 30 } },
              {
                name: 'count',
                type: 'transform',
                config: { template: { lines: '{{ steps.load.items.length }}', after_wait: '{{ steps.wait.id }}' } },
              },
            ],
          },
        ],
      },
    },
    {
      name: 'pack',
      map: {
        items: '{{ steps.load.items }}',
        concurrency: 2,
        steps: [
          { name: 'pick', type: 'delay', config: { ms: 20 } },
          {
            name: 'label',
            type: 'transform',
            config: {
              template: { n: '{{ index }}', sku: '{{ item.sku }}', qty: '{{ input.qty }}', fraud: '{{ steps.checks.fraud.score }}' },
            },
          },
        ],
      },
    },
    {
      name: 'route',
      choice: {
        branches: [
          {
            name: 'risky',
            when: { path: 'steps.checks.fraud.score', gt: 50 },
            steps: [{ name: 'hold', type: 'echo', config: { message: 'held' } }],
          },
          {
            name: 'vip',
            when: {
              all: [
                { path: 'run.input.tier', in: ['gold', 'platinum'] },
                { path: 'steps.pack[2].qty', gte: 5 },
              ],
            },
            steps: [{ name: 'express', type: 'echo', config: { message: 'express {{ run.input.order_id }}' } }],
          },
        ],
        default: [{ name: 'standard', type: 'echo', config: { message: 'standard' } }],
      },
    },
  ],
};

describe.each(testModes())('control flow: parallel, map, choice (%s)', (mode) => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({ mode, set: ['executor.function_dirs=[steps, functions, test/fixtures/functions]'] });
    const r = await api(t.url, 'POST', '/api/v1/workflows', { name: 'fulfil', definition: FULFIL });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('joins parallel branches, maps items in order with item and index, and picks a choice branch', async () => {
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'fulfil', input_data: ORDER, wait: true });
    expect(r.body.status, JSON.stringify(r.body)).toBe('completed');
    expect(r.body.output).toEqual({
      message: 'express o-7',
      input: [
        { n: 0, sku: 'a', qty: 2, fraud: 3 },
        { n: 1, sku: 'b', qty: 1, fraud: 3 },
        { n: 2, sku: 'c', qty: 5, fraud: 3 },
      ],
    });

    const run = await api(t.url, 'GET', `/api/v1/executions/${r.body.run_id}`);
    const steps = run.body.steps as {
      name: string;
      type: string;
      status: string;
      index: number;
      output: unknown;
      logs: { msg: string }[] | null;
    }[];
    const byName = new Map(steps.map((s) => [s.name, s]));
    expect([...byName.keys()].sort()).toEqual([
      'checks',
      'checks/fraud/score',
      'checks/stock/count',
      'checks/stock/wait',
      'load',
      'pack',
      'pack[0]/label',
      'pack[0]/pick',
      'pack[1]/label',
      'pack[1]/pick',
      'pack[2]/label',
      'pack[2]/pick',
      'route',
      'route/vip/express',
    ]);
    expect(steps.every((s) => s.status === 'completed')).toBe(true);
    expect(byName.get('checks')).toMatchObject({
      type: 'parallel',
      index: 1,
      output: { fraud: { score: 3, order: 'o-7' }, stock: { lines: 3, after_wait: 'o-7' } },
    });
    expect(byName.get('checks/stock/count')!.index).toBe(1);
    expect(byName.get('pack')).toMatchObject({ type: 'map', index: 2 });
    expect(byName.get('pack')!.logs![0].msg).toBe('3 items');
    expect(byName.get('route')).toMatchObject({ type: 'choice', index: 3 });
    expect(byName.get('route')!.logs![0].msg).toBe('branch "vip"');
    // the list is ordered by top-level position
    expect(steps.map((s) => s.index)).toEqual([...steps.map((s) => s.index)].sort((a, b) => a - b));
  });

  it('takes the default branch when no condition holds', async () => {
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'fulfil', input_data: { ...ORDER, tier: 'basic' }, wait: true });
    expect(r.body.status).toBe('completed');
    expect(r.body.output.message).toBe('standard');
  });

  it('fails the run with the first failing branch step, its code and its recorded name', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'half-broken',
      definition: {
        steps: [
          {
            name: 'both',
            parallel: {
              branches: [
                {
                  name: 'ok',
                  steps: [
                    { name: 'slow', type: 'delay', config: { ms: 200 } },
                    { name: 'never', type: 'echo' },
                  ],
                },
                { name: 'bad', steps: [{ name: 'boom', type: 'fail', config: { code: 'E_BOOM', retryable: false } }] },
              ],
            },
          },
        ],
      },
    });
    expect(wf.status).toBe(201);
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'half-broken', input_data: {}, wait: true });
    expect(r.body.status).toBe('failed');
    expect(r.body.error.code).toBe('E_BOOM');
    expect(r.body.error.message).toContain('step "both/bad/boom" failed');
    const run = await api(t.url, 'GET', `/api/v1/executions/${r.body.run_id}`);
    const names = Object.fromEntries((run.body.steps as { name: string; status: string }[]).map((s) => [s.name, s.status]));
    // the sibling finished the step it was on; nothing after it started
    expect(names).toEqual({ both: 'failed', 'both/ok/slow': 'completed', 'both/bad/boom': 'failed' });
  });

  it('fails a map whose items are not an array with E_STEP_CONFIG', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'map-not-array',
      definition: { steps: [{ name: 'each', map: { items: '{{ run.input.rows }}', steps: [{ name: 'one', type: 'echo' }] } }] },
    });
    expect(wf.status).toBe(201);
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'map-not-array', input_data: { rows: { a: 1 } }, wait: true });
    expect(r.body.status).toBe('failed');
    expect(r.body.error).toMatchObject({ code: 'E_STEP_CONFIG' });
    expect(r.body.error.message).toContain('items must be an array, got object');
  });

  it('conditions read outputs as they are stored (a Date as its ISO string, NaN as null), so a resume decides the same', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'odd',
      definition: {
        steps: [
          { name: 'odd', type: 'odd-values' },
          {
            name: 'pick',
            choice: {
              branches: [
                {
                  name: 'epoch',
                  when: {
                    all: [
                      { path: 'steps.odd.at', equals: '1970-01-01T00:00:00.000Z' },
                      { path: 'steps.odd.nan', equals: null },
                      { path: 'steps.odd.gone', exists: false },
                    ],
                  },
                  steps: [{ name: 'yes', type: 'echo', config: { message: 'as stored' } }],
                },
              ],
              default: [{ name: 'no', type: 'echo', config: { message: 'as held in memory' } }],
            },
          },
        ],
      },
    });
    expect(wf.status, JSON.stringify(wf.body)).toBe(201);
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'odd', input_data: {}, wait: true });
    expect(r.body.status).toBe('completed');
    expect(r.body.output.message).toBe('as stored');
    expect(r.body.output.input).toEqual({ at: '1970-01-01T00:00:00.000Z', nan: null, kept: 1 });
  });

  it('refuses definitions that are wrong, with the offending path', async () => {
    const r = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'bad-flow',
      definition: {
        steps: [
          {
            name: 'p',
            parallel: {
              branches: [
                { name: 'a', steps: [{ name: 'x', type: 'echo' }] },
                { name: 'b', steps: [{ name: 'y', type: 'echo', config: { v: '{{ steps.x }}' } }] },
              ],
            },
          },
          { name: 'm', map: { items: '{{ steps.p.a }}', steps: [{ name: 'z', type: 'no-such-function' }] } },
          { name: 'c', choice: { branches: [{ name: 'k', when: { path: 'steps.p.a', gt: 1, lt: 2 }, steps: [] }] } },
        ],
      },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('E_WORKFLOW_INVALID');
    expect((r.body.error.details.problems as { path: string }[]).map((p) => p.path)).toEqual([
      '/definition/steps/0/parallel/branches/1/steps/0/config',
      '/definition/steps/1/map/steps/0/type',
      '/definition/steps/2/choice/branches/0/when',
    ]);
  });
});

/**
 * kill -9 the executor while runs are inside parallel branches and map items;
 * a new executor finishes every run, and no branch step or item step that was
 * recorded completed before the kill runs again.
 */
describe.each(testModes(['services', 'postgres']))('control flow is durable across an executor crash (%s)', (mode) => {
  const RUNS = 30;
  const h = new CrashHarness(50, mode as 'services' | 'postgres');
  let base = '';
  const count = (name: string) => ({ name, type: 'count-invocations', config: { sleep_ms: 150 } });

  beforeAll(async () => {
    base = await h.startApi();
  });
  afterAll(() => h.stop());

  it('resumes without re-running completed branch and item steps', async () => {
    const wf = await api(base, 'POST', '/api/v1/workflows', {
      name: 'durable-flow',
      definition: {
        steps: [
          {
            name: 'fan',
            parallel: {
              branches: [
                { name: 'a', steps: [count('a1'), count('a2')] },
                { name: 'b', steps: [count('b1')] },
              ],
            },
          },
          { name: 'each', map: { items: '{{ run.input.items }}', concurrency: 2, steps: [count('item')] } },
          {
            name: 'pick',
            choice: {
              branches: [{ name: 'many', when: { path: 'run.input.items.length', gte: 4 }, steps: [count('big')] }],
              default: [count('small')],
            },
          },
        ],
      },
    });
    expect(wf.status, JSON.stringify(wf.body)).toBe(201);
    const LEAVES = 3 + 6 + 1; // a1, a2, b1; six items; one choice step

    const first = await h.startExecutor('before');
    const runIds: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await api(base, 'POST', '/api/v1/execute', { workflow_id: wf.body.id, input_data: { items: [1, 2, 3, 4, 5, 6] } });
      expect(r.status).toBe(200);
      runIds.push(r.body.run_id);
    }

    const sql = testSql(h.config);
    try {
      await waitFor(
        async () => {
          const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflow_steps WHERE status = 'completed' AND step_name LIKE 'each[%'`;
          return n >= 40;
        },
        60_000,
        'map items to be under way before the kill',
        20,
      );
      first.child.kill('SIGKILL');
      await first.exited;

      const recordedKeys = await h.recordedCompleted(sql);
      const [{ n: doneBefore }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'completed'`;
      expect(doneBefore).toBeLessThan(RUNS);

      await h.startExecutor('after');
      await waitFor(
        async () => {
          const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status IN ('completed', 'failed')`;
          return n >= RUNS;
        },
        120_000,
        'every run to reach a final state',
        250,
      );

      const finals = await sql`SELECT status, output_data FROM workflow_instances WHERE id IN ${sql(runIds)}`;
      expect(finals.filter((r) => r.status !== 'completed')).toEqual([]);
      for (const f of finals) expect(f.output_data).toEqual({ step: 'pick/many/big', n: 0 + 1 });

      // every leaf once per run, and the parallel/map/choice nodes themselves
      const [{ n: leaves }] =
        await sql`SELECT count(*)::int AS n FROM workflow_steps WHERE status = 'completed' AND step_type = 'count-invocations'`;
      expect(leaves).toBe(RUNS * LEAVES);
      const [{ n: nodes }] =
        await sql`SELECT count(*)::int AS n FROM workflow_steps WHERE status = 'completed' AND step_type IN ('parallel', 'map', 'choice')`;
      expect(nodes).toBe(RUNS * 3);

      const after = h.invocations('after');
      expect(after.length).toBeGreaterThan(0);
      expect(after.some((l) => /each\[\d\]\/item$/.test(l))).toBe(true); // items were resumed, not only whole runs
      expect(after.filter((line) => recordedKeys.has(line))).toEqual([]);
    } finally {
      await sql.end({ timeout: 2 });
    }
  }, 240_000);
});
