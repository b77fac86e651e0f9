import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';
import { waitFor } from '../helpers/env.js';
import { testModes } from '../helpers/modes.js';

describe.each(testModes())('idempotent execute (%s)', (mode) => {
  let t: TestSystem;
  beforeAll(async () => {
    t = await startTestSystem({ mode });
    for (const name of ['idem-a', 'idem-b']) {
      const r = await api(t.url, 'POST', '/api/v1/workflows', {
        name,
        definition: { steps: [{ name: 'e', type: 'echo', config: { message: name } }] },
      });
      expect(r.status).toBe(201);
    }
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('starts one run for a key sent twice (body field or header), and names it both times', async () => {
    const first = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'idem-a', input_data: { n: 1 }, idempotency_key: 'order-42' });
    expect(first.status).toBe(200);
    expect(first.body.deduplicated).toBeUndefined();
    const again = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'idem-a', input_data: { n: 1 }, idempotency_key: 'order-42' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ run_id: first.body.run_id, deduplicated: true });

    const res = await fetch(`${t.url}/api/v1/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'order-42' },
      body: JSON.stringify({ workflow_id: 'idem-a', input_data: { n: 1 } }),
    });
    expect((await res.json()).run_id).toBe(first.body.run_id);

    const other = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'idem-b', idempotency_key: 'order-42' });
    expect(other.body.run_id).not.toBe(first.body.run_id);

    const sql = t.sql();
    try {
      await waitFor(
        async () => (await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE status = 'completed'`)[0].n >= 2,
        10_000,
        'runs to complete',
      );
      const rows = await sql`SELECT workflow_name, count(*)::int AS n FROM workflow_instances GROUP BY 1 ORDER BY 1`;
      expect(rows).toEqual([
        { workflow_name: 'idem-a', n: 1 },
        { workflow_name: 'idem-b', n: 1 },
      ]);
    } finally {
      await sql.end({ timeout: 2 });
    }
  });

  it.runIf(mode === 'services')('still refuses a duplicate JetStream stored moments ago when Redis has lost the key', async () => {
    const first = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'idem-a', idempotency_key: 'lost-in-redis' });
    expect(first.status).toBe(200);
    const redis = new Redis({ host: t.config.redis.host, port: t.config.redis.port, keyPrefix: t.config.redis.key_prefix });
    try {
      expect(await redis.del('idem:idem-a:lost-in-redis')).toBe(1);
    } finally {
      redis.disconnect();
    }
    const again = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'idem-a', idempotency_key: 'lost-in-redis' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('E_IDEMPOTENCY_CONFLICT');
  });

  it.runIf(mode !== 'services')(
    'answers a repeat with the run holding the key from PostgreSQL, whatever this process remembers',
    async () => {
      const first = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'idem-a', idempotency_key: 'durable-key' });
      expect(first.status).toBe(200);
      // another API process (or this one after a restart) knows nothing of the key: only PostgreSQL does
      const sql = t.sql();
      try {
        const [row] = await sql`SELECT run_id::text FROM idempotency_keys WHERE key = 'idem-a:durable-key'`;
        expect(row.run_id).toBe(first.body.run_id);
      } finally {
        await sql.end({ timeout: 2 });
      }
      const again = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'idem-a', idempotency_key: 'durable-key' });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ run_id: first.body.run_id, deduplicated: true });
    },
  );

  it('refuses a key longer than 255 characters', async () => {
    const r = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'idem-a', idempotency_key: 'k'.repeat(256) });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('E_VALIDATION');
  });
});
