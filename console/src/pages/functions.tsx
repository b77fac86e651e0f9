import { useState } from 'preact/hooks';
import { get } from '../api.js';
import { ms } from '../format.js';
import type { FunctionInfo } from '../types.js';
import { Card, Json, Loading, Problem, usePoll } from '../ui.js';

/** Step types and functions, with their JSON Schemas and limits. */
export function FunctionsPage() {
  const list = usePoll(() => get<{ functions: FunctionInfo[] }>('/api/v1/functions'), []);
  const [open, setOpen] = useState<string | null>(null);
  if (!list.data) return list.error ? <Problem error={list.error} /> : <Loading />;
  return (
    <>
      <div class="page-head">
        <h1>Functions</h1>
      </div>
      <Card>
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Kind</th>
              <th>Description</th>
              <th class="num">Timeout</th>
              <th>Limits</th>
            </tr>
          </thead>
          <tbody>
            {list.data.functions.map((f) => (
              <>
                <tr
                  key={f.name}
                  data-function={f.name}
                  onClick={() => setOpen(open === f.name ? null : f.name)}
                  class={open === f.name ? 'sel' : ''}
                >
                  <td>
                    <b>{f.name}</b>
                  </td>
                  <td>
                    <span class={`tag ${f.kind}`}>{f.kind}</span>
                  </td>
                  <td>{f.description ?? ''}</td>
                  <td class="num">{f.timeout_ms ? ms(f.timeout_ms) : '–'}</td>
                  <td class="muted">
                    {f.concurrency ? `${f.concurrency} at once per host` : ''} {f.memory_mb ? `${f.memory_mb} MB heap` : ''}
                  </td>
                </tr>
                {open === f.name ? (
                  <tr key={`${f.name}-schemas`} class="detail">
                    <td colSpan={5}>
                      <div class="three">
                        <div>
                          <h3>config</h3>
                          <Json value={f.config_schema} empty="any" />
                        </div>
                        <div>
                          <h3>input</h3>
                          <Json value={f.input_schema} empty="any" />
                        </div>
                        <div>
                          <h3>output</h3>
                          <Json value={f.output_schema} empty="any" />
                        </div>
                      </div>
                      {f.retry ? (
                        <>
                          <h3>retry</h3>
                          <Json value={f.retry} />
                        </>
                      ) : null}
                    </td>
                  </tr>
                ) : null}
              </>
            ))}
          </tbody>
        </table>
      </Card>
    </>
  );
}
