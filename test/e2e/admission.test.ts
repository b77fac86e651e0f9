import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/env.js';
import { testModes } from '../helpers/modes.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

/**
 * Admission control: past what it can hold, execute refuses at once (503 E_OVERLOADED with
 * Retry-After) instead of queueing without bound. An api-only system (no executor) lets the
 * backlog grow on purpose.
 */
describe.each(testModes(['services', 'postgres']))('admission control (%s)', (mode) => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({ role: 'api', mode, set: ['admission.max_queued=5', 'admission.max_waiters=2'] });
    const r = await api(t.url, 'POST', '/api/v1/workflows', { name: 'adm', definition: { steps: [{ name: 'e', type: 'echo' }] } });
    expect(r.status).toBe(201);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('refuses callers that would wait when max_waiters already wait here', async () => {
    const waiting = [0, 1].map(() => api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'adm', wait: true, wait_timeout: '2s' }));
    await new Promise((r) => setTimeout(r, 300));
    const third = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'adm', wait: true, wait_timeout: '2s' });
    expect(third.status).toBe(503);
    expect(third.body.error).toMatchObject({ code: 'E_OVERLOADED', details: { reason: 'waiters' } });
    expect((await Promise.all(waiting)).map((r) => r.status)).toEqual([202, 202]); // timed out waiting: no executor
  });

  it('refuses new runs at once once the backlog is over max_queued, and accepts again when it is not', async () => {
    for (let i = 0; i < 6; i++) expect((await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'adm' })).status).toBe(200);
    const refused = await waitFor(
      async () => {
        const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'adm' });
        return r.status === 503 ? r : null;
      },
      5000,
      'the backlog to be seen',
      100,
    );
    expect(refused.body.error).toMatchObject({ code: 'E_OVERLOADED', details: { reason: 'backlog' } });
    expect(refused.headers.get('retry-after')).toBe('1');
    const t0 = performance.now();
    const again = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'adm' });
    expect(again.status).toBe(503);
    expect(performance.now() - t0).toBeLessThan(1000); // at once, not after a timeout
    const metrics = await api(t.url, 'GET', '/metrics');
    expect(metrics.body).toMatch(/admission_refused_total\{reason="backlog"\} [1-9]/);
  });
});
