/**
 * A hand-written SVG of the run over time (1-second buckets): latency percentiles on a log
 * scale, throughput, and CPU per process group, with the stage boundaries marked.
 */
export interface Series {
  name: string;
  color: string;
  /** one value per second; null = no data that second */
  values: (number | null)[];
  dashed?: boolean;
}

export interface Panel {
  title: string;
  unit: string;
  log?: boolean;
  series: Series[];
}

export interface Marker {
  atS: number;
  label: string;
}

const W = 1100;
const PANEL_H = 230;
const M = { left: 70, right: 190, top: 34, bottom: 26 };

export function renderChart(title: string, panels: Panel[], markers: Marker[], seconds: number): string {
  const plotW = W - M.left - M.right;
  const H = 40 + panels.length * (PANEL_H + 20);
  const x = (s: number) => M.left + (seconds > 0 ? (s / seconds) * plotW : 0);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${M.left}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  panels.forEach((p, i) => {
    const top = 40 + i * (PANEL_H + 20);
    parts.push(renderPanel(p, top, x, seconds, markers));
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function renderPanel(p: Panel, top: number, x: (s: number) => number, seconds: number, markers: Marker[]): string {
  const plotTop = top + M.top - 14;
  const plotH = PANEL_H - M.top - M.bottom + 14;
  const plotBottom = plotTop + plotH;
  const all = p.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const out: string[] = [];
  out.push(`<text x="${M.left}" y="${top + 12}" font-size="13" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${M.left}" y="${plotTop}" width="${x(seconds) - M.left}" height="${plotH}" fill="#fafafa" stroke="#ccc"/>`);

  let y: (v: number) => number;
  let ticks: number[];
  if (p.log) {
    const positive = all.filter((v) => v > 0);
    const lo = Math.pow(10, Math.floor(Math.log10(Math.max(0.1, Math.min(...(positive.length ? positive : [1]))))));
    const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(lo * 10, ...(positive.length ? positive : [10])))));
    const l0 = Math.log10(lo);
    const l1 = Math.log10(hi);
    y = (v) => plotBottom - ((Math.log10(Math.max(v, lo)) - l0) / (l1 - l0)) * plotH;
    ticks = [];
    for (let d = lo; d <= hi * 1.0001; d *= 10) for (const k of [1, 2, 5]) if (d * k <= hi * 1.0001) ticks.push(d * k);
  } else {
    const hi = niceMax(Math.max(1, ...all));
    y = (v) => plotBottom - (v / hi) * plotH;
    ticks = Array.from({ length: 5 }, (_, i) => (hi * i) / 4);
  }
  for (const t of ticks) {
    const ty = y(t);
    out.push(`<line x1="${M.left}" x2="${x(seconds)}" y1="${ty.toFixed(1)}" y2="${ty.toFixed(1)}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${M.left - 6}" y="${(ty + 4).toFixed(1)}" text-anchor="end" fill="#555">${tickLabel(t)}</text>`);
  }
  out.push(
    `<text x="14" y="${(plotTop + plotH / 2).toFixed(1)}" transform="rotate(-90 14 ${(plotTop + plotH / 2).toFixed(1)})" text-anchor="middle" fill="#555">${esc(p.unit)}</text>`,
  );

  // x axis: a tick every "nice" number of seconds
  const step = niceStep(seconds / 10);
  for (let s = 0; s <= seconds; s += step) {
    out.push(`<line x1="${x(s).toFixed(1)}" x2="${x(s).toFixed(1)}" y1="${plotBottom}" y2="${plotBottom + 4}" stroke="#888"/>`);
    out.push(`<text x="${x(s).toFixed(1)}" y="${plotBottom + 15}" text-anchor="middle" fill="#555">${timeLabel(s)}</text>`);
  }
  for (const m of markers) {
    const mx = x(m.atS).toFixed(1);
    out.push(`<line x1="${mx}" x2="${mx}" y1="${plotTop}" y2="${plotBottom}" stroke="#999" stroke-dasharray="3,3"/>`);
    out.push(`<text x="${(x(m.atS) + 3).toFixed(1)}" y="${plotTop + 10}" fill="#777" font-size="10">${esc(m.label)}</text>`);
  }
  p.series.forEach((s, i) => {
    const d = pathOf(s.values, x, y);
    if (d) out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
    const ly = plotTop + 10 + i * 16;
    const lx = x(seconds) + 14;
    out.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`,
    );
    out.push(`<text x="${lx + 28}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

/** Line segments through the non-null points, broken where a second has no data. */
function pathOf(values: (number | null)[], x: (s: number) => number, y: (v: number) => number): string {
  const cmds: string[] = [];
  let pen = false;
  values.forEach((v, s) => {
    if (v === null || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    cmds.push(`${pen ? 'L' : 'M'}${x(s + 0.5).toFixed(1)},${y(v).toFixed(1)}`);
    pen = true;
  });
  return cmds.join('');
}

function niceMax(v: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const k of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (k * p >= v) return k * p;
  return 10 * p;
}

function niceStep(v: number): number {
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) if (s >= v) return s;
  return 7200;
}

function tickLabel(v: number): string {
  if (v >= 1000) return `${+(v / 1000).toFixed(1)}k`;
  if (v >= 1) return `${+v.toFixed(1)}`;
  return `${+v.toFixed(2)}`;
}

function timeLabel(s: number): string {
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  const r = s % 60;
  return r ? `${m}m${r}s` : `${m}m`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
