import { useRef, useState } from 'preact/hooks';
import { get } from '../api.js';
import { ago, clock, ms, shortId } from '../format.js';
import { go, href } from '../router.js';
import { RUN_STATUSES, type RunSummary, type Workflow } from '../types.js';
import { Card, Loading, Problem, Status, useNow, usePoll } from '../ui.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `datetime-local` has no zone: read it as local time, send it as ISO. */
const toIso = (local: string) => (local ? new Date(local).toISOString() : undefined);
const toLocal = (iso: string | null) => {
  if (!iso) return '';
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

/**
 * Runs, newest first, with the API's filters; the filters live in the URL (a link shares them).
 * The first page is polled every 2 s, so new and changing runs appear without reload; older
 * pages follow the API's cursor (`before` = the last run id of the page, a uuidv7 read from an index).
 */
export function RunsPage({ query }: { query: URLSearchParams }) {
  const filters = {
    status: query.get('status') ?? undefined,
    workflow: query.get('workflow') ?? undefined,
    from: query.get('from') ?? undefined,
    to: query.get('to') ?? undefined,
    before: query.get('before') ?? undefined,
  };
  const set = (patch: Partial<typeof filters>) => go('runs', { ...filters, before: undefined, ...patch });
  const workflows = usePoll(() => get<{ workflows: Workflow[] }>('/api/v1/workflows?limit=500'), []);
  const names = [...new Set((workflows.data?.workflows ?? []).map((w) => w.name))].sort();
  const q = new URLSearchParams({ limit: '50' });
  if (filters.status) q.set('status', filters.status);
  if (filters.workflow) q.set('workflow_id', filters.workflow);
  if (filters.from) q.set('from', filters.from);
  if (filters.to) q.set('to', filters.to);
  if (filters.before) q.set('before', filters.before);
  const live = !filters.before;
  const list = usePoll(
    () => get<{ executions: RunSummary[]; next: string | null }>(`/api/v1/executions?${q}`),
    [q.toString()],
    live ? 2000 : 0,
  );
  const seen = useRef(new Map<string, string>());
  const now = useNow(5000);
  const [search, setSearch] = useState('');
  const [searchError, setSearchError] = useState<string | null>(null);

  const changed = (r: RunSummary) => {
    const key = `${r.status}:${r.completed_at ?? ''}`;
    const before = seen.current.get(r.run_id);
    seen.current.set(r.run_id, key);
    return before !== undefined && before !== key;
  };

  return (
    <>
      <div class="page-head">
        <h1>Runs</h1>
        <form
          class="search"
          onSubmit={(e) => {
            e.preventDefault();
            const id = search.trim();
            if (UUID.test(id)) go(`runs/${id.toLowerCase()}`);
            else setSearchError('a run id is a UUID such as 01a2…-…');
          }}
        >
          <input
            name="run-id"
            placeholder="Go to run id…"
            value={search}
            onInput={(e) => {
              setSearch((e.target as HTMLInputElement).value);
              setSearchError(null);
            }}
          />
          {searchError ? <span class="field-error">{searchError}</span> : null}
        </form>
      </div>
      <Card>
        <div class="filters">
          <label>
            Status
            <select
              name="status"
              value={filters.status ?? ''}
              onChange={(e) => set({ status: (e.target as HTMLSelectElement).value || undefined })}
            >
              <option value="">any</option>
              {RUN_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          <label>
            Workflow
            <select
              name="workflow"
              value={filters.workflow ?? ''}
              onChange={(e) => set({ workflow: (e.target as HTMLSelectElement).value || undefined })}
            >
              <option value="">any</option>
              {names.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
          <label>
            From
            <input
              type="datetime-local"
              name="from"
              value={toLocal(filters.from ?? null)}
              onChange={(e) => set({ from: toIso((e.target as HTMLInputElement).value) })}
            />
          </label>
          <label>
            To
            <input
              type="datetime-local"
              name="to"
              value={toLocal(filters.to ?? null)}
              onChange={(e) => set({ to: toIso((e.target as HTMLInputElement).value) })}
            />
          </label>
          {filters.status || filters.workflow || filters.from || filters.to ? (
            <button class="link" onClick={() => go('runs')}>
              clear filters
            </button>
          ) : null}
          <span class="grow" />
          <span class={`live ${live ? 'on' : ''}`}>{live ? 'live' : 'paused on an older page'}</span>
        </div>
        <Problem error={list.error} />
        {!list.data ? (
          list.error ? null : (
            <Loading />
          )
        ) : list.data.executions.length === 0 ? (
          <div class="empty">
            No runs
            {filters.status || filters.workflow || filters.from || filters.to
              ? ' match these filters'
              : ' yet: start one with POST /api/v1/execute or npx wf run'}
            .
          </div>
        ) : (
          <table class="runs">
            <thead>
              <tr>
                <th>Run</th>
                <th>Workflow</th>
                <th>Status</th>
                <th>Accepted</th>
                <th class="num">Duration</th>
              </tr>
            </thead>
            <tbody>
              {list.data.executions.map((r) => (
                <tr key={r.run_id} class={changed(r) ? 'flash' : ''} data-run={r.run_id} onClick={() => go(`runs/${r.run_id}`)}>
                  <td class="mono">
                    <a href={href(`runs/${r.run_id}`)} title={r.run_id}>
                      {shortId(r.run_id)}
                    </a>
                    {r.parent_run_id ? (
                      <span class="tag" title={`started by ${r.parent_run_id}`}>
                        child
                      </span>
                    ) : null}
                    {r.redrives ? (
                      <span class="tag" title="redriven with POST …/retry">
                        retried ×{r.redrives}
                      </span>
                    ) : null}
                  </td>
                  <td>
                    {r.workflow_name ?? <span class="muted">{shortId(r.workflow_id)}</span>} <span class="muted">{r.workflow_version}</span>
                  </td>
                  <td>
                    <Status status={r.status} />
                    {r.error ? (
                      <span class="err-code" title={r.error.message}>
                        {r.error.code}
                      </span>
                    ) : null}
                  </td>
                  <td title={clock(r.accepted_at)}>{ago(r.accepted_at, now)}</td>
                  <td class="num">
                    {r.duration_ms !== null ? (
                      ms(r.duration_ms)
                    ) : r.started_at ? (
                      <span class="muted">{ms(Math.max(0, now - Date.parse(r.started_at)))}…</span>
                    ) : (
                      '–'
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <div class="pager">
          {filters.before ? <a href={href('runs', { ...filters, before: undefined })}>← newest</a> : <span />}
          {list.data?.next ? (
            <a class="older" href={href('runs', { ...filters, before: list.data.next })}>
              older →
            </a>
          ) : null}
        </div>
      </Card>
    </>
  );
}
