import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, followRun, get, post } from '../api.js';
import { ago, clock, ms, pretty, shortId } from '../format.js';
import { href } from '../router.js';
import { attemptMarks, leaf, stepTree, visibleRows } from '../timeline.js';
import { FINAL, type Run, type StepRecord } from '../types.js';
import { Card, Json, Loading, Problem, Status, useNow } from '../ui.js';

/**
 * One run: what it was given and gave back, a timeline of its steps on one time axis (nested
 * for parallel, map, choice and catch), each step's input, output, error with stack, logs and
 * attempts, and cancel / retry / signal. Live over the run's event stream until it ends.
 */
export function RunPage({ id }: { id: string }) {
  const [run, setRun] = useState<Run | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [epoch, setEpoch] = useState(0);
  useEffect(() => {
    let stop = () => {};
    const pending = new Map<string, StepRecord>();
    let live = true;
    // GET first: a run accepted a moment ago may not be written yet (404 for a few ms), and the
    // answer says so plainly; then the stream keeps it current until the run ends.
    const start = async (tries: number): Promise<void> => {
      let r: Run;
      try {
        r = await get<Run>(`/api/v1/executions/${id}`);
        if (!live) return;
        setRun(r);
        setError(null);
      } catch (err) {
        if (!live) return;
        if (err instanceof ApiError && err.status === 404 && tries > 0) {
          await new Promise((r) => setTimeout(r, 500));
          return start(tries - 1);
        }
        setError(err as ApiError);
        return;
      }
      if (FINAL.includes(r.status)) return; // an ended run changes no more: no stream to hold open
      // step events are gathered and applied once per frame: a map of 10,000 items sends as many
      pending.clear();
      let frame = 0;
      const flush = () => {
        frame = 0;
        const batch = [...pending.values()];
        pending.clear();
        setRun((cur) => {
          if (!cur || !batch.length) return cur;
          const at = new Map(cur.steps.map((st, i) => [st.name, i]));
          const steps = cur.steps.slice();
          for (const st of batch) {
            const i = at.get(st.name);
            if (i === undefined) at.set(st.name, steps.push(st) - 1);
            else steps[i] = st;
          }
          return { ...cur, steps };
        });
      };
      stop = followRun(id, (type, data) => {
        if (type === 'snapshot' || type === 'end') {
          pending.clear();
          setRun(data as Run);
        } else if (type === 'run') setRun((cur) => (cur ? { ...cur, ...(data as Partial<Run>), steps: cur.steps } : cur));
        else if (type === 'step') {
          pending.set((data as StepRecord).name, data as StepRecord);
          frame ||= requestAnimationFrame(flush);
        } else if (type === 'error') setError(data as ApiError);
      });
    };
    void start(6);
    return () => {
      live = false;
      stop();
    };
  }, [id, epoch]);

  if (error && !run) return <Card title="Run">{<Problem error={error} />}</Card>;
  if (!run) return <Loading />;
  const step = run.steps.find((s) => s.name === selected) ?? null;
  return (
    <>
      <RunHead run={run} onChanged={() => setEpoch((e) => e + 1)} />
      <Problem error={run.error} />
      <Card title="Timeline">
        <Timeline run={run} selected={selected} onSelect={(n) => setSelected(n === selected ? null : n)} />
      </Card>
      {step ? <StepDetail key={step.name} step={step} onClose={() => setSelected(null)} /> : null}
      <div class="two">
        <Card title="Input">
          <Json value={run.input} />
        </Card>
        <Card title="Output">
          {run.status === 'completed' ? (
            <Json value={run.output} />
          ) : (
            <div class="muted">{FINAL.includes(run.status) ? 'none' : 'not yet'}</div>
          )}
        </Card>
      </div>
    </>
  );
}

