import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';
import { waitFor } from '../helpers/env.js';
import { readinessChecks, testModes } from '../helpers/modes.js';

// The seed plan's functional test (section 6.1), step by step, through HTTP, in every mode.
describe.each(testModes())('seed functional test (%s)', (mode) => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({ mode });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('health, create, list, execute, list executions, get execution', async () => {
    const health = await api(t.url, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('ok');

    const created = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'Test Workflow',
      description: 'POC Test Workflow',
      definition: { steps: [{ name: 'echo-step', type: 'echo', config: { message: 'Hello POC' } }] },
      version: '1.0.0',
    });
    expect(created.status).toBe(201);
    expect(created.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.body.name).toBe('Test Workflow');

    const list = await api(t.url, 'GET', '/api/v1/workflows');
    expect(list.status).toBe(200);
    const workflowId = list.body.workflows[0].id;
    expect(workflowId).toBe(created.body.id);

    const exec = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: workflowId, input_data: { test: 'value' } });
    expect(exec.status).toBe(200);
    expect(exec.body.run_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(exec.body.status).toBe('queued');

    const runs = await api(t.url, 'GET', '/api/v1/executions');
    expect(runs.status).toBe(200);
    const runId = runs.body.executions[0].run_id;
    expect(runId).toBe(exec.body.run_id);

    const run = await waitFor(
      async () => {
        const r = await api(t.url, 'GET', `/api/v1/executions/${runId}`);
        return r.status === 200 && r.body.status === 'completed' ? r.body : null;
      },
      10_000,
      'the run to complete',
    );
    expect(run.input).toEqual({ test: 'value' });
    expect(run.output.message).toBe('Hello POC');
    expect(run.started_at).toBeTruthy();
    expect(run.completed_at).toBeTruthy();
    expect(run.steps).toHaveLength(1);
    const [step] = run.steps;
    expect(step).toMatchObject({ name: 'echo-step', type: 'echo', status: 'completed', attempts: 1 });
    expect(step.output).toEqual({ message: 'Hello POC', input: { test: 'value' } });
    expect(step.started_at).toBeTruthy();
    expect(step.completed_at).toBeTruthy();
  });

  it('answers a status right after execute (queued or running, never 404)', async () => {
    const exec = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'Test Workflow', input_data: { n: 1 } });
    expect(exec.status).toBe(200);
    const r = await api(t.url, 'GET', `/api/v1/executions/${exec.body.run_id}`);
    expect(r.status).toBe(200);
    expect(['queued', 'running', 'completed']).toContain(r.body.status);
  });

  it('accepts the workflow name as workflow_id and waits for the result with wait=true', async () => {
    const res = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'Test Workflow', input_data: { x: 42 }, wait: true });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('completed');
    expect(res.body.output).toEqual({ message: 'Hello POC', input: { x: 42 } });
    const q = await api(t.url, 'POST', '/api/v1/execute?wait=true', { workflow_id: 'Test Workflow', input_data: { y: 1 } });
    expect(q.status).toBe(200);
    expect(q.body.output.input).toEqual({ y: 1 });
  });

  it('resolves a name to its latest version', async () => {
    const v2 = await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'Test Workflow',
      definition: { steps: [{ name: 'echo-step', type: 'echo', config: { message: 'v2' } }] },
      version: '2.0.0',
    });
    expect(v2.status).toBe(201);
    const res = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'Test Workflow', input_data: {}, wait: true });
    expect(res.body.workflow_version).toBe('2.0.0');
    expect(res.body.output.message).toBe('v2');
    const pinned = await api(t.url, 'POST', '/api/v1/execute', {
      workflow_id: 'Test Workflow',
      version: '1.0.0',
      input_data: {},
      wait: true,
    });
    expect(pinned.body.output.message).toBe('Hello POC');
  });

  it('exposes Prometheus metrics and readiness per dependency', async () => {
    const m = await api(t.url, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.body).toContain('http_requests_total');
    expect(m.body).toContain('workflow_runs_completed_total');
    expect(m.body).toContain('queue_publish_duration_seconds');
    const ready = await api(t.url, 'GET', '/ready');
    expect(ready.status).toBe(200);
    expect(Object.keys(ready.body.checks).sort()).toEqual(readinessChecks(mode));
  });
});
