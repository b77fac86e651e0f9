import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { uuidv7 } from 'uuidv7';
import { encode } from '../../dist/runtime/queue/index.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';
import { testSql, waitFor } from '../helpers/env.js';

/**
 * A queued run whose workflow Postgres does not have (a stream shared with a
 * database that was reset, say) is recorded failed, and does not block the
 * runs written after it.
 */
describe('a queued run of a workflow that does not exist', () => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('is recorded failed with E_WORKFLOW_NOT_FOUND and later runs still complete', async () => {
    const nc = await connect({ servers: [...t.config.nats.urls] });
    const runId = uuidv7();
    const missingWorkflow = uuidv7();
    try {
      await nc
        .jetstream()
        .publish(
          `${t.config.nats.subject_prefix}.runs`,
          encode({ run_id: runId, workflow_id: missingWorkflow, input: {}, accepted_at: Date.now() }),
        );
    } finally {
      await nc.close();
    }
    await api(t.url, 'POST', '/api/v1/workflows', {
      name: 'after',
      definition: { steps: [{ name: 'e', type: 'echo', config: { message: 'ok' } }] },
    });
    const sql = testSql(t.config);
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
