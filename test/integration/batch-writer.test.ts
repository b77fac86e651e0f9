import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from 'uuidv7';
import { createLogger } from '../../dist/runtime/observability/index.js';
import { BatchWriter, WorkflowRecords, type InstanceRow, type Sql, type StepRow } from '../../dist/runtime/store/index.js';
import { cleanup, testConfig } from '../helpers/env.js';
import { testDatabase } from '../helpers/modes.js';

const { config } = testConfig();
const log = createLogger({ level: 'silent', format: 'json', output: 'stdout' });
let sql: Sql;
let workflowId: string;

function run(id: string, over: Partial<InstanceRow> = {}): InstanceRow {
  return {
    id,
    workflow_id: workflowId,
    workflow_name: 'w',
    workflow_version: '1',
    status: 'running',
    input_data: { a: 1 },
    output_data: null,
    error_message: null,
    error_code: null,
    started_at: new Date(),
    completed_at: null,
    accepted_at: new Date(),
    deliveries: 1,
    executor_host: 'test',
    ...over,
  };
}
function step(runId: string, name: string, over: Partial<StepRow> = {}): StepRow {
  return {
    instance_id: runId,
    step_name: name,
    step_index: 0,
    step_type: 'echo',
    status: 'running',
    input_data: null,
    output_data: null,
    error_message: null,
    error_code: null,
    retry_count: 0,
    started_at: new Date(),
    completed_at: null,
    logs: null,
    ...over,
  };
}