function RunHead({ run, onChanged }: { run: Run; onChanged: () => void }) {
  const now = useNow(1000);
  const [busy, setBusy] = useState<string | null>(null);
  const [problem, setProblem] = useState<ApiError | null>(null);
  const [signal, setSignal] = useState<{ name: string; data: string } | null>(null);
  /** Posts an action; true when it was taken (a refused one shows its problem and keeps the form). */
  const act = async (what: string, path: string, body?: unknown): Promise<boolean> => {
    setBusy(what);
    setProblem(null);
    try {
      await post(path, body);
      if (what === 'retry') onChanged();
      return true;
    } catch (err) {
      setProblem(err as ApiError);
      return false;
    } finally {
      setBusy(null);
    }
  };
  const waitingSignal = run.steps
    .map((s) => (s.status === 'waiting' ? /^signal "(.*)"$/.exec(s.waiting_for ?? '')?.[1] : undefined))
    .find(Boolean);
  const ended = FINAL.includes(run.status);
  const duration = run.duration_ms ?? (run.started_at ? Math.max(0, now - Date.parse(run.started_at)) : null); // a browser clock behind the server's never shows a negative time
  return (
    <>
      <div class="page-head">
        <h1>
          <a href={href('runs', { workflow: run.workflow_name ?? undefined })}>{run.workflow_name ?? 'run'}</a>{' '}
          <span class="muted">{run.workflow_version}</span>
          <span class="mono title-id">{run.run_id}</span>
        </h1>
        <div class="actions">
          {!ended ? (
            <button class="danger" disabled={!!busy} onClick={() => void act('cancel', `/api/v1/executions/${run.run_id}/cancel`)}>
              {busy === 'cancel' ? 'Cancelling…' : 'Cancel'}
            </button>
          ) : null}
          {run.status === 'failed' || run.status === 'cancelled' ? (
            <button class="primary" disabled={!!busy} onClick={() => void act('retry', `/api/v1/executions/${run.run_id}/retry`)}>
              {busy === 'retry' ? 'Retrying…' : 'Retry from the failed step'}
            </button>
          ) : null}
          {!ended ? (
            <button disabled={!!busy} onClick={() => setSignal({ name: waitingSignal ?? '', data: '{}' })}>
              Signal…
            </button>
          ) : null}
        </div>
      </div>
      <div class="facts">
        <span>
          <Status status={run.status} />
        </span>
        <span title={clock(run.accepted_at)}>accepted {ago(run.accepted_at, now)}</span>
        <span>duration {ms(duration)}</span>
        <span>{run.steps.length} steps</span>
        {run.deliveries > 1 ? <span title="resumed after an executor stopped">delivered {run.deliveries}×</span> : null}
        {run.redrives ? <span>retried {run.redrives}×</span> : null}
        {run.parent_run_id ? (
          <span>
            started by <a href={href(`runs/${run.parent_run_id}`)}>{shortId(run.parent_run_id)}</a>
          </span>
        ) : null}
      </div>
      <Problem error={problem} />
      {signal ? (
        <form
          class="card signal"
          onSubmit={(e) => {
            e.preventDefault();
            let data: unknown;
            try {
              data = signal.data.trim() ? JSON.parse(signal.data) : undefined;
            } catch (err) {
              setProblem(new ApiError(0, 'E_BAD_JSON', `the data is not JSON: ${(err as Error).message}`));
              return;
            }
            void act('signal', `/api/v1/executions/${run.run_id}/signals/${encodeURIComponent(signal.name)}`, data).then((ok) =>
              ok ? setSignal(null) : undefined,
            );
          }}
        >
          <label>
            Signal name
            <input
              name="signal"
              value={signal.name}
              onInput={(e) => setSignal({ ...signal, name: (e.target as HTMLInputElement).value })}
            />
          </label>
          <label>
            Data (JSON object)
            <textarea
              name="signal-data"
              rows={3}
              value={signal.data}
              onInput={(e) => setSignal({ ...signal, data: (e.target as HTMLTextAreaElement).value })}
            />
          </label>
          <div class="row-end">
            <button type="button" class="link" onClick={() => setSignal(null)}>
              cancel
            </button>
            <button type="submit" class="primary" disabled={!signal.name || busy === 'signal'}>
              Send
            </button>
          </div>
        </form>
      ) : null}
    </>
  );
}

