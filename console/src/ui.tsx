import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';
import { pretty } from './format.js';

/** Data loaded once or polled: `every` ms while the tab is visible (a hidden tab costs nothing). */
export function usePoll<T>(load: () => Promise<T>, deps: unknown[], every = 0): { data?: T; error?: ApiError; reload: () => void } {
  // state is tagged with the deps it was loaded for: other filters or another record never show
  // the last one's data under the new heading, not even for one render
  const key = JSON.stringify(deps);
  const [state, setState] = useState<{ key: string; data?: T; error?: ApiError }>({ key });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const data = await loadRef.current();
        if (live) setState({ key, data });
      } catch (err) {
        const error = err instanceof ApiError ? err : new ApiError(0, 'E_CONSOLE', String(err));
        if (live) setState((s) => ({ key, data: s.key === key ? s.data : undefined, error }));
      }
      if (live && every > 0) timer = setTimeout(() => void (document.hidden ? wait() : run()), every);
    };
    let onVisible: (() => void) | null = null;
    const wait = () => {
      onVisible = () => {
        document.removeEventListener('visibilitychange', onVisible!);
        onVisible = null;
        void run();
      };
      document.addEventListener('visibilitychange', onVisible);
    };
    void run();
    return () => {
      live = false;
      clearTimeout(timer);
      if (onVisible) document.removeEventListener('visibilitychange', onVisible);
    };
  }, [key, tick, every]);
  const current = state.key === key ? state : { key };
  return { data: current.data, error: current.error, reload: () => setTick((t) => t + 1) };
}

export function Status({ status }: { status: string }) {
  return (
    <span class={`status status-${status}`} data-status={status}>
      {status === 'running' ? <span class="spin" aria-hidden="true" /> : null}
      {status}
    </span>
  );
}

export function Problem({ error }: { error?: { code: string; message: string } | null }) {
  if (!error) return null;
  return (
    <div class="problem" role="alert">
      <b>{error.code}</b> {error.message}
    </div>
  );
}

export function Loading() {
  return <div class="loading">Loading…</div>;
}

export function Json({ value, empty = 'none' }: { value: unknown; empty?: string }) {
  if (value === undefined || value === null) return <div class="muted">{empty}</div>;
  return <pre class="json">{pretty(value)}</pre>;
}

export function Card({
  title,
  children,
  actions,
}: {
  title?: ComponentChildren;
  children: ComponentChildren;
  actions?: ComponentChildren;
}) {
  return (
    <section class="card">
      {title || actions ? (
        <header>
          <h2>{title}</h2>
          <div class="actions">{actions}</div>
        </header>
      ) : null}
      {children}
    </section>
  );
}

/** Re-renders every `ms` (relative times such as "3 s ago" stay true). */
export function useNow(every = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), every);
    return () => clearInterval(t);
  }, [every]);
  return now;
}
