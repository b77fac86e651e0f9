import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from 'uuidv7';
import { createLogger } from '../../dist/runtime/observability/index.js';
import { JetStreamQueue, PostgresQueue, type Delivery, type Queue, type RunMessage } from '../../dist/runtime/queue/index.js';
import { BatchWriter, type Sql } from '../../dist/runtime/store/index.js';
import { cleanup, testConfig, waitFor } from '../helpers/env.js';
import { testDatabase } from '../helpers/modes.js';
import { has } from '../helpers/services.js';

/**
 * The queue port's contract, the same tests for both adapters against real servers:
 * accepted means stored, at-least-once delivery, leases that end in redelivery and are
 * kept while a run is handled, dead letters after max_deliver, idempotency keys, and the
 * broadcasts (results, cancels, registry changes).
 */
const ACK_WAIT_MS = 800;
const log = createLogger({ level: 'warn', format: 'json', output: 'stderr' });

const msg = (over: Partial<RunMessage> = {}): RunMessage => ({
  run_id: uuidv7(),
  workflow_id: uuidv7(),
  input: { n: 1 },
  accepted_at: Date.now(),
  ...over,
});

const drivers = [...(has('nats') ? (['jetstream'] as const) : []), 'postgres' as const];

describe.each(drivers)('queue contract: %s', (driver) => {
  const { config } = testConfig([`queue.ack_wait=${ACK_WAIT_MS}ms`, 'queue.max_deliver=2']);
  let sql: Sql;
  let db: Awaited<ReturnType<typeof testDatabase>>;
  let queues: Queue[] = [];
  const open = async (name: string): Promise<Queue> => {
    const q =
      driver === 'jetstream'
        ? await JetStreamQueue.connect(config.nats, config.queue, log, name)
        : new PostgresQueue(sql, { queue: config.queue, pollIntervalMs: 50, name, log });
    queues.push(q);
    return q;
  };

  beforeAll(async () => {
    db = await testDatabase(config);
    sql = db.sql;
  });
  afterAll(async () => {
    await Promise.allSettled(queues.map((q) => q.close()));
    queues = [];
    await db?.stop();
    await cleanup(config);
  });

  /** Consumes into a list; `settle` decides what each delivery does. */
  async function consume(q: Queue, settle: (d: Delivery) => Promise<void> | void = (d) => d.ack(), max = 100) {
    const got: Delivery[] = [];
    const stop = await q.consumeRuns(max, async (d) => {
      got.push(d);
      await settle(d);
    });
    return { got, stop };
  }

  it('delivers every stored run once to one of several consumers, and an acked run is gone', async () => {
    const q = await open('c1');
    const runs = Array.from({ length: 40 }, () => msg());
    const results = await Promise.all(runs.map((m) => q.publishRun(m)));
    expect(results.every((r) => !r.duplicate)).toBe(true);
    const a = await consume(q);
    const b = await consume(await open('c2'));
    await waitFor(async () => a.got.length + b.got.length >= runs.length, 10_000, 'every run delivered');
    await new Promise((r) => setTimeout(r, ACK_WAIT_MS * 2)); // nothing comes back after the lease
    const ids = [...a.got, ...b.got].map((d) => d.data.run_id);
    expect(ids.sort()).toEqual(runs.map((m) => m.run_id).sort());
    expect([...a.got, ...b.got].every((d) => d.deliveryCount === 1)).toBe(true);
    expect(a.got.find((d) => d.data.run_id === runs[0].run_id)?.data ?? b.got.find((d) => d.data.run_id === runs[0].run_id)?.data).toEqual(
      runs[0],
    );
    await Promise.all([a.stop(), b.stop()]);
    await waitFor(async () => (await q.consumerPending()).ackPending === 0, 5000, 'acks to land');
    expect(await q.consumerPending()).toEqual({ pending: 0, ackPending: 0 });
  });

  it('delivers a run again when its handler ends without an ack (the lease runs out)', async () => {
    const q = await open('c3');
    const m = msg();
    await q.publishRun(m);
    let first = true;
    const c = await consume(q, (d) => {
      if (first)
        first = false; // dropped: as if the executor died
      else d.ack();
    });
    await waitFor(async () => c.got.length >= 2, ACK_WAIT_MS * 6, 'the redelivery');
    expect(c.got.map((d) => [d.data.run_id, d.deliveryCount])).toEqual([
      [m.run_id, 1],
      [m.run_id, 2],
    ]);
    await c.stop();
  });

  it('keeps the lease of a run being handled for longer than ack_wait: no other consumer gets it', async () => {
    const q = await open('c4');
    const other = await consume(await open('c5'));
    const m = msg();
    await q.publishRun(m);
    const slow = await consume(q, async (d) => {
      if (d.data.run_id !== m.run_id) return d.ack(); // a run of another test: not this one's business
      const t = setInterval(() => d.working(), ACK_WAIT_MS / 3);
      await new Promise((r) => setTimeout(r, ACK_WAIT_MS * 3));
      clearInterval(t);
      d.ack();
    });
    await waitFor(async () => slow.got.length + other.got.length >= 1, 5000, 'the delivery');
    await new Promise((r) => setTimeout(r, ACK_WAIT_MS * 3.5));
    const all = [...slow.got, ...other.got].filter((d) => d.data.run_id === m.run_id);
    expect(all.length).toBe(1);
    await Promise.all([slow.stop(), other.stop()]);
  });

  it('hands a run delivered max_deliver times without an ack to the dead-letter handler, then removes it', async () => {
    const q = await open('c6');
    const dead: [string, number][] = [];
    const stopDead = q.onDeadLetter(async (run, deliveries) => {
      dead.push([run.run_id, deliveries]);
    });
    const m = msg();
    await q.publishRun(m);
    const c = await consume(q, () => {}); // never acked
    await waitFor(async () => dead.length >= 1, ACK_WAIT_MS * 10, 'the dead letter');
    expect(dead).toEqual([[m.run_id, 2]]);
    expect(c.got.map((d) => d.deliveryCount)).toEqual([1, 2]);
    await waitFor(
      async () => (await q.consumerPending()).pending + (await q.consumerPending()).ackPending === 0,
      5000,
      'the run to be removed',
    );
    stopDead();
    await c.stop();
  });

  it('stores a run once per idempotency key', async () => {
    const q = await open('c7');
    const key = { key: `wf:${uuidv7()}`, ttlMs: 60_000 };
    const [a, b] = [msg(), msg()];
    const first = await q.publishRun(a, key);
    const again = await q.publishRun(b, key);
    expect(first.duplicate).toBe(false);
    expect(again.duplicate).toBe(true);
    // the postgres queue knows which run holds the key; JetStream only that one does
    if (driver === 'postgres') expect(again.holder).toBe(a.run_id);
    // the same key twice in one group commit, and another key beside them
    const [c, d, e] = [msg(), msg(), msg()];
    const k2 = { key: `wf:${uuidv7()}`, ttlMs: 60_000 };
    const same = await Promise.all([q.publishRun(c, k2), q.publishRun(d, k2), q.publishRun(e)]);
    expect(same.map((r) => r.duplicate)).toEqual([false, true, false]);
    if (driver === 'postgres') expect(same[1].holder).toBe(c.run_id);
    const got = await consume(q);
    await waitFor(async () => got.got.length >= 3, 5000, 'the stored runs');
    await new Promise((r) => setTimeout(r, 300));
    expect(got.got.map((x) => x.data.run_id).sort()).toEqual([a.run_id, c.run_id, e.run_id].sort());
    await got.stop();
  });

  it('broadcasts results to one address, and cancels and registry changes to everyone', async () => {
    const [q1, q2] = [await open('b1'), await open('b2')];
    const address = q1.resultAddress(uuidv7());
    const results: string[] = [];
    const cancels: string[][] = [[], []];
    const changes: string[] = [];
    const subs = [
      q1.onResults(address, (r) => results.push(r.run_id)),
      q1.onCancel((id) => cancels[0].push(id)),
      q2.onCancel((id) => cancels[1].push(id)),
      q2.onWorkflowChange((ch) => changes.push(ch.name)),
    ];
    await new Promise((r) => setTimeout(r, 300)); // the subscriptions are in place
    const run = uuidv7();
    q2.publishResult(address, { run_id: run, status: 'completed', output: { big: 'x'.repeat(10_000) } });
    q2.publishCancel(run);
    q1.publishWorkflowChange({ id: uuidv7(), name: 'orders' });
    await waitFor(async () => results.length && cancels[0].length && cancels[1].length && changes.length, 5000, 'the broadcasts');
    expect([results, cancels, changes]).toEqual([[run], [[run], [run]], ['orders']]);
    subs.forEach((u) => u());
  });

  it.runIf(driver === 'postgres')(
    'takes a run off the queue in the statement that commits its final row, and can look up a queued run',
    async () => {
      const q = await open('c8');
      const m = msg();
      await q.publishRun(m);
      expect((await q.queuedRun(m.run_id))?.msg).toEqual(m);
      const writer = new BatchWriter(sql, { batchSize: 10, flushIntervalMs: 1, shards: 1 }, log);
      const c = await consume(q, async (d) => {
        expect(d.dequeueId).toMatch(/^\d+$/);
        await writer.writeRun(
          {
            id: d.data.run_id,
            workflow_id: null,
            workflow_name: 'w',
            workflow_version: '1',
            status: 'completed',
            input_data: d.data.input,
            output_data: null,
            error_message: null,
            error_code: null,
            started_at: new Date(),
            completed_at: new Date(),
            accepted_at: new Date(d.data.accepted_at),
            deliveries: d.deliveryCount,
            executor_host: 'test',
          },
          { dequeue: d.dequeueId },
        );
        // the row and the queue entry went in one statement: both visible now, before any ack
        const [{ n }] = await sql`SELECT count(*)::int AS n FROM run_queue WHERE run_id = ${d.data.run_id}`;
        expect(n).toBe(0);
        d.ack({ dequeued: true });
      });
      await waitFor(async () => c.got.length >= 1, 5000, 'the delivery');
      await waitFor(
        async () => (await sql`SELECT status FROM workflow_instances WHERE id = ${m.run_id}`)[0]?.status === 'completed',
        5000,
        'the row',
      );
      expect(await q.queuedRun(m.run_id)).toBeNull();
      await c.stop();
      await writer.close();
    },
  );
});
