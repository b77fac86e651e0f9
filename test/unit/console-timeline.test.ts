import { describe, expect, it } from 'vitest';
import { parentOf, stepTree, visibleRows } from '../../console/src/timeline.js';
import type { StepRecord } from '../../console/src/types.js';

const step = (name: string, index: number, startedMs: number | null): StepRecord => ({
  name,
  type: 'echo',
  index,
  status: 'completed',
  input: null,
  output: null,
  error: null,
  attempts: 1,
  started_at: startedMs === null ? null : new Date(1_800_000_000_000 + startedMs).toISOString(),
  completed_at: null,
  duration_ms: null,
  logs: [],
});

describe('the console timeline: the tree of recorded names', () => {
  it('finds the node a nested step belongs to, and what lies between (branch, item, catch)', () => {
    const names = new Set(['checks', 'checks/stock/inner', 'pack', 'booking', 'route']);
    expect(parentOf('validate', names)).toEqual({ parent: null, context: '' });
    expect(parentOf('checks/stock/reserve', names)).toEqual({ parent: 'checks', context: 'stock' });
    expect(parentOf('checks/stock/inner', names)).toEqual({ parent: 'checks', context: 'stock' });
    expect(parentOf('checks/stock/inner/x/y', names)).toEqual({ parent: 'checks/stock/inner', context: 'x' });
    expect(parentOf('pack[12]/label', names)).toEqual({ parent: 'pack', context: 'item 12' });
    expect(parentOf('booking#catch/undo-hotel', names)).toEqual({ parent: 'booking', context: 'catch' });
    expect(parentOf('route/default/ship', names)).toEqual({ parent: 'route', context: 'default' });
  });

  it('orders top-level rows by definition, keeps a branch or an item together, and nests depth', () => {
    const tree = stepTree([
      step('pack', 1, 50),
      step('checks', 0, 0),
      step('checks/fraud/score', 0, 1),
      step('checks/stock/reserve', 0, 2),
      step('checks/fraud/review', 0, 30),
      step('pack[10]/label', 1, 60),
      step('pack[2]/label', 1, 60),
      step('pack[2]/box', 1, 70),
    ]);
    expect(tree.map((r) => r.step.name)).toEqual(['checks', 'pack']);
    expect(tree[0].children.map((r) => r.step.name)).toEqual(['checks/fraud/score', 'checks/fraud/review', 'checks/stock/reserve']);
    expect(tree[1].children.map((r) => r.step.name)).toEqual(['pack[2]/label', 'pack[2]/box', 'pack[10]/label']);
    expect(tree[1].children.map((r) => r.depth)).toEqual([1, 1, 1]);
  });

  it('shows at most `cap` children of a node until it is opened', () => {
    const steps = [step('pack', 0, 0), ...Array.from({ length: 40 }, (_, i) => step(`pack[${i}]/label`, 0, i + 1))];
    const closed = visibleRows(stepTree(steps), new Set(), 25);
    expect(closed).toHaveLength(1 + 25 + 1);
    expect(closed.at(-1)).toEqual({ more: 15, parent: 'pack', depth: 1 });
    expect(visibleRows(stepTree(steps), new Set(['pack']), 25)).toHaveLength(41);
  });
});
