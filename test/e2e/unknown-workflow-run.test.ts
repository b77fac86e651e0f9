import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { uuidv7 } from 'uuidv7';
import { encode } from '../../dist/runtime/queue/index.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';
import { waitFor } from '../helpers/env.js';
import { testModes } from '../helpers/modes.js';

/**
 * A queued run whose workflow Postgres does not have (a stream shared with a
 * database that was reset, say) is recorded failed, and does not block the
 * runs written after it.
 */
describe.each(testModes())('a queued run of a workflow that does not exist (%s)', (mode) => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({ mode });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('is recorded failed with E_WORKFLOW_NOT_FOUND and later runs still complete', async () => {
    const runId = uuidv7();
    const missingWorkflow = uuidv7();
    const message = { run_id: runId, workflow_id: missingWorkflow, input: {}, accepted_at: Date.now() };
    if (mode === 'services') {
      const nc = await connect({ servers: [...t.config.nats.urls] });
      try {
        await nc.jetstream().publish(`${t.config.nats.subject_prefix}.runs`, encode(message));
      } finally {
        await nc.close();
      }
    } else {
      // the postgres queue: a row as execute would have stored it
      const q = t.sql();
      try {
        await q`INSERT INTO run_queue (run_id, payload) VALUES (${runId}, ${JSON.stringify(message)})`;
      } finally {
        await q.end({ timeout: 2 });
      }
    }
    await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'after',
      definition: { steps: [{ name: 'e', type: 'echo', config: { message: 'ok' } }] },
    });
    const sql = t.sql();
    try {
      const row = await waitFor(
        async () => (await sql`SELECT status, error_code, error_message, workflow_id FROM workflow_instances WHERE id = ${runId}`)[0],
        10_000,
        'the run to be recorded',
      );
      expect(row).toMatchObject({ status: 'failed', error_code: 'E_WORKFLOW_NOT_FOUND', workflow_id: null });
      expect(row.error_message).toContain(missingWorkflow);
      for (let i = 0; i < 5; i++) {
        const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'after', input_data: { i }, wait: true, wait_timeout: '10s' });
        expect(r.body.status).toBe('completed');
      }
    } finally {
      await sql.end({ timeout: 2 });
    }
  });
});
