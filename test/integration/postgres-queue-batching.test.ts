import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from 'uuidv7';
import { createLogger } from '../../dist/runtime/observability/index.js';
import { PostgresQueue, type RunMessage } from '../../dist/runtime/queue/index.js';
import type { Sql } from '../../dist/runtime/store/index.js';
import { cleanup, testConfig, waitFor } from '../helpers/env.js';
import { testDatabase } from '../helpers/modes.js';

/**
 * Statements per run of the postgres queue under a steady flow, against a real PostgreSQL:
 * publishes of a tick share one INSERT (one commit, one NOTIFY wf_runs) while the rate makes
 * the tick carry several, and go at once at a low rate; a run's end claims again only when the
 * consumer was full. The statements are counted by a proxy around the real client.
 */
const log = createLogger({ level: 'warn', format: 'json', output: 'stderr' });
const msg = (): RunMessage => ({ run_id: uuidv7(), workflow_id: uuidv7(), input: { n: 1 }, accepted_at: Date.now() });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('postgres queue: statements per run', () => {
  const { config } = testConfig(['queue.publish_linger=5ms']);
  let db: Awaited<ReturnType<typeof testDatabase>>;
  const counts = { insert: 0, claim: 0 };
  let counted: Sql;
  const queues: PostgresQueue[] = [];

  beforeAll(async () => {
    db = await testDatabase(config);
    // every tagged-template call is one statement; its first text part says which
    counted = new Proxy(db.sql, {
      apply(target, self, args: [TemplateStringsArray, ...unknown[]]) {
        const head = args[0]?.[0] ?? '';
        if (head.includes('INSERT INTO run_queue')) counts.insert++;
        if (head.includes('SET deliveries = q.deliveries + 1')) counts.claim++;
        return Reflect.apply(target, self, args);
      },
    });
  });
  afterAll(async () => {
    await Promise.allSettled(queues.map((q) => q.close()));
    await db?.stop();
    await cleanup(config);
  });

  const open = (name: string, pollIntervalMs: number) => {
    const q = new PostgresQueue(counted, { queue: config.queue, pollIntervalMs, owner: `${hostname()}:${process.pid}:${name}`, log });
    queues.push(q);
    return q;
  };

  it('fuses the publishes of a tick into one insert at ~1/ms, each still stored and delivered once', async () => {
    const q = open('fast', 60_000); // no poll within the test: deliveries come from notifications
    const got = new Map<string, number>();
    const stop = await q.consumeRuns(100, async (d) => {
      got.set(d.data.run_id, (got.get(d.data.run_id) ?? 0) + 1);
      await sleep(1 + (got.size % 5)); // short runs that end one by one, while others arrive
      d.ack();
    });
    const sent: Promise<unknown>[] = [];
    const ids: string[] = [];
    // the first 300 ms measure the rate (no tick yet); the next 700 ms are counted
    const t0 = performance.now();
    let before = -1;
    while (performance.now() - t0 < 1000) {
      if (before < 0 && performance.now() - t0 >= 300) {
        before = ids.length;
        counts.insert = 0;
        counts.claim = 0;
      }
      const m = msg();
      ids.push(m.run_id);
      sent.push(q.publishRun(m));
      await sleep(1);
    }
    const publishes = ids.length - before;
    const results = await Promise.all(sent);
    expect(results.every((r) => !(r as { duplicate: boolean }).duplicate)).toBe(true);
    await waitFor(async () => got.size >= ids.length, 10_000, 'every run delivered');
    const inserts = counts.insert;
    const claims = counts.claim;
    await stop();
    expect([...got.values()].every((n) => n === 1)).toBe(true);
    expect(inserts).toBeLessThan(publishes / 2);
    // a claim per notification, not one more per run that ended
    expect(claims).toBeLessThan(publishes / 2);
    const [{ left }] = await db.sql<{ left: number }[]>`SELECT count(*)::int AS left FROM run_queue WHERE run_id = ANY(${ids}::uuid[])`;
    expect(left).toBe(0);
  });

  it('inserts a publish at once at a low rate', async () => {
    const q = open('slow', 60_000);
    counts.insert = 0;
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) {
      await sleep(20); // 50/s: a 5 ms tick would carry a quarter of a publish
      const m = msg();
      ids.push(m.run_id);
      await q.publishRun(m);
    }
    expect(counts.insert).toBe(15);
    // stored when accepted; removed here, so the next test's consumer sees only its own
    const gone = await db.sql`DELETE FROM run_queue WHERE run_id = ANY(${ids}::uuid[]) RETURNING 1`;
    expect(gone.length).toBe(15);
  });

  it('claims again when a run ends while the consumer is full', async () => {
    const q = open('full', 60_000); // no poll: only a run's end can bring the rest
    const runs = Array.from({ length: 12 }, msg);
    await Promise.all(runs.map((m) => q.publishRun(m)));
    const got: string[] = [];
    const stop = await q.consumeRuns(2, async (d) => {
      got.push(d.data.run_id);
      await sleep(10);
      d.ack();
    });
    await waitFor(async () => got.length >= runs.length, 10_000, 'every run, two at a time');
    await stop();
    expect(got.sort()).toEqual(runs.map((m) => m.run_id).sort());
  });
});
