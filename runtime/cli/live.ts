import type picocolors from 'picocolors';

/**
 * The live display of a followed run (`wf run --wait`, `wf runs tail` at a terminal): what the
 * events stream said so far, drawn as one line per step. Pure: wf.ts feeds it the stream's
 * events and redraws its lines in place (log-update) on each event and spinner frame.
 *
 * It stays bounded whatever the run's size. A map's items (`pack[0]/label` … `pack[199]/label`,
 * nested maps and branches inside them too) fold into one line for the map node
 * (`pack: 150/200 completed, 3 running, 1 failed`). When there are still more lines than the
 * terminal has rows, the earliest completed steps fold into one line, then the rest is cut.
 */
export interface LiveStep {
  name: string;
  type?: string;
  index?: number;
  status: string;
  attempts?: number;
  duration_ms?: number | null;
  waiting_for?: string | null;
  started_at?: string | null;
  logs?: { msg?: unknown }[] | null;
}

type Colors = ReturnType<typeof picocolors.createColors>;

export interface Frame {
  /** the spinner frame to draw running steps with */
  spinner: string;
  /** the time, for how long running steps have been running */
  now: number;
  /** the terminal's size: each line fits the width, and at most `height` lines */
  width: number;
  height: number;
  pc: Colors;
}

/** A line as parts, each with its colour: cut to the width before it is coloured. */
type Part = [text: string, colour?: (s: string) => string];

/** `pack[3]/label` → `pack`, the outermost map the step is an item step of; null outside a map. */
const mapOf = (name: string) => /^(.*?)\[\d+\]\//.exec(name)?.[1] ?? null;
const itemOf = (name: string, map: string) => Number(/^\[(\d+)\]/.exec(name.slice(map.length))?.[1]);

