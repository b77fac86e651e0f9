import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testModes } from '../helpers/modes.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

async function register(t: TestSystem, name: string, steps: unknown[]) {
  const r = await api(t.url, 'POST', '/api/v1/workflows', { name, definition: { steps } });
  expect(r.status).toBe(201);
  return r.body.id as string;
}

async function runAndWait(t: TestSystem, workflow: string, input: unknown = {}) {
  const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: workflow, input_data: input, wait: true, wait_timeout: '20s' });
  expect(r.status).toBe(200);
  const run = await api(t.url, 'GET', `/api/v1/executions/${r.body.run_id}`);
  expect(run.status).toBe(200);
  return { result: r.body, run: run.body };
}

describe.each(testModes())('retries, backoff and timeouts (%s)', (mode) => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({
      mode,
      set: ['executor.retry_delay=20ms', 'executor.max_retries=3', 'executor.function_dirs=[steps, functions, test/fixtures/functions]'],
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('retries a failing step until it succeeds, and records the attempts', async () => {
    await register(t, 'flaky', [{ name: 'flaky', type: 'fail', config: { times: 2, code: 'E_FLAKY' } }]);
    const { result, run } = await runAndWait(t, 'flaky', { k: 1 });
    expect(result.status).toBe('completed');
    expect(result.output).toEqual({ attempt: 3, input: { k: 1 } });
    expect(run.steps[0]).toMatchObject({ name: 'flaky', status: 'completed', attempts: 3, error: null });
    // why the earlier attempts failed stays in the record after the retry succeeded
    expect(run.steps[0].logs.map((l: { level: string; msg: string; attempt: number }) => [l.level, l.attempt, l.msg])).toEqual([
      ['warn', 1, 'attempt 1 failed: E_FLAKY: failing on purpose (attempt 1)'],
      ['warn', 2, 'attempt 2 failed: E_FLAKY: failing on purpose (attempt 2)'],
    ]);
  });

  it('fails the run after executor.max_retries retries with the step error code', async () => {
    await register(t, 'always-fails', [{ name: 'boom', type: 'fail', config: { code: 'E_BOOM', message: 'nope' } }]);
    const t0 = Date.now();
    const { result, run } = await runAndWait(t, 'always-fails');
    expect(result.status).toBe('failed');
    expect(result.error.code).toBe('E_BOOM');
    expect(run.status).toBe('failed');
    expect(run.error.code).toBe('E_BOOM');
    expect(run.error.message).toContain('step "boom" failed');
    expect(run.steps[0]).toMatchObject({ status: 'failed', attempts: 4 });
    expect(run.steps[0].logs.map((l: { msg: string }) => l.msg)).toEqual([1, 2, 3].map((n) => `attempt ${n} failed: E_BOOM: nope`));
    // backoff 20 + 40 + 80 ms between the four attempts
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('honours a step-level retry policy over the executor default', async () => {
    await register(t, 'one-retry', [
      { name: 'boom', type: 'fail', config: { code: 'E_BOOM' }, retry: { max_retries: 1, retry_delay: 10 } },
    ]);
    const { run } = await runAndWait(t, 'one-retry');
    expect(run.steps[0]).toMatchObject({ status: 'failed', attempts: 2 });
  });

  it('does not retry a non-retryable error', async () => {
    await register(t, 'fatal', [{ name: 'fatal', type: 'fail', config: { code: 'E_FATAL', retryable: false } }]);
    const { run } = await runAndWait(t, 'fatal');
    expect(run.steps[0]).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'E_FATAL' } });
  });

  it('times a step out with E_STEP_TIMEOUT and stops the run there', async () => {
    await register(t, 'slow', [
      { name: 'wait', type: 'delay', config: { ms: 5000 }, timeout: '150ms', retry: { max_retries: 1, retry_delay: 10 } },
      { name: 'after', type: 'echo', config: { message: 'never' } },
    ]);
    const t0 = Date.now();
    const { run } = await runAndWait(t, 'slow');
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(run.status).toBe('failed');
    expect(run.error.code).toBe('E_STEP_TIMEOUT');
    expect(run.steps).toHaveLength(1);
    expect(run.steps[0]).toMatchObject({ name: 'wait', status: 'failed', attempts: 2 });
  });

  it('passes each step the previous output, and later steps see earlier ones', async () => {
    await register(t, 'chain', [
      { name: 'a', type: 'echo', config: { message: 'first' } },
      { name: 'pause', type: 'delay', config: { ms: 5 } },
      { name: 'b', type: 'echo', config: { message: 'second' } },
    ]);
    const { result, run } = await runAndWait(t, 'chain', { start: true });
    expect(result.output).toEqual({ message: 'second', input: { message: 'first', input: { start: true } } });
    expect(run.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual([
      'a:completed',
      'pause:completed',
      'b:completed',
    ]);
  });

  it('answers 202 with the current status when wait times out, and the run still completes', async () => {
    await register(t, 'long', [{ name: 'wait', type: 'delay', config: { ms: 600 } }]);
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'long', input_data: { x: 1 }, wait: true, wait_timeout: 100 });
    expect(r.status).toBe(202);
    expect(r.body.wait_timed_out).toBe(true);
    expect(['queued', 'running']).toContain(r.body.status);
    await new Promise((res) => setTimeout(res, 1200));
    const run = await api(t.url, 'GET', `/api/v1/executions/${r.body.run_id}`);
    expect(run.body.status).toBe('completed');
    expect(run.body.output).toEqual({ x: 1 });
  });

  it('tells a waiting caller what was stored when Postgres refuses a step output', async () => {
    await register(t, 'nul-output', [{ name: 'nul', type: 'hostile', config: { mode: 'nul-output' } }]);
    const { result, run } = await runAndWait(t, 'nul-output');
    expect(run.status).toBe('failed');
    expect(run.error.code).toBe('E_STORE_REJECTED');
    expect({ status: result.status, code: result.error?.code }).toEqual({ status: 'failed', code: 'E_STORE_REJECTED' });
  });
});
