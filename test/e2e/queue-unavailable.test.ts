import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { has } from '../helpers/services.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

// A publish JetStream does not store is never answered 200: the caller gets 503 with a code.
describe.runIf(has('postgres', 'nats', 'redis'))('execute when JetStream does not store the run', () => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({ role: 'api', mode: 'services' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('answers 503 E_QUEUE_UNAVAILABLE, and 200 again once the stream is back', async () => {
    const wf = await api(t.url, 'POST', '/api/v1/workflows', { name: 'q', definition: { steps: [{ name: 'e', type: 'echo' }] } });
    expect(wf.status).toBe(201);
    const ok = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'q' });
    expect(ok.status).toBe(200);

    const nc = await connect({ servers: [...t.config.nats.urls] });
    try {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.delete(t.config.nats.stream_name);
      const res = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'q', input_data: { lost: false } });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('E_QUEUE_UNAVAILABLE');
      expect(res.body.error.message).toMatch(/did not accept the run/);
      const list = await api(t.url, 'GET', '/api/v1/executions');
      expect(list.body.executions.map((e: { run_id: string }) => e.run_id)).toEqual([ok.body.run_id]);

      await jsm.streams.add({
        name: t.config.nats.stream_name,
        subjects: [`${t.config.nats.subject_prefix}.runs`],
        retention: 'workqueue' as never,
      });
      const again = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'q' });
      expect(again.status).toBe(200);
    } finally {
      await nc.close();
    }
  });
});