const ms = (n: number | null | undefined) => (n === null || n === undefined ? '' : n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`);
const ENDED = new Set(['completed', 'failed', 'cancelled']);
/** which status an item with steps in several shows: the most telling one */
const RANK = ['failed', 'cancelled', 'running', 'waiting', 'queued', 'completed'];

export class RunDisplay {
  private runStatus = 'queued';
  /** every step record by name, in the order the stream first told of it */
  private readonly steps = new Map<string, LiveStep>();

  run(status: string | undefined): void {
    if (status) this.runStatus = status;
  }

  step(s: LiveStep): void {
    this.steps.set(s.name, { ...this.steps.get(s.name), ...s });
  }

  lines(f: Frame): string[] {
    const { pc } = f;
    const rows: { parts: Part[]; done: boolean }[] = [];
    const maps = new Map<string, LiveStep[]>();
    // top-level nodes in their definition order (index), in stream order within one node
    const ordered = [...this.steps.values()]
      .map((s, i) => ({ s, i }))
      .sort((a, b) => (a.s.index ?? Infinity) - (b.s.index ?? Infinity) || a.i - b.i)
      .map(({ s }) => s);
    const slots: (LiveStep | string)[] = [];
    for (const s of ordered) {
      const map = mapOf(s.name) ?? (s.type === 'map' ? s.name : null);
      if (map === null) slots.push(s);
      else if (!maps.has(map)) {
        maps.set(map, []);
        slots.push(map);
      }
      if (map !== null && map !== s.name) maps.get(map)!.push(s);
    }
    for (const slot of slots) rows.push(typeof slot === 'string' ? this.mapRow(slot, maps.get(slot)!, f) : this.stepRow(slot, f));
    if (!rows.length && (this.runStatus === 'queued' || this.runStatus === 'running')) {
      rows.push({ parts: [[f.spinner, pc.cyan], [` run ${this.runStatus}`]], done: false });
    }

    // bounded by the terminal's height: the earliest completed steps fold into one line first
    const max = Math.max(1, f.height);
    if (rows.length > max) {
      const fold = Math.min(rows.length - max + 1, rows.filter((r) => r.done).length);
      if (fold > 1) {
        let left = fold;
        const kept = rows.filter((r) => !(r.done && left-- > 0));
        rows.splice(
          0,
          rows.length,
          {
            parts: [
              ['✔', pc.green],
              [` ${fold} earlier steps completed`, pc.dim],
            ],
            done: true,
          },
          ...kept,
        );
      }
    }
    if (rows.length > max) {
      const cut = rows.length - max + 1;
      rows.splice(max - 1, rows.length, { parts: [[`… and ${cut} more`, pc.dim]], done: false });
    }
    return rows.map((r) => fit([['  '], ...r.parts], f.width));
  }

  private mark(status: string, f: Frame): Part {
    const { pc } = f;
    if (status === 'running' || status === 'queued') return [f.spinner, pc.cyan];
    if (status === 'waiting') return ['⏸', pc.magenta];
    if (status === 'completed') return ['✔', pc.green];
    if (status === 'cancelled') return ['✘', pc.yellow];
    return ['✘', pc.red];
  }

  private stepRow(s: LiveStep, f: Frame) {
    const { pc } = f;
    const parts: Part[] = [this.mark(s.status, f), [` ${s.name} `], [s.status, statusColours(pc)[s.status]]];
    if ((s.attempts ?? 1) > 1) parts.push([` (attempt ${s.attempts})`]);
    if (s.status === 'waiting') parts.push([` ${s.waiting_for ?? ''}`, pc.dim]);
    else if (ENDED.has(s.status))
      parts.push([s.duration_ms === null || s.duration_ms === undefined ? '' : ` ${ms(s.duration_ms)}`, pc.dim]);
    else if (s.status === 'running' && s.started_at) {
      parts.push([` ${ms(Math.max(0, f.now - Date.parse(s.started_at)))}`, pc.dim]);
    }
    return { parts, done: s.status === 'completed' };
  }

  /** One line for a map node and all its items: how many items are where. */
  private mapRow(name: string, itemSteps: LiveStep[], f: Frame) {
    const { pc } = f;
    const node = this.steps.get(name);
    const items = new Map<number, string>();
    for (const s of itemSteps) {
      const i = itemOf(s.name, name);
      const was = items.get(i);
      if (was === undefined || RANK.indexOf(s.status) < RANK.indexOf(was)) items.set(i, s.status);
    }
    const count = (st: string) => [...items.values()].filter((x) => x === st).length;
    const note = node?.logs?.map((l) => (typeof l.msg === 'string' ? /^(\d+) items?$/.exec(l.msg)?.[1] : undefined)).find(Boolean);
    const total = note !== undefined ? Number(note) : node?.status === 'completed' ? items.size : null;
    const running = count('running') + count('queued');
    const waiting = count('waiting');
    const failed = count('failed') + count('cancelled');
    const status = node && ENDED.has(node.status) ? node.status : running || !waiting ? 'running' : 'waiting';
    const parts: Part[] = [
      this.mark(status, f),
      [` ${name}: `],
      [`${count('completed')}${total === null ? '' : `/${total}`} completed`, status === 'completed' ? pc.green : undefined],
    ];
    if (running) parts.push([`, ${running} running`, pc.cyan]);
    if (waiting) parts.push([`, ${waiting} waiting`, pc.magenta]);
    if (failed) parts.push([`, ${failed} failed`, pc.red]);
    if (node && ENDED.has(node.status) && node.duration_ms !== null && node.duration_ms !== undefined) {
      parts.push([` ${ms(node.duration_ms)}`, pc.dim]);
    }
    return { parts, done: status === 'completed' };
  }
}

/** The colour of each status, in the live display and in wf's tables alike. */
export const statusColours = (pc: Colors): Record<string, (s: string) => string> => ({
  completed: pc.green,
  failed: pc.red,
  cancelled: pc.yellow,
  running: pc.cyan,
  waiting: pc.magenta,
  queued: pc.dim,
});

/** The parts, cut to `width` characters (so no line wraps into two), then coloured. */
function fit(parts: Part[], width: number): string {
  let room = Math.max(1, width);
  let out = '';
  for (const [text, colour] of parts) {
    if (room <= 0) break;
    const chars = [...text];
    const shown = chars.length > room ? chars.slice(0, Math.max(0, room - 1)).join('') + '…' : text;
    room -= chars.length;
    out += colour && shown ? colour(shown) : shown;
  }
  return out;
}
