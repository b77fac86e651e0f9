import { useState } from 'preact/hooks';
import { ApiError, get, post } from '../api.js';
import { ago, clock } from '../format.js';
import { href } from '../router.js';
import type { Schedule } from '../types.js';
import { Card, Loading, Problem, usePoll } from '../ui.js';

/** Cron schedules: when each fires next, what it last started; pause and resume. */
export function SchedulesPage() {
  const list = usePoll(() => get<{ schedules: Schedule[] }>('/api/v1/schedules'), [], 5000);
  const [problem, setProblem] = useState<ApiError | null>(null);
  if (!list.data) return list.error ? <Problem error={list.error} /> : <Loading />;
  const toggle = async (s: Schedule) => {
    setProblem(null);
    try {
      await post(`/api/v1/schedules/${s.id}/${s.paused ? 'resume' : 'pause'}`);
      list.reload();
    } catch (err) {
      setProblem(err as ApiError);
    }
  };
  return (
    <>
      <div class="page-head">
        <h1>Schedules</h1>
      </div>
      <Problem error={problem} />
      <Card>
        {list.data.schedules.length === 0 ? (
          <div class="empty">No schedules: create one with POST /api/v1/schedules.</div>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Workflow</th>
                <th>Cron</th>
                <th>Next tick</th>
                <th>Last tick</th>
                <th>Overlap · catch-up</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data.schedules.map((s) => (
                <tr key={s.id} data-schedule={s.id}>
                  <td>
                    <a href={href('runs', { workflow: s.workflow_name })}>{s.workflow_name}</a>
                  </td>
                  <td class="mono">
                    {s.cron} <span class="muted">{s.timezone}</span>
                  </td>
                  <td title={clock(s.next_tick)}>{s.paused ? <span class="tag">paused</span> : ago(s.next_tick)}</td>
                  <td>{s.last_run_id ? <a href={href(`runs/${s.last_run_id}`)}>{ago(s.last_tick)}</a> : ago(s.last_tick)}</td>
                  <td class="muted">
                    {s.overlap} · {s.catchup}
                  </td>
                  <td>
                    <button onClick={() => void toggle(s)}>{s.paused ? 'Resume' : 'Pause'}</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </>
  );
}