function Timeline({ run, selected, onSelect }: { run: Run; selected: string | null; onSelect: (name: string) => void }) {
  const now = useNow(FINAL.includes(run.status) ? 60_000 : 250);
  const [open, setOpen] = useState(new Set<string>());
  const tree = useMemo(() => stepTree(run.steps), [run.steps]);
  if (!run.steps.length) return <div class="muted">{FINAL.includes(run.status) ? 'No steps ran.' : 'Waiting for the first step…'}</div>;
  // a loop, not Math.min(...times): a run of 10,000 map items has more times than a call takes arguments
  let t0 = run.started_at ? Date.parse(run.started_at) : Infinity;
  let last = -Infinity;
  for (const s of run.steps)
    for (const t of [s.started_at, s.completed_at]) {
      if (!t) continue;
      const v = Date.parse(t);
      if (v < t0) t0 = v;
      if (v > last) last = v;
    }
  const end = run.completed_at ? Date.parse(run.completed_at) : FINAL.includes(run.status) ? last : Math.max(now, last);
  const t1 = Math.max(end, t0 + 1, last);
  const x = (t: number) => `${(((t - t0) / (t1 - t0)) * 100).toFixed(3)}%`;
  const w = (a: number, b: number) => `${Math.max(0.3, ((b - a) / (t1 - t0)) * 100).toFixed(3)}%`;
  const rows = visibleRows(tree, open);
  return (
    <div class="timeline" role="table" aria-label="steps">
      <div class="tl-axis">
        <span>0</span>
        <span>{ms((t1 - t0) / 2)}</span>
        <span>{ms(t1 - t0)}</span>
      </div>
      {rows.map((r) => {
        if ('more' in r)
          return (
            <div class="tl-row tl-more" style={{ '--depth': r.depth }} key={`${r.parent}#more`}>
              <button class="link" onClick={() => setOpen(new Set([...open, r.parent]))}>
                … {r.more} more
              </button>
            </div>
          );
        const s = r.step;
        const a = s.started_at ? Date.parse(s.started_at) : null;
        const b = s.completed_at
          ? Date.parse(s.completed_at)
          : s.status === 'running' || s.status === 'waiting'
            ? Math.max(now, a ?? now)
            : a;
        return (
          <div
            key={s.name}
            role="row"
            data-step={s.name}
            data-status={s.status}
            class={`tl-row ${selected === s.name ? 'sel' : ''}`}
            style={{ '--depth': r.depth }}
            onClick={() => onSelect(s.name)}
          >
            <div class="tl-name" title={s.name}>
              {r.context ? <span class="muted">{r.context} · </span> : null}
              {leaf(s.name)} <span class="type">{s.type}</span>
            </div>
            <div class="tl-track">
              {a !== null && b !== null ? (
                <div
                  class={`bar bar-${s.status}`}
                  style={{ left: x(a), width: w(a, b) }}
                  title={`${s.status} ${ms(s.duration_ms ?? b - a)}`}
                >
                  {attemptMarks(s).map((m) => (
                    <i
                      key={m.attempt}
                      class="attempt"
                      style={{ left: `${(((m.t - a) / Math.max(1, b - a)) * 100).toFixed(2)}%` }}
                      title={m.msg}
                    />
                  ))}
                </div>
              ) : null}
            </div>
            <div class="tl-meta">
              <Status status={s.status} />
              {s.attempts > 1 ? <span class="tag">{s.attempts} attempts</span> : null}
              <span class="num">
                {s.status === 'waiting' ? (
                  <span class="muted">{s.waiting_for}</span>
                ) : (
                  ms(s.duration_ms ?? (a !== null && b !== null ? b - a : null))
                )}
              </span>
            </div>
          </div>
        );
      })}
    </div>
  );
}

function StepDetail({ step, onClose }: { step: StepRecord; onClose: () => void }) {
  const tabs = ['input', 'output', 'error', 'logs', ...(step.history?.length ? ['history'] : [])] as const;
  const [tab, setTab] = useState<string>(step.error ? 'error' : 'output');
  return (
    <Card
      title={
        <>
          {step.name} <span class="type">{step.type}</span> <Status status={step.status} />
        </>
      }
      actions={
        <button class="link" onClick={onClose}>
          close
        </button>
      }
    >
      <div class="facts">
        <span>started {clock(step.started_at)}</span>
        <span>ended {clock(step.completed_at)}</span>
        <span>duration {ms(step.duration_ms)}</span>
        <span>attempts {step.attempts}</span>
        {step.waiting_for ? <span>waits for {step.waiting_for}</span> : null}
        {step.wake_at ? <span>until {clock(step.wake_at)}</span> : null}
      </div>
      <div class="tabs" role="tablist">
        {tabs.map((t) => (
          <button key={t} role="tab" aria-selected={tab === t} class={tab === t ? 'on' : ''} onClick={() => setTab(t)}>
            {t}
            {t === 'logs' && step.logs.length ? ` (${step.logs.length})` : ''}
            {t === 'error' && step.error ? ' ●' : ''}
          </button>
        ))}
      </div>
      <div class="tab-body">
        {tab === 'input' ? <Json value={step.input} /> : null}
        {tab === 'output' ? <Json value={step.output} empty={step.status === 'completed' ? 'none' : 'not yet'} /> : null}
        {tab === 'error' ? (
          step.error ? (
            <>
              <div class="problem">
                <b>{step.error.code}</b> {step.error.message}
              </div>
              {step.error.stack ? <pre class="stack">{step.error.stack}</pre> : null}
              {step.error.details ? <Json value={step.error.details} /> : null}
            </>
          ) : (
            <div class="muted">no error</div>
          )
        ) : null}
        {tab === 'logs' ? (
          step.logs.length ? (
            <table class="logs">
              <tbody>
                {step.logs.map((l, i) => (
                  <tr key={i} class={`log-${l.level}`}>
                    <td class="mono">{clock(l.t).split(' ')[1]}</td>
                    <td>{l.attempt ? `#${l.attempt}` : ''}</td>
                    <td class={`lvl lvl-${l.level}`}>{l.level}</td>
                    <td>
                      {l.msg}
                      {l.data !== undefined ? <code class="data">{pretty(l.data)}</code> : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <div class="muted">no log lines (a function writes them with ctx.log)</div>
          )
        ) : null}
        {tab === 'history' ? (
          <table class="logs">
            <tbody>
              {step.history!.map((h, i) => (
                <tr key={i}>
                  <td>
                    <Status status={h.status} />
                  </td>
                  <td>{h.attempts} attempts</td>
                  <td>{clock(h.started_at)}</td>
                  <td>{h.error ? `${h.error.code}: ${h.error.message}` : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </div>
    </Card>
  );
}
