import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

/**
 * Hostile step functions (test/fixtures/functions/hostile.ts): each fails its
 * own step with its own code; the executor host stays up and keeps serving
 * other runs; the pool replaces threads that die.
 */
describe('isolation of misbehaving functions', () => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({
      set: [
        'executor.function_dirs=[steps, functions, test/fixtures/functions]',
        'executor.worker_max_old_generation_mb=64',
        'executor.max_retries=0',
      ],
    });
    for (const mode of ['spin', 'exit', 'exit-later', 'throw-in-timer', 'reject-unhandled', 'throw-string', 'reject', 'leak', 'hang']) {
      const r = await api(t.url, 'POST', '/api/v1/workflows', {
        name: `hostile-${mode}`,
        definition: { steps: [{ name: mode, type: 'hostile', config: { mode }, timeout: '400ms' }] },
      });
      expect(r.status).toBe(201);
    }
    await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'hostile-spin-long',
      definition: { steps: [{ name: 'spin', type: 'hostile', config: { mode: 'spin' }, timeout: '4s' }] },
    });
    await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'healthy',
      definition: {
        steps: [
          { name: 'hello', type: 'hostile', config: { mode: 'ok' } },
          { name: 'echo', type: 'echo', config: { message: 'fine' } },
        ],
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  const cases: [string, string, RegExp, RegExp?][] = [
    ['spin', 'E_STEP_TIMEOUT', /blocked its worker thread/],
    ['exit', 'E_PROCESS_EXIT', /called process\.exit\(3\)/],
    // stray failures outside the handler cannot be pinned on a step: logged in the steps on the thread, the culprit times out
    ['exit-later', 'E_STEP_TIMEOUT', /timed out after 400 ms/, /outside any step's handler \(the step called process\.exit\(4\)/],
    [
      'throw-in-timer',
      'E_STEP_TIMEOUT',
      /timed out after 400 ms/,
      /exception thrown in a callback on this worker thread, outside any step's handler \(thrown in a timer\)/,
    ],
    [
      'reject-unhandled',
      'E_STEP_TIMEOUT',
      /timed out after 400 ms/,
      /promise rejection that nothing handled on this worker thread, outside any step's handler \(nobody handles this\)/,
    ],
    ['throw-string', 'E_STEP_FAILED', /non-Error thrown: a plain string/],
    ['reject', 'E_HOSTILE', /rejected later/],
    ['leak', 'E_WORKER_CRASHED', /out of memory/],
    ['hang', 'E_STEP_TIMEOUT', /timed out after 400 ms/],
  ];

  for (const [mode, code, message, logLine] of cases) {
    it(`${mode}: the step fails with ${code}, the host stays up and runs the next run`, async () => {
      const bad = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: `hostile-${mode}`, wait: true, wait_timeout: '20s' });
      expect(bad.status).toBe(200);
      expect(bad.body.status).toBe('failed');
      expect(bad.body.error.code).toBe(code);
      const run = await api(t.url, 'GET', `/api/v1/executions/${bad.body.run_id}`);
      expect(run.body.steps[0].status).toBe('failed');
      expect(run.body.steps[0].error.code).toBe(code);
      expect(run.body.steps[0].error.message).toMatch(message);
      if (logLine) expect(run.body.steps[0].logs.map((l: { msg: string }) => l.msg).join('\n')).toMatch(logLine);

      const good = await api(t.url, 'POST', '/api/v1/execute', {
        workflow_id: 'healthy',
        input_data: { after: mode },
        wait: true,
        wait_timeout: '20s',
      });
      expect(good.body.status).toBe('completed');
      expect(good.body.output).toEqual({ message: 'fine', input: { ok: true } });
    });
  }

  it('keeps other runs moving while a thread spins', async () => {
    const spinning = api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'hostile-spin', wait: true, wait_timeout: '20s' });
    const t0 = Date.now();
    const others = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'healthy', input_data: { i }, wait: true, wait_timeout: '20s' }),
      ),
    );
    expect(others.filter((r) => r.body.status !== 'completed').map((r) => r.body)).toEqual([]);
    // the other thread carries them; nothing waits for the spinning one to be killed (~400 ms + grace)
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await spinning).body.error.code).toBe('E_STEP_TIMEOUT');
  });

  it('sends no new work to a thread blocked by a spinning step: other runs finish long before it is replaced', async () => {
    const spinning = api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'hostile-spin-long', wait: true, wait_timeout: '20s' });
    await new Promise((r) => setTimeout(r, 500)); // the spin has started and its thread stopped beating
    const others = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'healthy', input_data: { i }, wait: true, wait_timeout: '20s' }),
      ),
    );
    expect(others.map((r) => r.body.status)).toEqual(Array(30).fill('completed'));
    const spin = (await spinning).body;
    expect(spin.error.code).toBe('E_STEP_TIMEOUT');
    // none of them waited on the blocked thread (which is terminated ~4 s after the spin started)
    const lastOther = Math.max(...others.map((r) => Date.parse(r.body.completed_at)));
    expect(lastOther).toBeLessThan(Date.parse(spin.completed_at));
  });

  it('a step that calls process.exit or throws in a callback fails alone: steps sharing its thread complete without a retry', async () => {
    await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'slow-healthy',
      definition: { steps: [{ name: 'wait', type: 'delay', config: { ms: 300 }, retry: { max_retries: 0 } }] },
    });
    // many slow steps in flight, so every thread carries some while the hostile ones run
    const slow = Array.from({ length: 40 }, (_, i) =>
      api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'slow-healthy', input_data: { i }, wait: true, wait_timeout: '20s' }),
    );
    await new Promise((r) => setTimeout(r, 50));
    const hostile = await Promise.all(
      ['exit', 'exit-later', 'throw-in-timer', 'reject-unhandled'].map((mode) =>
        api(t.url, 'POST', '/api/v1/execute', { workflow_id: `hostile-${mode}`, wait: true, wait_timeout: '20s' }),
      ),
    );
    // process.exit in the handler is its own step's failure; the stray ones end their steps at their timeout
    expect(hostile.map((r) => r.body.error.code)).toEqual(['E_PROCESS_EXIT', 'E_STEP_TIMEOUT', 'E_STEP_TIMEOUT', 'E_STEP_TIMEOUT']);
    const done = await Promise.all(slow);
    expect(done.map((r) => r.body.status)).toEqual(Array(40).fill('completed'));
  });
});
