import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from 'uuidv7';
import { createLogger } from '../../dist/runtime/observability/index.js';
import {
  JetStreamQueue,
  PostgresQueue,
  type Delivery,
  type Queue,
  type RunMessage,
  type RunResult,
} from '../../dist/runtime/queue/index.js';
import { BatchWriter, type InstanceRow, type Sql } from '../../dist/runtime/store/index.js';
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
  const open = async (name: string, queue = config.queue): Promise<Queue> => {
    const q =
      driver === 'jetstream'
        ? await JetStreamQueue.connect(config.nats, queue, log, name)
        : new PostgresQueue(sql, { queue, pollIntervalMs: 50, owner: `${hostname()}:${process.pid}:${name}`, log });
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

  it('goes on delivering when it was full: more runs than it may hold at once, handled a few at a time', async () => {
    const q = await open('full');
    const runs = Array.from({ length: 25 }, () => msg());
    await Promise.all(runs.map((m) => q.publishRun(m)));
    let active = 0;
    let most = 0;
    const c = await consume(
      q,
      async (d) => {
        most = Math.max(most, ++active);
        await new Promise((r) => setTimeout(r, 30));
        active--;
        d.ack();
      },
      3,
    );
    await waitFor(async () => c.got.length >= runs.length, 10_000, 'every run, three at a time');
    expect(most).toBe(3);
    expect(new Set(c.got.map((d) => d.data.run_id)).size).toBe(runs.length);
    await c.stop();
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

  it('hands back what a stopping consumer holds, counted: a consumer that starts later gets it at once, as delivery 2', async () => {
    // leases far longer than the test: only a hand-back can bring the runs to the next consumer in time
    const slow = { ...config.queue, ack_wait: 60_000 };
    const q = await open('stopping', slow);
    const runs = Array.from({ length: 3 }, () => msg());
    await Promise.all(runs.map((m) => q.publishRun(m)));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = await consume(q, () => held, 1); // one run in flight, the other two waiting here
    await waitFor(async () => first.got.length >= 1, 10_000, 'the first delivery');
    await new Promise((r) => setTimeout(r, 300)); // the other two reach this consumer
    const { handedBack } = await first.stop(200);
    expect(handedBack).toBe(1);
    release();
    // nobody else was consuming while it stopped: the case where a nak'd delivery went uncounted
    const next = await consume(await open('after', slow));
    await waitFor(async () => next.got.length >= runs.length, 15_000, 'every handed-back run on the next consumer');
    expect(next.got.map((d) => d.data.run_id).sort()).toEqual(runs.map((m) => m.run_id).sort());
    const inFlight = first.got[0].data.run_id;
    expect(next.got.find((d) => d.data.run_id === inFlight)?.deliveryCount).toBe(2);
    await next.stop();
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
    await stopDead();
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

  it('broadcasts results to one address, and cancels and registry changes to everyone; a result too large for one message comes partial', async () => {
    const [q1, q2] = [await open('b1'), await open('b2')];
    const address = q1.resultAddress(uuidv7());
    const results: RunResult[] = [];
    const cancels: string[][] = [[], []];
    const changes: string[] = [];
    const subs = [
      q1.onResults(address, (r) => results.push(r)),
      q1.onCancel((id) => cancels[0].push(id)),
      q2.onCancel((id) => cancels[1].push(id)),
      q2.onWorkflowChange((ch) => changes.push(ch.name)),
    ];
    const run = uuidv7();
    const big = uuidv7();
    // broadcasts are at most once and a subscription takes a moment to be in place: send until heard
    await waitFor(
      async () => {
        q2.publishResult(address, { run_id: run, status: 'completed', output: { n: 1 } });
        // over NATS's max_payload (1 MB) and PostgreSQL's NOTIFY limit (8 kB): it must not take the others down with it
        q2.publishResult(address, {
          run_id: big,
          status: 'failed',
          output: 'x'.repeat(1_500_000),
          error: { code: 'E_X', message: 'y'.repeat(20_000) },
        });
        q2.publishCancel(run);
        q1.publishWorkflowChange({ id: uuidv7(), name: 'orders' });
        await new Promise((r) => setTimeout(r, 100));
        return (
          results.some((r) => r.run_id === run) &&
          results.some((r) => r.run_id === big) &&
          cancels[0].length &&
          cancels[1].length &&
          changes.length
        );
      },
      5000,
      'the broadcasts',
    );
    expect(results.find((r) => r.run_id === run)).toEqual({ run_id: run, status: 'completed', output: { n: 1 } });
    expect(results.find((r) => r.run_id === big)).toEqual({ run_id: big, status: 'failed', partial: true });
    expect([...new Set(cancels[0]), ...new Set(cancels[1]), ...new Set(changes)]).toEqual([run, run, 'orders']);
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
      const seen: { dequeue: unknown; queuedAfterWrite: number }[] = [];
      const c = await consume(q, async (d) => {
        await writer.writeRun(finalRow(d), { dequeue: d.dequeue });
        // the row and the queue entry went in one statement: both visible now, before any ack
        const [{ n }] = await sql`SELECT count(*)::int AS n FROM run_queue WHERE run_id = ${d.data.run_id}`;
        seen.push({ dequeue: d.dequeue, queuedAfterWrite: n });
        d.ack({ dequeued: true });
      });
      await waitFor(async () => seen.length >= 1, 5000, 'the delivery');
      expect(seen).toEqual([{ dequeue: { id: expect.stringMatching(/^\d+$/), delivery: 1 }, queuedAfterWrite: 0 }]);
      expect((await sql`SELECT status FROM workflow_instances WHERE id = ${m.run_id}`)[0]?.status).toBe('completed');
      expect(await q.queuedRun(m.run_id)).toBeNull();
      await c.stop();
      await writer.close();
    },
  );

  it.runIf(driver === 'postgres')('fences a stale holder: its delete cannot remove a run another consumer took over', async () => {
    const [qa, qb] = [await open('fa'), await open('fb')];
    const m = msg();
    await qa.publishRun(m);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // at most one run at a time: while it holds this one, a claims nothing (not this run again either)
    const a = await consume(
      qa,
      async (d) => {
        await held;
        d.ack(); // its lease was lost meanwhile: this delete must not take the run from b
      },
      1,
    );
    await waitFor(async () => a.got.length === 1, 5000, 'a to take the run');
    // a stalls past its lease (as if its process froze): the lease ends, b takes the run
    let fromB: Delivery | undefined;
    const b = await consume(qb, (d) => {
      fromB = d;
    });
    await waitFor(
      async () => {
        if (!fromB) await sql`UPDATE run_queue SET available_at = now() - interval '1 second' WHERE run_id = ${m.run_id}`;
        return fromB;
      },
      5000,
      'b to take the run over',
      20,
    );
    const db2 = fromB!;
    expect(db2.deliveryCount).toBe(2);
    release();
    await new Promise((r) => setTimeout(r, 200));
    expect((await sql`SELECT deliveries FROM run_queue WHERE run_id = ${m.run_id}`).map((r) => r.deliveries)).toEqual([2]);
    db2.ack();
    await waitFor(async () => (await sql`SELECT 1 FROM run_queue WHERE run_id = ${m.run_id}`).length === 0, 5000, "b's ack");
    await Promise.all([a.stop(), b.stop()]);
  });

  it.runIf(driver === 'postgres')('does not drive a run twice when it claims again a run it holds (its lease lapsed)', async () => {
    const q = await open('rc');
    const m = msg();
    await q.publishRun(m);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const c = await consume(q, async (d) => {
      await held;
      d.ack();
    });
    await waitFor(async () => c.got.length === 1, 5000, 'the delivery');
    // renewals failed past ack_wait: the lease ended; the poll (50 ms) claims the run again
    await sql`UPDATE run_queue SET available_at = now() - interval '1 second' WHERE run_id = ${m.run_id}`;
    await waitFor(
      async () => (await sql`SELECT deliveries FROM run_queue WHERE run_id = ${m.run_id}`)[0]?.deliveries === 2,
      5000,
      'the claim again',
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(c.got.length).toBe(1); // the same handler goes on: no second one
    release();
    // its ack is fenced by the newer delivery it now holds: the run is gone
    await waitFor(async () => (await sql`SELECT 1 FROM run_queue WHERE run_id = ${m.run_id}`).length === 0, 5000, 'the ack');
    await c.stop();
  });

  it.runIf(driver === 'postgres')('runs no handler after its stop function resolved; runs claimed while stopping go back', async () => {
    const q = await open('st');
    const runs = Array.from({ length: 30 }, () => msg());
    await Promise.all(runs.map((m) => q.publishRun(m)));
    let active = 0;
    let afterStop = 0;
    let stoppedAt = 0;
    const stop = await q.consumeRuns(5, async (d) => {
      if (stoppedAt) afterStop++;
      active++;
      await new Promise((r) => setTimeout(r, 30));
      active--;
      d.ack();
    });
    await new Promise((r) => setTimeout(r, 40)); // some handled, a claim likely in flight
    await stop();
    stoppedAt = Date.now();
    expect(active).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(afterStop).toBe(0);
    // what is left is due now, never delivered
    const left = await sql<{ deliveries: number; due: boolean }[]>`
      SELECT deliveries, available_at <= now() AS due FROM run_queue WHERE run_id IN ${sql(runs.map((r) => r.run_id))}`;
    expect(left.length).toBeGreaterThan(0);
    expect(left.every((r) => r.due && r.deliveries === 0)).toBe(true);
  });

  it.runIf(driver === 'postgres')('holds an idempotency key across processes, once, and lets an expired key name a new run', async () => {
    const [q1, q2] = [await open('k1'), await open('k2')];
    const key = { key: `wf:${uuidv7()}`, ttlMs: 60_000 };
    const [a, b] = [msg(), msg()];
    const both = await Promise.all([q1.publishRun(a, key), q2.publishRun(b, key)]);
    const winner = both[0].duplicate ? b : a;
    expect(both.map((r) => r.duplicate).sort()).toEqual([false, true]);
    expect(both.find((r) => r.duplicate)!.holder).toBe(winner.run_id);
    const short = { key: `wf:${uuidv7()}`, ttlMs: 1 };
    const [c, d] = [msg(), msg()];
    expect(await q1.publishRun(c, short)).toEqual({ duplicate: false });
    await new Promise((r) => setTimeout(r, 20));
    expect(await q2.publishRun(d, short)).toEqual({ duplicate: false });
    const [{ run_id }] = await sql`SELECT run_id::text FROM idempotency_keys WHERE key = ${short.key}`;
    expect(run_id).toBe(d.run_id);
  });
});

/** A final run row for a delivery, as the executor writes it. */
function finalRow(d: Delivery): InstanceRow {
  return {
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
  };
}
