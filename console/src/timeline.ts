import type { StepRecord } from './types.js';

/** A step's row in a run's timeline: its place in the tree of recorded names. */
export interface Row {
  step: StepRecord;
  depth: number;
  /** what sits between it and its parent node: a branch name, `item 3`, `catch` */
  context: string;
  children: Row[];
}

/**
 * Builds the tree of a run's steps from their recorded names (docs/workflows.md "What gets
 * recorded"): `checks/stock/reserve` is step `reserve` of branch `stock` of node `checks`,
 * `pack[3]/label` is `label` in item 3 of map `pack`, `booking#catch/undo` a catch step of
 * `booking`. Top-level rows in definition order (`index`), children grouped by branch or item, in the order they started.
 */
export function stepTree(steps: StepRecord[]): Row[] {
  const names = new Set(steps.map((s) => s.name));
  const rows = new Map<string, Row>(steps.map((s) => [s.name, { step: s, depth: 0, context: '', children: [] }]));
  const roots: Row[] = [];
  for (const s of steps) {
    const row = rows.get(s.name)!;
    const { parent, context } = parentOf(s.name, names);
    row.context = context;
    if (parent) rows.get(parent)!.children.push(row);
    else roots.push(row);
  }
  const start = (r: Row) => (r.step.started_at ? Date.parse(r.step.started_at) : Number.MAX_SAFE_INTEGER);
  const byName = (a: Row, b: Row) => a.step.name.localeCompare(b.step.name, undefined, { numeric: true });
  const order = (list: Row[], depth: number) => {
    for (const r of list) {
      r.depth = depth;
      // a branch's (or an item's) steps stay together: groups in the order they began, then by start
      const began = new Map<string, number>();
      for (const c of r.children) began.set(c.context, Math.min(began.get(c.context) ?? Infinity, start(c)));
      r.children.sort(
        (a, b) =>
          began.get(a.context)! - began.get(b.context)! ||
          a.context.localeCompare(b.context, undefined, { numeric: true }) ||
          start(a) - start(b) ||
          byName(a, b),
      );
      order(r.children, depth + 1);
    }
  };
  roots.sort((a, b) => a.step.index - b.step.index || start(a) - start(b));
  order(roots, 0);
  return roots;
}

export function parentOf(name: string, names: Set<string>): { parent: string | null; context: string } {
  const context: string[] = [];
  let rest = name;
  for (;;) {
    const cut = rest.lastIndexOf('/');
    if (cut < 0) return { parent: null, context: context.join(' · ') };
    rest = rest.slice(0, cut);
    const item = /^(.*)\[(\d+)\]$/.exec(rest);
    if (item) {
      context.unshift(`item ${item[2]}`);
      rest = item[1]!;
    }
    const caught = /^(.*)#catch$/.exec(rest);
    if (caught) {
      context.unshift('catch');
      rest = caught[1]!;
    }
    if (names.has(rest)) return { parent: rest, context: context.join(' · ') };
    if (item || caught) continue;
    context.unshift(rest.slice(rest.lastIndexOf('/') + 1)); // a branch: not a row of its own
  }
}

/** The shown name of a row: the last part of its recorded name. */
export const leaf = (name: string) => name.slice(name.lastIndexOf('/') + 1);

/** Flattens the tree for display, showing at most `cap` children of a node unless it is opened. */
export function visibleRows(roots: Row[], open: Set<string>, cap = 25): (Row | { more: number; parent: string; depth: number })[] {
  const out: (Row | { more: number; parent: string; depth: number })[] = [];
  const walk = (list: Row[], parent: string | null) => {
    const shown = parent && !open.has(parent) && list.length > cap ? list.slice(0, cap) : list;
    for (const r of shown) {
      out.push(r);
      walk(r.children, r.step.name);
    }
    if (shown.length < list.length) out.push({ more: list.length - shown.length, parent: parent!, depth: list[0].depth });
  };
  walk(roots, null);
  return out;
}

/** When attempts after the first began: the `warn` line each failed attempt leaves. */
export function attemptMarks(step: StepRecord): { t: number; attempt: number; msg: string }[] {
  return step.logs
    .filter((l) => l.level === 'warn' && /^attempt \d+ failed/.test(l.msg))
    .map((l) => ({ t: Date.parse(l.t), attempt: Number(/^attempt (\d+)/.exec(l.msg)![1]) + 1, msg: l.msg }));
}
