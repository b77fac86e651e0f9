import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';
import { testModes } from '../helpers/modes.js';

interface Sse {
  type: string;
  data: any;
}

/** Reads a Server-Sent Events stream to its end (or `ms`), parsed. */
async function readEvents(url: string, ms = 20_000): Promise<{ status: number; type: string | null; events: Sse[] }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const res = await fetch(url, { signal: ac.signal });
  const events: Sse[] = [];
  if (res.status !== 200 || !res.body) {
    clearTimeout(timer);
    return { status: res.status, type: res.headers.get('content-type'), events: [{ type: 'body', data: await res.json() }] };
  }
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let at: number;
      while ((at = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, at);
        buf = buf.slice(at + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (type && data) events.push({ type, data: JSON.parse(data) });
      }
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
  }
  return { status: res.status, type: res.headers.get('content-type'), events };
}

describe.each(testModes(['services', 'postgres']))('live run progress over SSE (%s)', (mode) => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({ mode });
  });
  afterAll(() => t?.stop());

  it('a listener hears the snapshot, each step change and the end, then the stream closes', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: `sse-${mode}`,
      definition: {
        steps: [
          { name: 'first', type: 'echo' },
          { name: 'nap', type: 'sleep', config: { duration: '1200ms' } },
          { name: 'last', type: 'transform', config: { template: { done: true } } },
        ],
      },
    });
    expect(wf.status).toBe(201);
    const ex = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: wf.body.id, input_data: { n: 1 } });
    const t0 = Date.now();
    const r = await readEvents(`${t.url}/api/v1/executions/${ex.body.run_id}/events`);
    expect(r.status).toBe(200);
    expect(r.type).toBe('text/event-stream');
    const types = r.events.map((e) => e.type);
    expect(types[0]).toBe('snapshot');
    expect(types.at(-1)).toBe('end'); // and the stream closed by itself
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000); // it stayed open while the run slept
    // what the listener saw of each step: the snapshot's (the run may be asleep already), then each change
    const snapshot = r.events[0].data.steps.map((st: { name: string; status: string }) => `${st.name}:${st.status}`);
    const steps = [...snapshot, ...r.events.filter((e) => e.type === 'step').map((e) => `${e.data.name}:${e.data.status}`)];
    expect(steps, JSON.stringify(r.events.map((e) => [e.type, e.data.name ?? e.data.status, e.data.status, e.data.updated_at]))).toContain(
      'nap:waiting',
    );
    expect(steps).toContain('nap:completed');
    expect(steps).toContain('last:completed');
    // the sleep's end was heard live, as a change, before the end
    expect(r.events.some((e) => e.type === 'step' && e.data.name === 'nap' && e.data.status === 'completed')).toBe(true);
    const end = r.events.at(-1)!.data;
    expect(end.status).toBe('completed');
    expect(end.output).toEqual({ done: true });
    expect(end.steps.map((s: { name: string }) => s.name)).toEqual(['first', 'nap', 'last']);
  });

  it('a late listener of an ended run gets its state and the end at once; an unknown run is 404', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: `sse-late-${mode}`,
      definition: { steps: [{ name: 'e', type: 'echo' }] },
    });
    const ex = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: wf.body.id, wait: true });
    expect(ex.body.status).toBe('completed');
    const late = await readEvents(`${t.url}/api/v1/executions/${ex.body.run_id}/events`, 5000);
    expect(late.events.map((e) => e.type)).toEqual(['snapshot', 'end']);
    const missing = await readEvents(`${t.url}/api/v1/executions/01890000-0000-7000-8000-000000000000/events`, 5000);
    expect(missing.status).toBe(404);
    expect(missing.events[0].data.error.code).toBe('E_RUN_NOT_FOUND');
  });

  it('many listeners of one run all hear its end, and leaving early costs nothing', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', {
      name: `sse-many-${mode}`,
      definition: { steps: [{ name: 'go', type: 'wait_for_signal', config: { signal: 'go' } }] },
    });
    const ex = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: wf.body.id });
    const url = `${t.url}/api/v1/executions/${ex.body.run_id}/events`;
    const quitter = readEvents(url, 300); // leaves before the end
    const listeners = Array.from({ length: 50 }, () => readEvents(url));
    await quitter;
    await new Promise((r) => setTimeout(r, 500));
    expect((await api(t.url, 'POST', `/api/v1/executions/${ex.body.run_id}/signals/go`, { v: 1 })).status).toBe(202);
    const all = await Promise.all(listeners);
    for (const l of all) {
      expect(l.events[0].type).toBe('snapshot');
      expect(l.events.at(-1)).toMatchObject({ type: 'end', data: { status: 'completed', output: { v: 1 } } });
    }
  });
});
