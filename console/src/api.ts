/**
 * The console talks to the runtime's HTTP API only, on the same origin (so it works behind
 * HAProxy as it does on a laptop). With API keys on, a 401 asks for a key; the key is kept in
 * sessionStorage (gone when the tab closes) and sent as a bearer token.
 */
import { sseReader } from '../../runtime/api/sse.js'; // the stream's format, as the runtime writes it

const KEY = 'wf.apiKey';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

type Listener = () => void;
const authListeners = new Set<Listener>();

/** Called when the API answers 401: the app shows the key prompt. */
export function onAuthNeeded(fn: Listener): () => void {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (k: string) => sessionStorage.setItem(KEY, k),
  clear: () => sessionStorage.removeItem(KEY),
};

function headers(body: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  const k = apiKey.get();
  if (k) h.authorization = `Bearer ${k}`;
  if (body) h['content-type'] = 'application/json';
  return h;
}

async function failure(res: Response): Promise<ApiError> {
  const text = await res.text();
  let e: { code?: string; message?: string; details?: unknown } | undefined;
  try {
    e = (JSON.parse(text) as { error?: typeof e }).error;
  } catch {
    /* not JSON */
  }
  if (res.status === 401) for (const fn of authListeners) fn();
  return new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? (text.slice(0, 200) || res.statusText), e?.details);
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, 'E_UNREACHABLE', `the runtime does not answer (${(err as Error).message})`);
  }
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => api<T>('POST', path, body);

/**
 * Follows a run's Server-Sent Events (GET /executions/:id/events). Read with fetch rather than
 * EventSource, which cannot send the Authorization header; reconnects after a dropped stream
 * (the server starts each connection with a snapshot, so nothing is missed). Returns a stop.
 */
export function followRun(runId: string, on: (type: string, data: unknown) => void): () => void {
  const ctl = new AbortController();
  let ended = false;
  const loop = async () => {
    for (let attempt = 0; !ctl.signal.aborted && !ended; attempt++) {
      try {
        const res = await fetch(`/api/v1/executions/${runId}/events`, { headers: headers(false), signal: ctl.signal });
        if (!res.ok || !res.body) throw await failure(res);
        attempt = 0;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        const events = sseReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const { type, data } of events(value)) {
            on(type, data);
            if (type === 'end') ended = true;
          }
        }
      } catch (err) {
        if (ctl.signal.aborted) return;
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) return on('error', err);
      }
      if (!ended) await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)));
    }
  };
  void loop();
  return () => ctl.abort();
}
