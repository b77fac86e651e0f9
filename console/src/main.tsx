import { Component, render, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { apiKey, get, onAuthNeeded } from './api.js';
import { go, useRoute } from './router.js';
import { FunctionsPage } from './pages/functions.js';
import { OverviewPage } from './pages/overview.js';
import { RunPage } from './pages/run.js';
import { RunsPage } from './pages/runs.js';
import { SchedulesPage } from './pages/schedules.js';
import { WorkflowPage, WorkflowsPage } from './pages/workflows.js';
import './style.css';

const NAV = [
  ['overview', 'Overview'],
  ['runs', 'Runs'],
  ['workflows', 'Workflows'],
  ['functions', 'Functions'],
  ['schedules', 'Schedules'],
] as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A screen that throws shows what went wrong in its place; the rest of the console stays. */
class Boundary extends Component<{ children: ComponentChildren }, { error: Error | null }> {
  state = { error: null as Error | null };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  render() {
    if (!this.state.error) return this.props.children;
    return (
      <div class="problem" role="alert">
        <b>E_CONSOLE</b> this screen failed: {this.state.error.message}. <a href="#/runs">Runs</a> · reload the page to try again
      </div>
    );
  }
}

/** Asks for an API key when the API answers 401; the key lives in this tab's sessionStorage. */
function KeyPrompt({ onDone }: { onDone: () => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    apiKey.set(key.trim());
    try {
      await get('/api/v1/workflows?limit=1');
      onDone();
    } catch (err) {
      apiKey.clear();
      setError((err as Error).message);
    }
  };
  return (
    <div class="modal-back">
      <form class="modal" onSubmit={(e) => void submit(e)} aria-label="API key">
        <h2>API key</h2>
        <p>This runtime requires an API key. It is kept for this browser tab only.</p>
        <input
          type="password"
          name="api-key"
          autoFocus
          autoComplete="off"
          placeholder="wf_…"
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
        />
        {error ? <div class="problem">{error}</div> : null}
        <div class="row-end">
          <button type="submit" class="primary" disabled={!key.trim()}>
            Sign in
          </button>
        </div>
      </form>
    </div>
  );
}

function App() {
  const route = useRoute();
  const [needKey, setNeedKey] = useState(false);
  const [epoch, setEpoch] = useState(0);
  useEffect(() => onAuthNeeded(() => setNeedKey(true)), []);
  useEffect(() => {
    if (!route.path.length) go('runs');
  }, [route.path.length]);
  const [section, id] = route.path;
  let page;
  if (section === 'overview') page = <OverviewPage />;
  else if (section === 'runs' && id && UUID.test(id)) page = <RunPage key={id} id={id.toLowerCase()} />;
  else if (section === 'runs' && id) page = <div class="problem">No run {id}: a run id is a UUID.</div>;
  else if (section === 'runs') page = <RunsPage query={route.query} />;
  else if (section === 'workflows' && id) page = <WorkflowPage key={id} id={id} />;
  else if (section === 'workflows') page = <WorkflowsPage />;
  else if (section === 'functions') page = <FunctionsPage />;
  else if (section === 'schedules') page = <SchedulesPage />;
  else
    page = (
      <div class="card">
        Nothing here. <a href="#/runs">Runs</a>
      </div>
    );
  return (
    <>
      <nav class="top">
        <a class="brand" href="#/overview">
          <span class="dot" /> workflow runtime
        </a>
        {NAV.map(([p, label]) => (
          <a key={p} href={`#/${p}`} class={section === p ? 'on' : ''}>
            {label}
          </a>
        ))}
        <span class="grow" />
        <a href="/api-docs" target="_blank" rel="noreferrer">
          API docs
        </a>
        {apiKey.get() ? (
          <button
            class="link"
            onClick={() => {
              apiKey.clear();
              location.reload();
            }}
          >
            Sign out
          </button>
        ) : null}
      </nav>
      <main key={`${epoch}:${route.path.join('/')}`}>
        <Boundary>{page}</Boundary>
      </main>
      {needKey ? (
        <KeyPrompt
          onDone={() => {
            setNeedKey(false);
            setEpoch((e) => e + 1);
          }}
        />
      ) : null}
    </>
  );
}

render(<App />, document.getElementById('app')!);