describe('BatchWriter against Postgres', () => {
  let db: Awaited<ReturnType<typeof testDatabase>>;
  beforeAll(async () => {
    db = await testDatabase(config);
    sql = db.sql;
    workflowId = uuidv7();
    await new WorkflowRecords(sql).insert({
      id: workflowId,
      name: 'w',
      description: null,
      definition: { steps: [] },
      version: '1',
      created_by: null,
    });
  });
  afterAll(async () => {
    await db?.stop();
    await cleanup(config);
  });

  it('writes many runs and steps in few multi-row flushes, preserving JSON payloads', async () => {
    const w = new BatchWriter(sql, { batchSize: 500, flushIntervalMs: 5, shards: 2 }, log);
    const ids = Array.from({ length: 1200 }, () => uuidv7());
    await Promise.all(
      ids.flatMap((id, i) => [
        w.writeRun(run(id, { status: 'completed', output_data: { i, nested: { s: 'x' } }, completed_at: new Date() })),
        w.writeStep(step(id, 'only', { status: 'completed', output_data: [i, 'two', null] })),
      ]),
    );
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflow_instances WHERE id IN ${sql(ids)} AND status = 'completed'`;
    expect(n).toBe(1200);
    const [row] = await sql`SELECT output_data FROM workflow_instances WHERE id = ${ids[7]}`;
    expect(row.output_data).toEqual({ i: 7, nested: { s: 'x' } });
    const [srow] = await sql`SELECT output_data FROM workflow_steps WHERE instance_id = ${ids[9]}`;
    expect(srow.output_data).toEqual([9, 'two', null]);
    await w.close();
  });

  it('holds rows that arrive during a flush for the rest of their interval: one statement per interval at a steady rate', async () => {
    const sizes: number[] = [];
    const observer = {
      batchSize: { observe: (n: number) => sizes.push(n) },
      flushDuration: { observe: () => {} },
      flushErrors: { inc: () => {} },
    } as unknown as ConstructorParameters<typeof BatchWriter>[3];
    const w = new BatchWriter(sql, { batchSize: 500, flushIntervalMs: 60, shards: 1 }, log, observer);
    const writes: Promise<unknown>[] = [];
    const t0 = performance.now();
    // a run (and its step) about every millisecond for 300 ms: several arrive during each flush
    while (performance.now() - t0 < 300) {
      const id = uuidv7();
      writes.push(w.writeRun(run(id, { status: 'completed', completed_at: new Date() })), w.writeStep(step(id, 'only')));
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(writes);
    const elapsed = performance.now() - t0;
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(writes.length);
    // flushing what arrived during the last flush at once would about double the statements
    expect(sizes.length).toBeLessThanOrEqual(Math.ceil(elapsed / 60) + 1);
    await w.close();
  });

  it('close does not wait out a long interval: what is pending is written at once', async () => {
    const w = new BatchWriter(sql, { batchSize: 500, flushIntervalMs: 60_000, shards: 1 }, log);
    const first = uuidv7();
    await Promise.race([w.writeRun(run(first)), new Promise((r) => setTimeout(r, 50))]); // still pending
    const id = uuidv7();
    const pending = w.writeRun(run(id, { status: 'completed', completed_at: new Date() }));
    await w.close();
    await pending;
    const [r] = await sql`SELECT status FROM workflow_instances WHERE id = ${id}`;
    expect(r?.status).toBe('completed');
  });

  it('keeps the latest state when the same run or step is written twice before a flush', async () => {
    const w = new BatchWriter(sql, { batchSize: 500, flushIntervalMs: 20, shards: 1 }, log);
    const id = uuidv7();
    const p1 = w.writeRun(run(id));
    const p2 = w.writeStep(step(id, 's', { status: 'running' }));
    const p3 = w.writeStep(step(id, 's', { status: 'completed', output_data: { done: true }, retry_count: 2 }));
    const p4 = w.writeRun(run(id, { status: 'completed', output_data: 42 }));
    await Promise.all([p1, p2, p3, p4]);
    const [r] = await sql`SELECT status, output_data FROM workflow_instances WHERE id = ${id}`;
    expect(r).toEqual({ status: 'completed', output_data: 42 });
    const steps = await sql`SELECT status, retry_count, output_data FROM workflow_steps WHERE instance_id = ${id}`;
    expect(steps).toEqual([{ status: 'completed', retry_count: 2, output_data: { done: true } }]);
    await w.close();
  });

  it('never overwrites a final run or a completed step with a later write', async () => {
    const w = new BatchWriter(sql, { batchSize: 500, flushIntervalMs: 1, shards: 1 }, log);
    const id = uuidv7();
    await w.writeRun(run(id, { status: 'completed', output_data: 'first' }));
    await w.writeStep(step(id, 's', { status: 'completed', output_data: 'first' }));
    await w.writeRun(run(id, { status: 'running' }));
    await w.writeStep(step(id, 's', { status: 'running' }));
    const [r] = await sql`SELECT status, output_data FROM workflow_instances WHERE id = ${id}`;
    expect(r).toEqual({ status: 'completed', output_data: 'first' });
    const [s] = await sql`SELECT status, output_data FROM workflow_steps WHERE instance_id = ${id}`;
    expect(s).toEqual({ status: 'completed', output_data: 'first' });
    await w.close();
  });

  it('stores a row Postgres refuses without its payload, and still writes the rest of the batch', async () => {
    const w = new BatchWriter(sql, { batchSize: 500, flushIntervalMs: 10, shards: 1 }, log);
    const good = uuidv7();
    const bad = uuidv7();
    const surrogate = uuidv7();
    await Promise.all([
      w.writeRun(run(good, { status: 'completed', output_data: { ok: true } })),
      w.writeRun(run(bad, { status: 'completed', output_data: { text: 'nul \u0000 inside' } })),
      // half of a surrogate pair: JSON.stringify writes "\ud83d", which PostgreSQL's JSON refuses
      w.writeRun(run(surrogate, { status: 'completed', output_data: { emoji: '\ud83d cut in half' } })),
    ]);
    const rows =
      await sql`SELECT id::text, status, error_code, error_message, output_data FROM workflow_instances WHERE id IN ${sql([good, bad, surrogate])} ORDER BY id`;
    const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
    expect(byId[good]).toMatchObject({ status: 'completed', output_data: { ok: true } });
    expect(byId[bad]).toMatchObject({ status: 'failed', error_code: 'E_STORE_REJECTED', output_data: null });
    expect(byId[surrogate]).toMatchObject({ status: 'failed', error_code: 'E_STORE_REJECTED', output_data: null });
    expect(byId[surrogate].error_message).toMatch(/lone UTF-16 surrogate/);
    await w.close();
  });

  it('records an error whose text holds a NUL or half a surrogate pair, with U+FFFD in their place, in one batch with the rest', async () => {
    const w = new BatchWriter(sql, { batchSize: 500, flushIntervalMs: 10, shards: 1 }, log);
    const good = uuidv7();
    const bad = uuidv7();
    // an HTTP step's message cut at 200 UTF-16 units can end inside an emoji; a binary body can hold a NUL
    const message = 'HTTP 500: \ud83d';
    const [same, stored] = await Promise.all([
      w.writeRun(run(good, { status: 'completed', output_data: { ok: true } })),
      w.writeRun(run(bad, { status: 'failed', error_code: 'E_HTTP\u0000', error_message: message })),
      w.writeStep(step(bad, 's1', { status: 'failed', error_message: message, error_stack: 'at x \udc00 \u0000', error_code: 'E_HTTP' })),
    ]);
    // the writer answers with what it stored (nothing: stored as given)
    expect(same).toBeUndefined();
    expect(stored).toMatchObject({ error_code: 'E_HTTP\ufffd', error_message: 'HTTP 500: \ufffd' });
    const [r] = await sql`SELECT status, error_code, error_message FROM workflow_instances WHERE id = ${bad}`;
    expect(r).toEqual({ status: 'failed', error_code: 'E_HTTP\ufffd', error_message: 'HTTP 500: \ufffd' });
    const [st] = await sql`SELECT status, error_message, error_stack FROM workflow_steps WHERE instance_id = ${bad}`;
    expect(st).toEqual({ status: 'failed', error_message: 'HTTP 500: \ufffd', error_stack: 'at x \ufffd \ufffd' });
    // codes and hosts are cut to their columns; a pair the cut splits is replaced too
    const long = uuidv7();
    const code = 'E'.repeat(63) + '\ud83d\ude00' + 'tail';
    const host = 'h'.repeat(300);
    const cutRow = await w.writeRun(run(long, { status: 'failed', error_code: code, error_message: 'm', executor_host: host }));
    expect(cutRow).toMatchObject({ error_code: 'E'.repeat(63) + '\ufffd', executor_host: 'h'.repeat(255) });
    const [c] = await sql`SELECT error_code, executor_host FROM workflow_instances WHERE id = ${long}`;
    expect(c).toEqual({ error_code: 'E'.repeat(63) + '\ufffd', executor_host: 'h'.repeat(255) });
    // a whole surrogate pair is text like any other
    const emoji = uuidv7();
    await w.writeRun(run(emoji, { status: 'failed', error_code: 'E', error_message: 'ok \ud83d\ude00' }));
    expect((await sql`SELECT error_message FROM workflow_instances WHERE id = ${emoji}`)[0].error_message).toBe('ok \ud83d\ude00');
    const [g] = await sql`SELECT status FROM workflow_instances WHERE id = ${good}`;
    expect(g.status).toBe('completed');
    await w.close();
  });

  it('stores a step whose output or logs hold a BigInt without its payloads, and does not hold up the shard', async () => {
    const w = new BatchWriter(sql, { batchSize: 500, flushIntervalMs: 10, shards: 1 }, log);
    const id = uuidv7();
    const after = uuidv7();
    // a worker's int64 comes back from msgpack as a BigInt: JSON.stringify throws on it
    const [stored] = await Promise.all([
      w.writeStep(step(id, 'big', { status: 'completed', output_data: { n: 10n }, logs: [{ n: 1n }] })),
      w.writeRun(run(id, { status: 'completed' })),
    ]);
    expect(stored).toMatchObject({ output_data: null, logs: null, error_code: 'E_STORE_REJECTED' });
    expect(stored?.error_message).toMatch(/BigInt/);
    await w.writeRun(run(after, { status: 'completed' }));
    const rows = await sql`SELECT id::text, status FROM workflow_instances WHERE id IN ${sql([id, after])}`;
    expect(rows).toHaveLength(2);
    const [st] = await sql`SELECT status, error_code, output_data FROM workflow_steps WHERE instance_id = ${id}`;
    expect(st).toEqual({ status: 'completed', error_code: 'E_STORE_REJECTED', output_data: null });
    await w.close();
  });

  it('when PostgreSQL refuses one run of a batch, writes the runs one by one, each with its queue row, and stores the bad one bare', async () => {
    const w = new BatchWriter(sql, { batchSize: 500, flushIntervalMs: 10, shards: 1 }, log);
    const good = uuidv7();
    const bad = uuidv7();
    const queued = await sql<{ id: string; run_id: string }[]>`
      INSERT INTO run_queue (run_id, payload, deliveries)
      SELECT * FROM unnest(${[good, bad]}::uuid[], ${['{}', '{}']}::text[], ${[1, 1]}::int[])
      RETURNING id::text, run_id::text`;
    const entry = (runId: string) => ({ id: queued.find((q) => q.run_id === runId)!.id, delivery: 1 });
    // a workflow that does not exist: the foreign key fails the batch statement (23503), so each run goes alone
    const [stored] = await Promise.all([
      w.writeRun(run(bad, { status: 'completed', workflow_id: uuidv7() }), { dequeue: entry(bad) }),
      w.writeRun(run(good, { status: 'completed' }), { dequeue: entry(good) }),
    ]);
    expect(stored).toMatchObject({ status: 'failed', workflow_id: null, error_code: 'E_STORE_REJECTED' });
    const rows = await sql`SELECT id::text, status, workflow_id FROM workflow_instances WHERE id IN ${sql([good, bad])}`;
    expect(Object.fromEntries(rows.map((r) => [r.id, r.status]))).toEqual({ [good]: 'completed', [bad]: 'failed' });
    // both left the queue with their own rows
    expect(await sql`SELECT 1 FROM run_queue WHERE run_id IN ${sql([good, bad])}`).toHaveLength(0);
    await w.close();
  });

  it('does not remove a queue row of a later delivery (another executor took the run over)', async () => {
    const w = new BatchWriter(sql, { batchSize: 500, flushIntervalMs: 1, shards: 1 }, log);
    const id = uuidv7();
    const [q] = await sql<{ id: string }[]>`INSERT INTO run_queue (run_id, payload, deliveries) VALUES (${id}, '{}', 2) RETURNING id::text`;
    await w.writeRun(run(id, { status: 'completed' }), { dequeue: { id: q.id, delivery: 1 } });
    expect(await sql`SELECT deliveries FROM run_queue WHERE id = ${q.id}`).toEqual([{ deliveries: 2 }]);
    await w.close();
  });
});
