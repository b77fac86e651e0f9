import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { get } from '../api.js';
import { ago, ms } from '../format.js';
import { href } from '../router.js';
import type { Overview } from '../types.js';
import { Card, Loading, Problem, usePoll } from '../ui.js';

const COLORS = { started: '#5b6cff', completed: '#1f9d55', failed: '#d64545', cancelled: '#c7881a' };

/** A time series chart (uPlot: small, fast, canvas; no framework of its own). */
function Chart({ data, series, height = 180 }: { data: uPlot.AlignedData; series: uPlot.Series[]; height?: number }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!el.current) return;
    const p = new uPlot(
      {
        width: el.current.clientWidth || 600,
        height,
        series: [{}, ...series.map((x) => ({ points: { show: false }, ...x }))],
        axes: [
          { stroke: '#8a93a6', grid: { stroke: '#eef0f4' } },
          { stroke: '#8a93a6', grid: { stroke: '#eef0f4' }, size: 50 },
        ],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] } },
      },
      data,
      el.current,
    );
    plot.current = p;
    const ro = new ResizeObserver(() => p.setSize({ width: el.current?.clientWidth ?? 600, height }));
    ro.observe(el.current);
    return () => {
      ro.disconnect();
      p.destroy();
    };
    // the series are fixed per chart; data changes go through setData below
  }, [height]);
  useEffect(() => plot.current?.setData(data), [data]);
  return <div class="chart" ref={el} />;
}

function Tile({ label, value, hint, tone }: { label: string; value: string; hint?: string; tone?: string }) {
  return (
    <div class={`tile ${tone ?? ''}`} data-tile={label}>
      <div class="tile-label">{label}</div>
      <div class="tile-value">{value}</div>
      {hint ? <div class="tile-hint">{hint}</div> : null}
    </div>
  );
}

/**
 * The whole system at a glance, from GET /api/v1/overview (every API and executor process,
 * read from PostgreSQL, the queue and the executors' own reports), refreshed every 2 s.
 */
export function OverviewPage() {
  const o = usePoll(() => get<Overview>('/api/v1/overview?minutes=15'), [], 2000);
  if (!o.data) return o.error ? <Problem error={o.error} /> : <Loading />;
  const d = o.data;
  const xs = d.series.map((b) => Date.parse(b.t) / 1000);
  const filling = Math.max(1, (Date.parse(d.now) - Date.parse(d.series.at(-1)?.t ?? d.now)) / 1000);
  const per = (k: 'started' | 'completed' | 'failed' | 'cancelled') =>
    d.series.map((b, i) => b[k] / (i === d.series.length - 1 ? Math.min(d.bucket_s, filling) : d.bucket_s));
  // the newest bucket is still filling: divide by the time it has had, not a whole bucket
  const last = d.series.slice(-Math.max(1, Math.round(60 / d.bucket_s)));
  const lastSpan = last.length ? Math.max(1, (Date.parse(d.now) - Date.parse(last[0].t)) / 1000) : 1;
  const lastRate = last.reduce((n, b) => n + b.completed + b.failed + b.cancelled, 0) / lastSpan;
  const rate = d.totals.success_rate;
  const slots = d.executors.reduce((n, e) => n + e.slots, 0);
  const busy = d.executors.reduce((n, e) => n + e.in_flight, 0);
  return (
    <>
      <div class="page-head">
        <h1>Overview</h1>
        <span class="muted">last {Math.round(d.window_s / 60)} minutes · every API, engine and executor process</span>
      </div>
      <Problem error={o.error} />
      <div class="tiles">
        <Tile label="runs ended / s" value={lastRate.toFixed(lastRate < 10 ? 1 : 0)} hint="last minute" />
        <Tile
          label="success rate"
          value={rate === null ? '–' : `${(rate * 100).toFixed(rate > 0.999 || rate < 0.9 ? 1 : 2)} %`}
          hint={`${d.totals.completed} completed · ${d.totals.failed} failed · ${d.totals.cancelled} cancelled`}
          tone={rate !== null && rate < 0.95 ? 'bad' : 'good'}
        />
        <Tile
          label="p95 run"
          value={ms(d.run_duration_ms.p95)}
          hint={`p50 ${ms(d.run_duration_ms.p50)} · p99 ${ms(d.run_duration_ms.p99)}`}
        />
        <Tile
          label="p95 step"
          value={ms(d.step_duration_ms.p95)}
          hint={`p50 ${ms(d.step_duration_ms.p50)} · p99 ${ms(d.step_duration_ms.p99)}`}
        />
        <Tile label="queue" value={d.queue.pending === null ? '–' : String(d.queue.pending)} hint={`${d.queue.driver} · pending`} />
        <Tile
          label="runs in flight"
          value={String(d.runs_now.running + d.runs_now.queued + d.runs_now.waiting)}
          hint={`${d.runs_now.running} running · ${d.runs_now.queued} queued · ${d.runs_now.waiting} waiting`}
        />
      </div>
      <Card title="Runs per second">
        <Chart
          data={[xs, per('started'), per('completed'), per('failed'), per('cancelled')]}
          series={[
            { label: 'started', stroke: COLORS.started, width: 1.5 },
            { label: 'completed', stroke: COLORS.completed, width: 2, fill: 'rgba(31,157,85,0.08)' },
            { label: 'failed', stroke: COLORS.failed, width: 2 },
            { label: 'cancelled', stroke: COLORS.cancelled, width: 1.5 },
          ]}
        />
        <div class="links-row">
          <a href={href('runs', { status: 'failed' })}>failed runs →</a>
          <a href={href('runs', { status: 'waiting' })}>waiting runs →</a>
        </div>
      </Card>
      <Card title={`Executors · ${busy} of ${slots} slots busy`}>
        {d.executors.length === 0 ? (
          <div class="empty">No executor has reported in the last 30 s: runs are accepted but none will run until one starts.</div>
        ) : (
          <table class="executors">
            <thead>
              <tr>
                <th>Host</th>
                <th>Process</th>
                <th>Slots in use</th>
                <th class="num">Threads</th>
                <th class="num">Thread use</th>
                <th>Up since</th>
                <th>Seen</th>
              </tr>
            </thead>
            <tbody>
              {d.executors.map((e) => (
                <tr key={e.id} data-executor={e.id}>
                  <td>{e.host}</td>
                  <td class="mono">pid {e.pid}</td>
                  <td>
                    <div class="meter" title={`${e.in_flight} of ${e.slots}`}>
                      <i style={{ width: `${Math.min(100, (e.in_flight / Math.max(1, e.slots)) * 100)}%` }} />
                    </div>
                    <span class="muted small">
                      {e.in_flight} / {e.slots}
                    </span>
                  </td>
                  <td class="num">{e.threads}</td>
                  <td class="num">{(e.utilization * 100).toFixed(0)} %</td>
                  <td>{ago(e.started_at)}</td>
                  <td>{ago(e.last_seen)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </>
  );
}
