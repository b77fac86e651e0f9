import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';
import { waitFor } from '../helpers/env.js';
import { testModes } from '../helpers/modes.js';

/**
 * Durable time and events through HTTP, with both queue drivers (JetStream, and the PostgreSQL
 * queue): sleeps, signals, events, child runs, catch, redrive, list filters. Schedules and the
 * kill -9 / many-sleepers properties have their own files.
 */
describe.each(testModes(['services', 'postgres']))('durable time and events (%s)', (mode) => {
  let t: TestSystem;
  const scratch = mkdtempSync(join(tmpdir(), 'wf-durable-'));
  beforeAll(async () => {
    t = await startTestSystem({ mode, set: ['executor.function_dirs=[steps, functions, test/fixtures/functions]'] });
  });
  afterAll(async () => {
    await t?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  let n = 0;
  const register = async (definition: unknown, name = `durable-${mode}-${++n}`) => {
    const r = await api(t.url, 'POST', '/api/v1/workflows', { name, definition });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body as { id: string; name: string };
  };
  const start = async (workflowId: string, input: unknown = {}) => {
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: workflowId, input_data: input });
    expect(r.status).toBe(200);
    return r.body.run_id as string;
  };
  const run = async (id: string) => (await api(t.url, 'GET', `/api/v1/executions/${id}`)).body;
  const until = (id: string, status: string, ms = 15_000) =>
    waitFor(
      async () => {
        const r = await run(id);
        if (r.status !== status && ['completed', 'failed', 'cancelled'].includes(r.status)) {
          throw new Error(`run ${id} ended ${r.status}, not ${status}: ${JSON.stringify(r.error)} ${JSON.stringify(r.steps)}`);
        }
        return r.status === status ? r : null;
      },
      ms,
      `run ${id} to be ${status}`,
      50,
    );
  const waitingRuns = (workflowId: string) =>
    waitFor(
      async () => {
        const r = await api(t.url, 'GET', `/api/v1/executions?workflow_id=${workflowId}&status=waiting`);
        return r.body.executions.length ? (r.body.executions as { run_id: string }[]) : null;
      },
      10_000,
      'a run of the child workflow to wait',
    );
  const step = (r: { steps: { name: string }[] }, name: string) => r.steps.find((s) => s.name === name) as any;

  it('sleeps durably: the run waits (no executor slot) with wake_at, then wakes and skips its recorded steps', async () => {
    const wf = await register({
      steps: [
        { name: 'before', type: 'echo' },
        { name: 'nap', type: 'sleep', config: { duration: '1500ms' } },
        { name: 'after', type: 'transform', config: { template: { woke: true } } },
      ],
    });
    const t0 = Date.now();
    const id = await start(wf.id, { x: 1 });
    const waiting = await until(id, 'waiting');
    const nap = step(waiting, 'nap');
    expect(nap.status).toBe('waiting');
    expect(nap.waiting_for).toMatch(/^sleep until /);
    expect(Date.parse(nap.wake_at) - t0).toBeGreaterThanOrEqual(1400);
    const done = await until(id, 'completed');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expect(step(done, 'nap').status).toBe('completed');
    expect(step(done, 'nap').output).toEqual(step(done, 'before').output); // a sleep passes its input on
    expect(done.output).toMatchObject({ woke: true });
  });

  it('a sleep until a time that has passed goes on at once; a bad duration fails the step with E_STEP_CONFIG', async () => {
    const past = await register({
      steps: [{ name: 'nap', type: 'sleep', config: { until: '{{ input.at }}' } }],
    });
    const r1 = await until(await start(past.id, { at: '2020-01-01T00:00:00Z' }), 'completed');
    expect(step(r1, 'nap').status).toBe('completed');
    const bad = await register({ steps: [{ name: 'nap', type: 'sleep', config: { until: '{{ input.at }}' } }] });
    const r2 = await until(await start(bad.id, { at: 'next tuesday' }), 'failed');
    expect(r2.error.code).toBe('E_STEP_CONFIG');
    expect(r2.error.message).toMatch(/ISO 8601/);
  });

  it('refuses durable steps with a bad config at registration', async () => {
    const r = await api(t.url, 'POST', '/api/v1/workflows', {
      name: `bad-durable-${mode}`,
      definition: { steps: [{ name: 'w', type: 'wait_for_signal', config: { signal: 'go', timout: '1h' } }] },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('E_WORKFLOW_INVALID');
  });

  it('signals: one sent before the step waits is kept and consumed; one after resumes it; the output is the body', async () => {
    const wf = await register({
      steps: [
        { name: 'first', type: 'wait_for_signal', config: { signal: 'approved' } },
        { name: 'second', type: 'wait_for_signal', config: { signal: 'shipped' } },
      ],
    });
    const id = await start(wf.id);
    await until(id, 'waiting');
    // "shipped" before its step waits: stored, not delivered
    const early = await api(t.url, 'POST', `/api/v1/executions/${id}/signals/shipped`, { carrier: 'dhl' });
    expect(early.status).toBe(202);
    expect(early.body.delivered).toBe(false);
    const waiting = await run(id);
    expect(step(waiting, 'first')).toMatchObject({ status: 'waiting', waiting_for: 'signal "approved"' });
    const late = await api(t.url, 'POST', `/api/v1/executions/${id}/signals/approved`, { by: 'ana' });
    expect(late.status).toBe(202);
    expect(late.body.delivered).toBe(true);
    const done = await until(id, 'completed');
    expect(step(done, 'first').output).toEqual({ by: 'ana' });
    expect(done.output).toEqual({ carrier: 'dhl' });
    // a final run takes no signal
    const after = await api(t.url, 'POST', `/api/v1/executions/${id}/signals/approved`, {});
    expect(after.status).toBe(409);
    expect(after.body.error.code).toBe('E_RUN_FINAL');
    const unknown = await api(t.url, 'POST', `/api/v1/executions/01890000-0000-7000-8000-000000000000/signals/x`, {});
    expect(unknown.status).toBe(404);
    const badName = await api(t.url, 'POST', `/api/v1/executions/${id}/signals/${encodeURIComponent('no spaces')}`, {});
    expect(badName.status).toBe(400);
  });

  it('a signal sent right after execute, before any executor wrote the run, is kept for it', async () => {
    const wf = await register({ steps: [{ name: 'go', type: 'wait_for_signal', config: { signal: 'go' } }] });
    const id = await start(wf.id);
    const sig = await api(t.url, 'POST', `/api/v1/executions/${id}/signals/go`, { now: true });
    expect(sig.status).toBe(202);
    const done = await until(id, 'completed');
    expect(done.output).toEqual({ now: true });
  });

  it('a timed-out wait with a retry waits again, asleep (not busy), and the signal then ends it', async () => {
    const wf = await register({
      steps: [
        { name: 'ok', type: 'wait_for_signal', config: { signal: 'ok', timeout: '400ms' }, retry: { max_retries: 1, retry_delay: '10ms' } },
      ],
    });
    const id = await start(wf.id);
    await waitFor(
      async () => {
        const r = await run(id);
        return r.status === 'waiting' && step(r, 'ok').attempts === 2 ? r : null;
      },
      10_000,
      'the second attempt to wait',
      50,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect((await run(id)).status).toBe('waiting'); // still asleep: the first attempt's ended wait does not keep it awake
    expect((await api(t.url, 'POST', `/api/v1/executions/${id}/signals/ok`, { second: true })).status).toBe(202);
    const done = await until(id, 'completed');
    expect(done.output).toEqual({ second: true });
  });

  it('a signal that does not come in time fails the step with E_SIGNAL_TIMEOUT, and catch takes it', async () => {
    const wf = await register({
      steps: [
        {
          name: 'approval',
          type: 'wait_for_signal',
          config: { signal: 'approved', timeout: '700ms' },
          catch: [{ name: 'escalate', type: 'transform', config: { template: { escalated: '{{ error.code }}' } } }],
        },
      ],
    });
    const plain = await register({ steps: [{ name: 'approval', type: 'wait_for_signal', config: { signal: 'x', timeout: '500ms' } }] });
    const caught = await until(await start(wf.id), 'completed');
    expect(step(caught, 'approval')).toMatchObject({ status: 'failed', error: { code: 'E_SIGNAL_TIMEOUT' } });
    expect(caught.output).toMatchObject({ escalated: 'E_SIGNAL_TIMEOUT' });
    const failed = await until(await start(plain.id), 'failed');
    expect(failed.error.code).toBe('E_SIGNAL_TIMEOUT');
  });

  it('events: a trigger starts one run per event (the id deduplicates); wait_for_event resumes on a matching event only', async () => {
    const ev = `order.paid.${mode}`;
    const triggered = await register({ triggers: [{ event: ev }], steps: [{ name: 'got', type: 'echo' }] });
    const waiter = await register({
      steps: [
        { name: 'wait', type: 'wait_for_event', config: { event: ev, match: { order_id: '{{ run.input.order_id }}' }, timeout: '30s' } },
        { name: 'after', type: 'echo' },
      ],
    });
    const w1 = await start(waiter.id, { order_id: 'A1' });
    const w2 = await start(waiter.id, { order_id: 'B2' });
    await until(w1, 'waiting');
    await until(w2, 'waiting');
    const sent = await api(t.url, 'POST', '/api/v1/events', { name: ev, data: { order_id: 'A1', total: 9 }, id: 'pay-1' });
    expect(sent.status).toBe(202);
    expect(sent.body.duplicate).toBe(false);
    expect(sent.body.started.map((s: { workflow_id: string }) => s.workflow_id)).toEqual([triggered.id]);
    const again = await api(t.url, 'POST', '/api/v1/events', { name: ev, data: { order_id: 'A1', total: 9 }, id: 'pay-1' });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ duplicate: true, event_id: sent.body.event_id, started: [] });

    const started = await until(sent.body.started[0].run_id, 'completed');
    expect(started.input).toEqual({ order_id: 'A1', total: 9 });
    const r1 = await until(w1, 'completed');
    expect(step(r1, 'wait').output).toEqual({ order_id: 'A1', total: 9 });
    expect((await run(w2)).status).toBe('waiting'); // B2 did not match
    const runs = await api(t.url, 'GET', `/api/v1/executions?workflow_id=${encodeURIComponent(triggered.name)}`);
    expect(runs.body.executions).toHaveLength(1); // one run for the event, not two
    await api(t.url, 'POST', '/api/v1/events', { name: ev, data: { order_id: 'B2' } });
    await until(w2, 'completed');

    const bad = await api(t.url, 'POST', '/api/v1/events', { data: {} });
    expect(bad.status).toBe(400);
  });

  it('child workflows: outputs the child output, links parent_run_id; a child failure fails the step (catch applies)', async () => {
    const child = await register({ steps: [{ name: 'double', type: 'transform', config: { template: { doubled: '{{ input.n }}' } } }] });
    const failing = await register({ steps: [{ name: 'boom', type: 'fail', config: { retryable: false, code: 'E_BOOM' } }] });
    const parent = await register({
      steps: [
        { name: 'prepare', type: 'echo' },
        { name: 'kid', type: 'workflow', config: { workflow_id: child.name, input: '{{ run.input }}' } },
        {
          name: 'bad-kid',
          type: 'workflow',
          config: { workflow_id: failing.id },
          catch: [{ name: 'note', type: 'transform', config: { template: { child_failed: '{{ error.code }}' } } }],
        },
      ],
    });
    const id = await start(parent.id, { n: 21 });
    const done = await until(id, 'completed', 20_000);
    const kid = step(done, 'kid');
    expect(kid.status).toBe('completed');
    expect(kid.output).toEqual({ doubled: 21 });
    expect(step(done, 'bad-kid')).toMatchObject({ status: 'failed', error: { code: 'E_CHILD_FAILED' } });
    expect(done.output).toMatchObject({ child_failed: 'E_CHILD_FAILED' });
    const kids = await api(t.url, 'GET', `/api/v1/executions?workflow_id=${child.id}`);
    const kidRun = await run(kids.body.executions[0].run_id);
    expect(kidRun.parent_run_id).toBe(id);
  });

  it('cancelling a parent that waits for its child cancels both', async () => {
    const child = await register({ steps: [{ name: 'hold', type: 'wait_for_signal', config: { signal: 'never' } }] });
    const parent = await register({ steps: [{ name: 'kid', type: 'workflow', config: { workflow_id: child.id } }] });
    const id = await start(parent.id);
    await until(id, 'waiting');
    const kids = await waitingRuns(child.id);
    const c = await api(t.url, 'POST', `/api/v1/executions/${id}/cancel`);
    expect(c.status).toBe(202);
    await until(id, 'cancelled');
    await until(kids[0].run_id, 'cancelled');
  });

  it('cancelling a child alone fails its parent step with E_CHILD_FAILED at once', async () => {
    const child = await register({ steps: [{ name: 'hold', type: 'wait_for_signal', config: { signal: 'never' } }] });
    const parent = await register({ steps: [{ name: 'kid', type: 'workflow', config: { workflow_id: child.id } }] });
    const id = await start(parent.id);
    await until(id, 'waiting');
    const kids = await waitingRuns(child.id);
    expect((await api(t.url, 'POST', `/api/v1/executions/${kids[0].run_id}/cancel`)).status).toBe(202);
    const failed = await until(id, 'failed', 4000); // well before the engine's 5 s sweep
    expect(failed.error.code).toBe('E_CHILD_FAILED');
    expect(step(failed, 'kid').error.message).toMatch(/cancelled/);
  });

  it('a parent that stops waiting for its child (timeout) fails, and the child is cancelled', async () => {
    const child = await register({ steps: [{ name: 'hold', type: 'wait_for_signal', config: { signal: 'never' } }] });
    const parent = await register({ steps: [{ name: 'kid', type: 'workflow', config: { workflow_id: child.id, timeout: '800ms' } }] });
    const id = await start(parent.id);
    const failed = await until(id, 'failed');
    expect(failed.error.code).toBe('E_CHILD_TIMEOUT');
    const kids = await api(t.url, 'GET', `/api/v1/executions?workflow_id=${child.id}`);
    expect(kids.body.executions).toHaveLength(1);
    await until(kids.body.executions[0].run_id, 'cancelled');
  });

  it('catch on a node runs compensations with the error (a saga), and the run goes on after it', async () => {
    const wf = await register({
      steps: [
        {
          name: 'booking',
          parallel: {
            branches: [
              { name: 'hotel', steps: [{ name: 'reserve', type: 'transform', config: { template: { hotel: 'H1' } } }] },
              {
                name: 'flight',
                steps: [{ name: 'book', type: 'fail', config: { retryable: false, code: 'E_NO_SEATS', message: 'sold out' } }],
              },
            ],
          },
          catch: [
            {
              name: 'cancel-hotel',
              type: 'transform',
              config: { template: { cancelled: 'H1', why: '{{ error.code }}', msg: '{{ error.message }}' } },
            },
          ],
        },
        { name: 'notify', type: 'transform', config: { template: { notified: true } } },
      ],
    });
    const done = await until(await start(wf.id), 'completed');
    const names = done.steps.map((s: { name: string }) => s.name);
    expect(names).toContain('booking#catch/cancel-hotel');
    expect(step(done, 'booking#catch/cancel-hotel').output).toMatchObject({ cancelled: 'H1', why: 'E_NO_SEATS', msg: 'sold out' });
    expect(done.output).toEqual({ notified: true });
    expect(step(done, 'notify').input).toMatchObject({ why: 'E_NO_SEATS' }); // the catch's output stands for the node's
  });

  it('redrive: a failed run retried after the fix runs from the failed step; completed steps are not run again', async () => {
    const flag = join(scratch, `fixed-${mode}`);
    const wf = await register({
      steps: [
        { name: 'one', type: 'count-invocations' },
        { name: 'two', type: 'fails-until-fixed', config: { fixed_by: flag } },
        { name: 'three', type: 'echo' },
      ],
    });
    const id = await start(wf.id, { n: 1 });
    const failed = await until(id, 'failed');
    expect(failed.error.code).toBe('E_NOT_FIXED');
    const oneBefore = step(failed, 'one');
    writeFileSync(flag, 'fixed');
    const retry = await api(t.url, 'POST', `/api/v1/executions/${id}/retry`);
    expect(retry.status).toBe(202);
    const done = await until(id, 'completed');
    expect(done.redrives).toBe(1);
    expect(step(done, 'one').completed_at).toBe(oneBefore.completed_at); // not run again
    const two = step(done, 'two');
    expect(two.status).toBe('completed');
    expect(two.history).toEqual([
      expect.objectContaining({ status: 'failed', error: { code: 'E_NOT_FIXED', message: expect.any(String) } }),
    ]);
    const again = await api(t.url, 'POST', `/api/v1/executions/${id}/retry`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('E_RUN_NOT_FAILED');
  });

  it("a function's thrown error keeps its stack, mapped to the .ts source file and line", async () => {
    const wf = await register({ steps: [{ name: 'parse', type: 'throws-plain' }] });
    const failed = await until(await start(wf.id, { amount: 'ten' }), 'failed');
    const stack: string = step(failed, 'parse').error.stack;
    expect(stack).toMatch(/^Error: cannot parse amount/);
    expect(stack).toMatch(/at parseAmount \(.*test\/fixtures\/functions\/throws-plain\.ts:5:\d+\)/);
  });

  it('lists runs by status (validated), by workflow id or name, and by time range', async () => {
    const wf = await register({ steps: [{ name: 'e', type: 'echo' }] });
    const from = new Date().toISOString();
    const a = await start(wf.id);
    await until(a, 'completed');
    const byName = await api(t.url, 'GET', `/api/v1/executions?workflow_id=${encodeURIComponent(wf.name)}&status=completed`);
    expect(byName.body.executions.map((e: { run_id: string }) => e.run_id)).toEqual([a]);
    const inRange = await api(t.url, 'GET', `/api/v1/executions?workflow_id=${wf.id}&from=${from}`);
    expect(inRange.body.executions).toHaveLength(1);
    const before = await api(t.url, 'GET', `/api/v1/executions?workflow_id=${wf.id}&to=${from}`);
    expect(before.body.executions).toHaveLength(0);
    const bad = await api(t.url, 'GET', '/api/v1/executions?status=done');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/waiting/);
    const badTime = await api(t.url, 'GET', '/api/v1/executions?from=yesterday');
    expect(badTime.status).toBe(400);
  });
});
