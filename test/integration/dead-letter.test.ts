import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import { uuidv7 } from 'uuidv7';
import { encode } from '../../dist/runtime/queue/index.js';
import { startTestSystem, type TestSystem } from '../helpers/system.js';
import { waitFor } from '../helpers/env.js';
import { testModes } from '../helpers/modes.js';
import { has } from '../helpers/services.js';

/**
 * A run whose executors keep dying uses up queue.max_deliver; the engine role
 * records it failed (E_MAX_DELIVERIES) and removes its message. Here the test
 * itself plays the dying executor: it pulls the run from the shared consumer
 * and never acks it.
 */
// JetStream's max-deliveries advisory end to end (the queue contract covers both queues' dead letters)
describe.runIf(has('postgres', 'nats', 'redis'))('engine: dead letters', () => {
  let t: TestSystem;
  let nc: NatsConnection;
  beforeAll(async () => {
    t = await startTestSystem({ role: 'engine', mode: 'services', set: ['queue.ack_wait=500ms', 'queue.max_deliver=2'] });
    nc = await connect({ servers: [...t.config.nats.urls] });
  });
  afterAll(async () => {
    await nc?.close();
    await t?.stop();
  });

  it('marks a run that exhausted its deliveries failed and removes its message', async () => {
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const runId = uuidv7();
    const sql = t.sql();
    try {
      const [wf] =
        await sql`INSERT INTO workflows (id, name, definition, version) VALUES (${uuidv7()}, 'dl', ${sql.json({ steps: [] })}, '1') RETURNING id::text`;
      await js.publish(
        `${t.config.nats.subject_prefix}.runs`,
        encode({ run_id: runId, workflow_id: wf.id, input: { a: 1 }, accepted_at: Date.now() }),
      );
      const consumer = await js.consumers.get(t.config.nats.stream_name, t.config.nats.consumer_name);
      for (let i = 0; i < 2; i++) {
        const m = await consumer.next({ expires: 5000 });
        expect(m).not.toBeNull(); // delivered, and dropped on the floor
        await new Promise((r) => setTimeout(r, 700));
      }
      // the server gives up (and advises) when the next pull would be the third delivery
      expect(await consumer.next({ expires: 2000 })).toBeNull();
      const row = await waitFor(
        async () => {
          const [r] = await sql`SELECT status, error_code, deliveries, input_data FROM workflow_instances WHERE id = ${runId}`;
          return r;
        },
        10_000,
        'the engine to record the dead letter',
      );
      expect(row).toMatchObject({ status: 'failed', error_code: 'E_MAX_DELIVERIES', deliveries: 2, input_data: { a: 1 } });
      const info = await waitFor(
        async () => {
          const s = await jsm.streams.info(t.config.nats.stream_name);
          return s.state.messages === 0 ? s : null;
        },
        5000,
        'the message to be removed',
      );
      expect(info.state.messages).toBe(0);
    } finally {
      await sql.end({ timeout: 2 });
    }
  });
});

// The same through the postgres queue: a run at max_deliver whose lease ended is recorded failed and removed
describe.each(testModes(['postgres', 'embedded']))('engine: dead letters of the postgres queue (%s)', (mode) => {
  let t: TestSystem;
  beforeAll(async () => {
    // the embedded database is one process's: there every role runs in it
    t = await startTestSystem({ role: mode === 'embedded' ? 'all' : 'engine', mode, set: ['queue.ack_wait=500ms', 'queue.max_deliver=2'] });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('records a run that used up its deliveries failed, in the statement that removes it from the queue', async () => {
    const sql = t.sql();
    try {
      const runId = uuidv7();
      const [wf] =
        await sql`INSERT INTO workflows (id, name, definition, version) VALUES (${uuidv7()}, 'dl', ${sql.json({ steps: [] })}, '1') RETURNING id::text`;
      const message = { run_id: runId, workflow_id: wf.id, input: { a: 1 }, accepted_at: Date.now() };
      // delivered twice, its last lease over: as the executors that kept dying left it
      await sql`INSERT INTO run_queue (run_id, payload, deliveries, available_at, leased_by)
                VALUES (${runId}, ${JSON.stringify(message)}, 2, now() - interval '1 second', 'gone:1:x')`;
      const row = await waitFor(
        async () => (await sql`SELECT status, error_code, deliveries, input_data FROM workflow_instances WHERE id = ${runId}`)[0],
        10_000,
        'the engine to record the dead letter',
      );
      expect(row).toMatchObject({ status: 'failed', error_code: 'E_MAX_DELIVERIES', deliveries: 2, input_data: { a: 1 } });
      expect(await sql`SELECT 1 FROM run_queue WHERE run_id = ${runId}`).toHaveLength(0);
    } finally {
      await sql.end({ timeout: 2 });
    }
  });
});
