import { describe, expect, it } from 'vitest';
import {
  evaluateCondition,
  MAX_RUN_STEPS_IN_FLIGHT,
  runDefinition,
  type NodeEvent,
  type Unit,
  type UnitResult,
} from '../../dist/runtime/engine/index.js';
import { validateDefinition } from '../../dist/runtime/engine/index.js';

// The interpreter is pure logic: steps run through an injected runner, here one that
// records what it was asked to run and answers from a script.
type Script = (u: Unit) => UnitResult | Promise<UnitResult>;

function harness(script: Script = (u) => ({ ok: true, output: `${u.name}:out` })) {
  const ran: Unit[] = [];
  const nodes: NodeEvent[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  return {
    ran,
    nodes,
    get maxInFlight() {
      return maxInFlight;
    },
    names: () => ran.map((u) => u.name),
    run: (def: any, input: unknown = { x: 1 }, done: Map<string, unknown> = new Map()) => {
      expect(validateDefinition(def, null), 'the test definition is valid').toEqual([]);
      return runDefinition(
        def,
        { runId: 'r-1', input, done },
        {
          step: async (u) => {
            ran.push(u);
            maxInFlight = Math.max(maxInFlight, ++inFlight);
            try {
              await new Promise((r) => setImmediate(r)); // let siblings start
              return await script(u);
            } finally {
              inFlight--;
            }
          },
          node: (e) => nodes.push(e),
        },
      );
    },
  };
}

const leaf = (name: string, extra: Record<string, unknown> = {}) => ({ name, type: 't', ...extra });

describe('runDefinition: plain lists', () => {
  const def = { steps: [leaf('a'), leaf('b'), leaf('c')] };

  it('runs the steps in order, each getting the previous output, and completes with the last output', async () => {
    const h = harness((u) => ({ ok: true, output: { from: u.name, got: u.input } }));
    const r = await h.run(def, 'in');
    expect(h.names()).toEqual(['a', 'b', 'c']);
    expect(h.ran.map((u) => u.index)).toEqual([0, 1, 2]);
    expect(r).toEqual({ ok: true, output: { from: 'c', got: { from: 'b', got: { from: 'a', got: 'in' } } } });
    expect(h.ran[2].roots.steps).toEqual({ a: { from: 'a', got: 'in' }, b: { from: 'b', got: { from: 'a', got: 'in' } } });
    expect(h.ran[0].roots.run).toEqual({ input: 'in', id: 'r-1' });
  });

  it('skips what an earlier delivery completed, feeding its recorded output forward', async () => {
    const h = harness();
    const r = await h.run(
      def,
      'in',
      new Map<string, unknown>([
        ['a', 'A'],
        ['b', 0],
      ]),
    );
    expect(h.names()).toEqual(['c']);
    expect(h.ran[0].input).toBe(0);
    expect(h.ran[0].roots.steps).toEqual({ a: 'A', b: 0 });
    expect(r).toEqual({ ok: true, output: 'c:out' });
  });

  it('stops at the first failure with that step name and error', async () => {
    const h = harness((u) => (u.name === 'b' ? { ok: false, error: { code: 'E_X', message: 'boom' } } : { ok: true, output: 1 }));
    expect(await h.run(def)).toEqual({ ok: false, error: { code: 'E_X', message: 'boom' }, step: 'b' });
    expect(h.names()).toEqual(['a', 'b']);
  });
});

describe('runDefinition: a node that picks its input', () => {
  it('renders `input` from the run data instead of taking the previous output, and config sees it as {{ input }}', async () => {
    const h = harness((u) => ({ ok: true, output: { name: u.name, got: u.input } }));
    const def = {
      steps: [
        leaf('price'),
        leaf('reserve'),
        leaf('notify', { input: { priced: '{{ steps.price.got }}', run: '{{ run.id }}' } }),
        { name: 'fan', input: '{{ steps.price }}', parallel: { branches: [{ name: 'b', steps: [leaf('inner')] }] } },
      ],
    };
    const r = await h.run(def, 'in');
    expect(h.ran.find((u) => u.name === 'notify')!.input).toEqual({ priced: 'in', run: 'r-1' });
    expect(h.ran.find((u) => u.name === 'notify')!.roots.input).toEqual({ priced: 'in', run: 'r-1' });
    expect(h.ran.find((u) => u.name === 'fan/b/inner')!.input).toEqual({ name: 'price', got: 'in' });
    expect(r.ok).toBe(true);
  });

  it('fails with E_STEP_CONFIG, running nothing, when the input template is wrong at run time', async () => {
    // (validation refuses this at registration; the interpreter must still not run the step)
    let ran = 0;
    const nodes: NodeEvent[] = [];
    const out = await runDefinition(
      { steps: [{ name: 'a', type: 't', input: '{{ input | upper }}' }] },
      { runId: 'r', input: 1, done: new Map() },
      {
        step: async () => ({ ok: true, output: ++ran }),
        node: (e) => nodes.push(e),
      },
    );
    expect(out).toMatchObject({ ok: false, step: 'a', error: { code: 'E_STEP_CONFIG' } });
    expect(ran).toBe(0);
    expect(nodes).toMatchObject([{ name: 'a', kind: 't', status: 'failed', error: { code: 'E_STEP_CONFIG' } }]);
  });
});

describe('runDefinition: parallel', () => {
  const def = {
    steps: [
      leaf('first'),
      {
        name: 'fan',
        parallel: {
          branches: [
            { name: 'left', steps: [leaf('l1'), leaf('l2')] },
            { name: 'right', steps: [leaf('r1')] },
          ],
        },
      },
      leaf('after'),
    ],
  };

  it('runs branches at once, each from the node input, and joins their last outputs by branch name', async () => {
    const h = harness((u) => ({ ok: true, output: `${u.name}<${JSON.stringify(u.input)}` }));
    const r = await h.run(def, 'in');
    expect(new Set(h.names())).toEqual(new Set(['first', 'fan/left/l1', 'fan/left/l2', 'fan/right/r1', 'after']));
    expect(h.maxInFlight).toBe(2);
    const l1 = h.ran.find((u) => u.name === 'fan/left/l1')!;
    const r1 = h.ran.find((u) => u.name === 'fan/right/r1')!;
    expect(l1.input).toBe('first<"in"');
    expect(r1.input).toBe('first<"in"');
    expect(l1.index).toBe(1);
    // a branch step sees the steps before the parallel and earlier steps of its own branch, not the other branch
    expect(Object.keys(h.ran.find((u) => u.name === 'fan/left/l2')!.roots.steps)).toEqual(['first', 'l1']);
    expect(Object.keys(r1.roots.steps)).toEqual(['first']);
    const after = h.ran.find((u) => u.name === 'after')!;
    expect(after.input).toEqual({ left: 'fan/left/l2<"fan/left/l1<\\"first<\\\\\\"in\\\\\\"\\""', right: 'fan/right/r1<"first<\\"in\\""' });
    expect(after.roots.steps.fan).toEqual(after.input);
    expect(r.ok).toBe(true);
    expect(h.nodes.map((n) => [n.name, n.kind, n.status])).toEqual([
      ['fan', 'parallel', 'running'],
      ['fan', 'parallel', 'completed'],
    ]);
    expect(h.nodes[1].output).toEqual(after.input);
  });

  it('on resume runs only the branch steps that did not complete, and skips a completed parallel entirely', async () => {
    const h = harness();
    await h.run(
      def,
      'in',
      new Map<string, unknown>([
        ['first', 'F'],
        ['fan/left/l1', 'L1'],
        ['fan/right/r1', 'R1'],
      ]),
    );
    expect(h.names()).toEqual(['fan/left/l2', 'after']);
    expect(h.ran[0].input).toBe('L1');
    expect(h.ran[1].input).toEqual({ left: 'fan/left/l2:out', right: 'R1' });

    const h2 = harness();
    await h2.run(
      def,
      'in',
      new Map<string, unknown>([
        ['first', 'F'],
        ['fan', { left: 1, right: 2 }],
      ]),
    );
    expect(h2.names()).toEqual(['after']);
    expect(h2.ran[0].input).toEqual({ left: 1, right: 2 });
  });

  it('a failing branch fails the run: the sibling finishes its current step, starts nothing new, and is told to stop retrying', async () => {
    const h = harness(async (u) => {
      if (u.name === 'fan/right/r1') return { ok: false, error: { code: 'E_R', message: 'right broke' } };
      if (u.name === 'fan/left/l1') {
        await new Promise((r) => setTimeout(r, 20));
        expect(u.stopped()).toBe(true);
      }
      return { ok: true, output: 1 };
    });
    const r = await h.run(def);
    expect(r).toEqual({ ok: false, error: { code: 'E_R', message: 'right broke' }, step: 'fan/right/r1' });
    expect(h.names()).not.toContain('fan/left/l2');
    expect(h.names()).not.toContain('after');
    expect(h.nodes.at(-1)).toMatchObject({ name: 'fan', status: 'failed', error: { code: 'E_R' } });
  });
});

describe('runDefinition: limits and stopping', () => {
  it('wakes a sibling waiting out a retry backoff when the run fails, so it does not retry', async () => {
    const woke: boolean[] = [];
    const h = harness(async (u) => {
      if (u.name === 'p/slow/wait') {
        woke.push(await u.sleepUnlessStopped(60_000)); // would outlive the test's timeout
        return { ok: false, error: { code: 'E_FLAKY', message: 'retry me' } };
      }
      await new Promise((r) => setTimeout(r, 20));
      return { ok: false, error: { code: 'E_BOOM', message: 'boom' } };
    });
    const r = await h.run({
      steps: [
        {
          name: 'p',
          parallel: {
            branches: [
              { name: 'slow', steps: [leaf('wait')] },
              { name: 'bad', steps: [leaf('boom')] },
            ],
          },
        },
      ],
    });
    expect(woke).toEqual([true]);
    expect(r).toMatchObject({ ok: false, step: 'p/bad/boom', error: { code: 'E_BOOM' } });
  });

  it('sleeps the full backoff when nothing fails', async () => {
    const h = harness(async (u) => ({ ok: true, output: await u.sleepUnlessStopped(5) }));
    expect(await h.run({ steps: [leaf('a')] })).toEqual({ ok: true, output: false });
  });

  it('runs at most MAX_RUN_STEPS_IN_FLIGHT steps of one run at once, however maps nest', async () => {
    const h = harness(async () => {
      await new Promise((r) => setTimeout(r, 2));
      return { ok: true, output: 1 };
    });
    const inner = { name: 'inner', map: { items: '{{ item }}', concurrency: 50, steps: [leaf('leaf')] } };
    const items = Array.from({ length: 10 }, () => Array.from({ length: 30 }, (_, i) => i));
    const r = await h.run({ steps: [{ name: 'outer', map: { items, concurrency: 10, steps: [inner] } }] });
    expect(r.ok).toBe(true);
    expect(h.ran).toHaveLength(300);
    expect(h.maxInFlight).toBe(MAX_RUN_STEPS_IN_FLIGHT);
  });

  it('caps the map items of a run in all, across nested maps', async () => {
    const h = harness();
    const items = Array.from({ length: 200 }, () => Array.from({ length: 60 }, (_, i) => i));
    const r = await h.run({
      steps: [
        {
          name: 'outer',
          map: {
            items,
            concurrency: 100,
            steps: [{ name: 'inner', map: { items: '{{ item }}', concurrency: 100, steps: [leaf('leaf')] } }],
          },
        },
      ],
    });
    expect(r).toMatchObject({ ok: false, error: { code: 'E_STEP_CONFIG' } });
    expect((r as { error: { message: string } }).error.message).toContain('at most 10000 items in all');
    expect(h.ran.length).toBeLessThan(10_000);
  });
});

describe('runDefinition: cancellation', () => {
  it('stops at the cancel: nothing new starts, the step in flight sees the signal, the outcome is E_CANCELLED', async () => {
    const ac = new AbortController();
    const ran: string[] = [];
    let sawSignal = false;
    const out = runDefinition(
      {
        steps: [
          { name: 'a', type: 't' },
          { name: 'b', type: 't' },
          { name: 'c', type: 't' },
        ],
      },
      { runId: 'r', input: 1, done: new Map(), cancelled: ac.signal },
      {
        step: async (u) => {
          ran.push(u.name);
          if (u.name === 'b') {
            ac.abort();
            sawSignal = u.cancelled?.aborted === true;
            return { ok: false, error: { code: 'E_CANCELLED', message: 'stopped' } };
          }
          return { ok: true, output: u.name };
        },
        node: () => {},
      },
    );
    expect(await out).toMatchObject({ ok: false, error: { code: 'E_CANCELLED', message: 'the run was cancelled' } });
    expect(ran).toEqual(['a', 'b']);
    expect(sawSignal).toBe(true);
  });

  it('runs nothing when cancelled before it starts', async () => {
    const ac = new AbortController();
    ac.abort();
    let ran = 0;
    const out = await runDefinition(
      { steps: [{ name: 'a', type: 't' }] },
      { runId: 'r', input: 1, done: new Map(), cancelled: ac.signal },
      {
        step: async () => ({ ok: true, output: ++ran }),
        node: () => {},
      },
    );
    expect(out).toMatchObject({ ok: false, error: { code: 'E_CANCELLED' } });
    expect(ran).toBe(0);
  });
});

describe('runDefinition: map', () => {
  const def = (items: unknown, concurrency?: number) => ({
    steps: [
      leaf('load'),
      {
        name: 'each',
        map: { items, ...(concurrency ? { concurrency } : {}), steps: [leaf('double', { config: { n: '{{ item.n }}' } }), leaf('label')] },
      },
    ],
  });

  it('runs the steps per element with item and index, at most `concurrency` at once, into an array in item order', async () => {
    const items = Array.from({ length: 7 }, (_, i) => ({ n: i }));
    const h = harness(async (u) => {
      await new Promise((r) => setTimeout(r, u.roots.index === 0 ? 15 : 1)); // item 0 finishes last
      return {
        ok: true,
        output: u.step.name === 'double' ? (u.input as { n: number }).n * 2 : `#${String(u.roots.index)}:${String(u.input)}`,
      };
    });
    const r = await h.run(def('{{ steps.load }}', 3), 'in', new Map([['load', items]]));
    expect(h.maxInFlight).toBe(3);
    expect(
      h
        .names()
        .filter((n) => n.endsWith('/double'))
        .sort(),
    ).toEqual(items.map((_, i) => `each[${i}]/double`).sort());
    const d3 = h.ran.find((u) => u.name === 'each[3]/double')!;
    expect(d3.roots.item).toEqual({ n: 3 });
    expect(d3.roots.index).toBe(3);
    expect(d3.input).toEqual({ n: 3 });
    expect(h.ran.find((u) => u.name === 'each[3]/label')!.roots.steps).toEqual({ load: items, double: 6 });
    expect(r).toEqual({ ok: true, output: items.map((_, i) => `#${i}:${i * 2}`) });
    expect(h.nodes.map((n) => [n.status, n.note])).toEqual([
      ['running', '7 items'],
      ['completed', '7 items'],
    ]);
  });

  it('defaults to 10 at once, accepts a literal array, and gives [] for an empty one', async () => {
    const h = harness();
    await h.run(def(Array.from({ length: 25 }, (_, i) => i)), 'in', new Map([['load', null]]));
    expect(h.maxInFlight).toBe(10);
    const h2 = harness();
    expect(await h2.run(def([]), 'in', new Map([['load', null]]))).toEqual({ ok: true, output: [] });
    expect(h2.ran).toHaveLength(0);
  });

  it('fails with E_STEP_CONFIG when items is not an array, without running anything', async () => {
    const h = harness();
    const r = await h.run(def('{{ steps.load.rows }}'), 'in', new Map([['load', { rows: 'nope' }]]));
    expect(r).toMatchObject({ ok: false, step: 'each', error: { code: 'E_STEP_CONFIG' } });
    expect((r as { error: { message: string } }).error.message).toContain('items must be an array, got string');
    expect(h.ran).toHaveLength(0);
    expect(h.nodes).toMatchObject([{ name: 'each', status: 'failed' }]);
  });

  it('resumes item by item: completed items and steps are not run again', async () => {
    const h = harness();
    const done = new Map<string, unknown>([
      ['load', [{ n: 0 }, { n: 1 }, { n: 2 }]],
      ['each[0]/double', 0],
      ['each[0]/label', 'L0'],
      ['each[2]/double', 4],
    ]);
    const r = await h.run(def('{{ steps.load }}'), 'in', done);
    expect(h.names().sort()).toEqual(['each[1]/double', 'each[1]/label', 'each[2]/label']);
    expect(h.ran.find((u) => u.name === 'each[2]/label')!.input).toBe(4);
    expect(r).toEqual({ ok: true, output: ['L0', 'each[1]/label:out', 'each[2]/label:out'] });
  });

  it('a failing item stops new items from starting', async () => {
    const h = harness((u) => (u.roots.index === 1 ? { ok: false, error: { code: 'E_I', message: 'item 1' } } : { ok: true, output: 0 }));
    const r = await h.run(
      def(
        Array.from({ length: 50 }, (_, i) => i),
        2,
      ),
      'in',
      new Map([['load', null]]),
    );
    expect(r).toMatchObject({ ok: false, step: 'each[1]/double', error: { code: 'E_I' } });
    expect(h.ran.length).toBeLessThan(6);
  });
});

describe('runDefinition: choice', () => {
  const def = {
    steps: [
      leaf('price'),
      {
        name: 'route',
        choice: {
          branches: [
            { name: 'large', when: { path: 'steps.price.total', gte: 1000 }, steps: [leaf('review'), leaf('notify-large')] },
            {
              name: 'vip',
              when: {
                any: [
                  { path: 'run.input.tier', equals: 'gold' },
                  { path: 'run.input.tags', exists: true },
                ],
              },
              steps: [leaf('perk')],
            },
            { name: 'skip', when: { path: 'steps.price.total', equals: 0 }, steps: [] },
          ],
          default: [leaf('standard')],
        },
      },
      leaf('done'),
    ],
  };

  const runWith = async (total: number, input: unknown = {}) => {
    const h = harness();
    const r = await h.run(def, input, new Map([['price', { total }]]));
    return { h, r };
  };

  it('runs the first branch whose condition holds, recorded under the branch, and outputs its last step', async () => {
    const { h } = await runWith(5000, { tier: 'gold' });
    expect(h.names()).toEqual(['route/large/review', 'route/large/notify-large', 'done']);
    expect(h.ran[2].input).toBe('route/large/notify-large:out');
    expect(h.nodes.map((n) => [n.status, n.note])).toEqual([
      ['running', 'branch "large"'],
      ['completed', 'branch "large"'],
    ]);
  });

  it('evaluates any/exists, falls back to default, and passes the input through for an empty branch', async () => {
    expect((await runWith(10, { tier: 'gold' })).h.names()).toEqual(['route/vip/perk', 'done']);
    expect((await runWith(10, { tags: null })).h.names()).toEqual(['route/vip/perk', 'done']);
    expect((await runWith(10, {})).h.names()).toEqual(['route/default/standard', 'done']);
    const { h } = await runWith(0, {});
    expect(h.names()).toEqual(['done']);
    expect(h.ran[0].input).toEqual({ total: 0 });
  });

  it('passes the input through when nothing matches and there is no default', async () => {
    const noDefault = {
      steps: [{ name: 'c', choice: { branches: [{ name: 'a', when: { path: 'input.go', equals: true }, steps: [leaf('x')] }] } }],
    };
    const h = harness();
    expect(await h.run(noDefault, { go: false })).toEqual({ ok: true, output: { go: false } });
    expect(h.ran).toHaveLength(0);
    expect(h.nodes[0].note).toContain('no branch matched');
  });

  it('takes the same branch on resume (the condition reads recorded data)', async () => {
    const h = harness();
    await h.run(
      def,
      {},
      new Map<string, unknown>([
        ['price', { total: 2000 }],
        ['route/large/review', 'R'],
      ]),
    );
    expect(h.names()).toEqual(['route/large/notify-large', 'done']);
    expect(h.ran[0].input).toBe('R');
  });
});

describe('evaluateCondition', () => {
  const root = { input: { n: 5, s: 'b', nul: null, list: [1, { a: 1 }] }, run: { input: {}, id: 'r' }, steps: {} };
  const ev = (c: object) => evaluateCondition(c, root);

  it('compares numbers with numbers and strings with strings, never across types', () => {
    expect(ev({ path: 'input.n', gt: 4 })).toBe(true);
    expect(ev({ path: 'input.n', gt: 5 })).toBe(false);
    expect(ev({ path: 'input.n', gte: 5 })).toBe(true);
    expect(ev({ path: 'input.n', lt: 6 })).toBe(true);
    expect(ev({ path: 'input.n', lte: 4 })).toBe(false);
    expect(ev({ path: 'input.s', gt: 'a' })).toBe(true);
    expect(ev({ path: 'input.n', gt: '4' })).toBe(false);
    expect(ev({ path: 'input.missing', lt: 10 })).toBe(false);
    expect(ev({ path: 'input.nul', lt: 10 })).toBe(false);
  });

  it('deep-equals JSON values, and tests membership and existence', () => {
    expect(ev({ path: 'input.list', equals: [1, { a: 1 }] })).toBe(true);
    expect(ev({ path: 'input.list', equals: [1, { a: 2 }] })).toBe(false);
    expect(ev({ path: 'input.list', not_equals: [1] })).toBe(true);
    expect(ev({ path: 'input.nul', equals: null })).toBe(true);
    expect(ev({ path: 'input.s', in: ['a', 'b'] })).toBe(true);
    expect(ev({ path: 'input.s', in: ['c'] })).toBe(false);
    expect(ev({ path: 'input.nul', exists: true })).toBe(true);
    expect(ev({ path: 'input.missing', exists: false })).toBe(true);
    expect(ev({ path: 'input.list[1].a', equals: 1 })).toBe(true);
  });

  it('combines with all, any and not', () => {
    expect(
      ev({
        all: [
          { path: 'input.n', gt: 1 },
          { path: 'input.s', equals: 'b' },
        ],
      }),
    ).toBe(true);
    expect(
      ev({
        all: [
          { path: 'input.n', gt: 1 },
          { path: 'input.s', equals: 'x' },
        ],
      }),
    ).toBe(false);
    expect(
      ev({
        any: [
          { path: 'input.n', gt: 100 },
          { path: 'input.s', equals: 'b' },
        ],
      }),
    ).toBe(true);
    expect(ev({ not: { path: 'input.n', gt: 100 } })).toBe(true);
  });

  it('reads own properties only (length of an array, never constructor)', () => {
    expect(ev({ path: 'input.constructor', exists: true })).toBe(false);
    expect(ev({ path: 'input.s.constructor', exists: true })).toBe(false);
    expect(ev({ path: 'input.list.length', equals: 2 })).toBe(true); // an array's length is its own property
  });
});
