import { useState } from 'preact/hooks';
import { ApiError, get, post } from '../api.js';
import { ago } from '../format.js';
import { go, href } from '../router.js';
import type { Workflow } from '../types.js';
import { Card, Json, Loading, Problem, Status, usePoll } from '../ui.js';
import { Graph } from './graph.js';

/** Registered workflows, one line per name with its latest version. */
export function WorkflowsPage() {
  const list = usePoll(() => get<{ workflows: Workflow[] }>('/api/v1/workflows?limit=500'), [], 10_000);
  if (!list.data) return list.error ? <Problem error={list.error} /> : <Loading />;
  const byName = new Map<string, Workflow[]>();
  for (const w of list.data.workflows) byName.set(w.name, [...(byName.get(w.name) ?? []), w]);
  return (
    <>
      <div class="page-head">
        <h1>Workflows</h1>
      </div>
      <Card>
        {byName.size === 0 ? (
          <div class="empty">No workflows yet: register one with POST /api/v1/workflows or npx wf workflows apply FILE.yaml.</div>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Latest</th>
                <th>Versions</th>
                <th>Steps</th>
                <th>Triggers</th>
                <th>Registered</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {[...byName.entries()].map(([name, versions]) => {
                const latest = versions[0];
                return (
                  <tr key={name} data-workflow={name} onClick={() => go(`workflows/${latest.id}`)}>
                    <td>
                      <a href={href(`workflows/${latest.id}`)}>{name}</a>
                      {latest.description ? <div class="muted small">{latest.description}</div> : null}
                    </td>
                    <td>
                      {latest.version} <Status status={latest.status} />
                    </td>
                    <td>{versions.length}</td>
                    <td>{latest.definition.steps.length}</td>
                    <td>{latest.definition.triggers?.map((t) => t.event).join(', ') ?? ''}</td>
                    <td>{ago(latest.created_at)}</td>
                    <td>
                      <a href={href('runs', { workflow: name })} onClick={(e) => e.stopPropagation()}>
                        runs →
                      </a>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Card>
    </>
  );
}

/** A workflow version: its graph, its other versions, its definition, and a form to start a run. */
export function WorkflowPage({ id }: { id: string }) {
  const w = usePoll(() => get<Workflow>(`/api/v1/workflows/${encodeURIComponent(id)}`), [id]);
  const versions = usePoll(
    () =>
      w.data
        ? get<{ workflows: Workflow[] }>(`/api/v1/workflows?limit=500&name=${encodeURIComponent(w.data.name)}`)
        : Promise.resolve({ workflows: [] }),
    [w.data?.name],
  );
  const [input, setInput] = useState('{}');
  const [problem, setProblem] = useState<ApiError | null>(null);
  const [view, setView] = useState<'graph' | 'json'>('graph');
  if (!w.data) return w.error ? <Problem error={w.error} /> : <Loading />;
  const wf = w.data;
  const start = async (e: Event) => {
    e.preventDefault();
    setProblem(null);
    let data: unknown;
    try {
      data = JSON.parse(input || '{}');
    } catch (err) {
      setProblem(new ApiError(0, 'E_BAD_JSON', `the input is not JSON: ${(err as Error).message}`));
      return;
    }
    try {
      const r = await post<{ run_id: string }>('/api/v1/execute', { workflow_id: wf.id, input_data: data });
      go(`runs/${r.run_id}`);
    } catch (err) {
      setProblem(err as ApiError);
    }
  };
  return (
    <>
      <div class="page-head">
        <h1>
          {wf.name} <span class="muted">{wf.version}</span> <Status status={wf.status} />
        </h1>
        <div class="actions">
          <a class="button" href={href('runs', { workflow: wf.name })}>
            Runs
          </a>
        </div>
      </div>
      {wf.description ? <p class="muted">{wf.description}</p> : null}
      <div class="two wide-left">
        <Card
          title="Definition"
          actions={
            <div class="tabs">
              <button class={view === 'graph' ? 'on' : ''} onClick={() => setView('graph')}>
                graph
              </button>
              <button class={view === 'json' ? 'on' : ''} onClick={() => setView('json')}>
                JSON
              </button>
            </div>
          }
        >
          {view === 'graph' ? <Graph steps={wf.definition.steps} triggers={wf.definition.triggers} /> : <Json value={wf.definition} />}
        </Card>
        <div>
          <Card title="Start a run">
            <form onSubmit={(e) => void start(e)} class="stack">
              <label>
                Input (JSON)
                <textarea name="input" rows={6} value={input} onInput={(e) => setInput((e.target as HTMLTextAreaElement).value)} />
              </label>
              <Problem error={problem} />
              <div class="row-end">
                <button type="submit" class="primary" disabled={wf.status !== 'active'}>
                  Start
                </button>
              </div>
            </form>
          </Card>
          <Card title="Versions">
            <table>
              <tbody>
                {(versions.data?.workflows ?? []).map((v) => (
                  <tr key={v.id} class={v.id === wf.id ? 'sel' : ''}>
                    <td>
                      <a href={href(`workflows/${v.id}`)}>{v.version}</a>
                    </td>
                    <td>
                      <Status status={v.status} />
                    </td>
                    <td>{ago(v.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <div class="muted small mono">{wf.id}</div>
          </Card>
        </div>
      </div>
    </>
  );
}
