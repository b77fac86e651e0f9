import type { Config } from '../config/index.js';
import { RuntimeError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import type { Sql } from '../store/index.js';
import type { RunMessage, RunResult, WorkflowChange } from './codec.js';
import type { Delivery, IdempotencyClaim, PublishResult, Queue, Unsubscribe } from './port.js';

export interface PostgresQueueOptions {
  queue: Config['queue'];
  /** how often an idle consumer looks for runs a notification missed and leases that ended */
  pollIntervalMs: number;
  /** this process, recorded on the runs it leases */
  name: string;
  log: Logger;
}

interface PendingPublish {
  msg: RunMessage;
  idempotency?: IdempotencyClaim;
  resolve: (r: PublishResult) => void;
  reject: (e: Error) => void;
}

/** Runs claimed per statement. */
const CLAIM_BATCH = 100;
/** Runs inserted per statement (the rest wait for the next one, a moment later). */
const PUBLISH_BATCH = 1000;
/** A NOTIFY payload must stay under 8000 bytes: a larger result goes without its output (the waiter reads it from the record). */
const MAX_NOTIFY_BYTES = 7000;

const CHANNEL = { cancel: 'wf_cancels', workflows: 'wf_workflows' };

/**
 * The run queue in PostgreSQL (`queue.driver: postgres`): one database and no NATS, for the
 * embedded mode and small installs. The contract is JetStream's (queue/port.ts):
 *
 * - **Accepted means stored.** Runs published in one turn of the event loop are inserted in
 *   one statement (a group commit); each caller resolves when it has committed. A statement
 *   trigger NOTIFYs `wf_runs`, which wakes every consumer.
 * - **Leases.** A consumer claims runs with `FOR UPDATE SKIP LOCKED` in batches; a claim
 *   counts a delivery and leases the run for `queue.ack_wait`. While a run is being handled
 *   the consumer renews the leases of all its runs in one statement every ack_wait / 3; a
 *   consumer that dies stops renewing and its runs are claimed again when the lease ends.
 * - **Ack** deletes the row; the executor does it in the statement that commits the run's
 *   final rows (`dequeueId`), so the record and the ack are one atomic step.
 * - **Dead letters.** A run delivered `queue.max_deliver` times whose lease ended is handed to
 *   the dead-letter handler (engine role), then deleted.
 * - **Idempotency keys** are stored with the run in the same statement (`idempotency_keys`),
 *   so a repeat is refused with the run that holds the key, durably.
 * - Results, cancels and registry changes are NOTIFY broadcasts (at most once, like core NATS).
 */
export class PostgresQueue implements Queue {
  private pending: PendingPublish[] = [];
  private flushScheduled = false;
  private publishing = 0;
  private notifies: { channel: string; payload: string }[] = [];
  private notifyScheduled = false;
  private readonly listeners: Promise<{ unlisten: () => Promise<void> }>[] = [];
  private closed = false;

  constructor(
    private readonly sql: Sql,
    private readonly o: PostgresQueueOptions,
  ) {}

  private get leaseMs(): number {
    return this.o.queue.ack_wait;
  }

  publishRun(msg: RunMessage, idempotency?: IdempotencyClaim): Promise<PublishResult> {
    if (this.closed) return Promise.reject(new RuntimeError('E_QUEUE_UNAVAILABLE', 'the queue is closing'));
    if (this.pending.length + this.publishing >= this.o.queue.max_pending_publishes) {
      return Promise.reject(new RuntimeError('E_QUEUE_UNAVAILABLE', 'too many runs waiting to be stored; retry shortly'));
    }
    return new Promise<PublishResult>((resolve, reject) => {
      this.pending.push({ msg, idempotency, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    while (this.pending.length) {
      const batch = this.pending.splice(0, PUBLISH_BATCH);
      this.publishing += batch.length;
      try {
        await this.insert(batch);
      } catch (err) {
        const e = new RuntimeError('E_QUEUE_UNAVAILABLE', `the run queue did not store the run: ${(err as Error).message}`);
        for (const p of batch) p.reject(e);
      } finally {
        this.publishing -= batch.length;
      }
    }
  }

  private async insert(batch: PendingPublish[]): Promise<void> {
    const plain = batch.filter((p) => !p.idempotency);
    const keyed = batch.filter((p) => p.idempotency);
    await Promise.all([
      plain.length
        ? this.sql`
            INSERT INTO run_queue (run_id, payload)
            SELECT * FROM unnest(${plain.map((p) => p.msg.run_id)}::uuid[], ${plain.map((p) => JSON.stringify(p.msg))}::text[])`.then(() =>
            plain.forEach((p) => p.resolve({ duplicate: false })),
          )
        : null,
      keyed.length ? this.insertKeyed(keyed) : null,
    ]);
  }

  /**
   * Runs with idempotency keys: the key and the run in one statement. A key that names a
   * run (and has not expired) stores nothing and answers that run. The same key twice in one
   * batch: the first is stored, the others answer it.
   */
  private async insertKeyed(batch: PendingPublish[]): Promise<void> {
    const first = new Map<string, PendingPublish>();
    const repeats: PendingPublish[] = [];
    for (const p of batch) {
      if (first.has(p.idempotency!.key)) repeats.push(p);
      else first.set(p.idempotency!.key, p);
    }
    const ps = [...first.values()];
    const rows = await this.sql<{ key: string; run_id: string; claimed: boolean }[]>`
      WITH k AS (
        INSERT INTO idempotency_keys (key, run_id, expires_at)
        SELECT * FROM unnest(
          ${ps.map((p) => p.idempotency!.key)}::text[], ${ps.map((p) => p.msg.run_id)}::uuid[],
          ${ps.map((p) => new Date(Date.now() + p.idempotency!.ttlMs).toISOString())}::timestamptz[])
        ON CONFLICT (key) DO UPDATE SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at
          WHERE idempotency_keys.expires_at < now()
        RETURNING key, run_id
      ), ins AS (
        INSERT INTO run_queue (run_id, payload)
        SELECT u.run_id, u.payload FROM unnest(${ps.map((p) => p.msg.run_id)}::uuid[], ${ps.map((p) => JSON.stringify(p.msg))}::text[]) AS u(run_id, payload)
        WHERE u.run_id IN (SELECT run_id FROM k)
        RETURNING 1
      )
      SELECT key, run_id::text, true AS claimed FROM k
      UNION ALL
      -- the statement's snapshot still shows the rows that refused the claims: their runs hold the keys
      SELECT i.key, i.run_id::text, false FROM idempotency_keys i
      WHERE i.key = ANY(${ps.map((p) => p.idempotency!.key)}::text[]) AND i.key NOT IN (SELECT key FROM k)`;
    const byKey = new Map(rows.map((r) => [r.key, r]));
    for (const p of ps) {
      const r = byKey.get(p.idempotency!.key);
      if (r?.claimed) p.resolve({ duplicate: false });
      else p.resolve({ duplicate: true, holder: r?.run_id });
    }
    for (const p of repeats) {
      const r = byKey.get(p.idempotency!.key);
      p.resolve({ duplicate: true, holder: r?.claimed ? first.get(p.idempotency!.key)!.msg.run_id : r?.run_id });
    }
  }

  /**
   * Claims runs as they arrive (NOTIFY wf_runs), when runs end (room for more) and every
   * poll interval (a missed notification, an ended lease), at most `maxInFlight` at once.
   */
  consumeRuns(maxInFlight: number, handle: (d: Delivery) => Promise<void>): Promise<() => Promise<void>> {
    const leased = new Set<string>();
    const running = new Set<Promise<void>>();
    let stopped = false;
    let claiming = false;
    let again = false;
    let scheduled = false;

    const start = (row: { id: string; payload: string; deliveries: number }) => {
      leased.add(row.id);
      let acked = false;
      const delivery: Delivery = {
        data: JSON.parse(row.payload) as RunMessage,
        deliveryCount: row.deliveries,
        dequeueId: row.id,
        ack: (opts) => {
          if (acked) return;
          acked = true;
          leased.delete(row.id);
          if (!opts?.dequeued) void this.dequeue([row.id]);
        },
        // every lease of this process is renewed together (renew below)
        working: () => {},
      };
      const p: Promise<void> = handle(delivery)
        .catch((err) => this.o.log.error({ err, run_id: delivery.data.run_id }, 'run handler failed; the run will be redelivered'))
        .finally(() => {
          running.delete(p);
          // not acked (the handler failed): its lease runs out and the run is delivered again
          leased.delete(row.id);
          schedule();
        });
      running.add(p);
    };

    const claim = async (): Promise<void> => {
      if (claiming) {
        again = true;
        return;
      }
      claiming = true;
      try {
        do {
          again = false;
          while (!stopped && running.size < maxInFlight) {
            const n = Math.min(maxInFlight - running.size, CLAIM_BATCH);
            const rows = await this.claim(n);
            rows.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1)).forEach(start);
            if (rows.length < n) break;
          }
        } while (again && !stopped);
      } catch (err) {
        if (!stopped) this.o.log.warn({ err: (err as Error).message }, 'postgres queue: claim failed; trying again at the next poll');
      } finally {
        claiming = false;
      }
    };
    // many runs ending in one turn of the event loop make one claim, not one each
    const schedule = () => {
      if (scheduled || stopped) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        void claim();
      });
    };
    const renew = async () => {
      if (!leased.size) return;
      try {
        await this.sql`
          UPDATE run_queue SET available_at = now() + ${this.leaseMs} * interval '1 millisecond'
          WHERE id = ANY(${[...leased]}::bigint[]) AND leased_by = ${this.o.name}`;
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'postgres queue: leases not renewed');
      }
    };

    const listener = this.listen('wf_runs', schedule, schedule);
    const poll = setInterval(schedule, Math.max(10, this.o.pollIntervalMs));
    const renewal = setInterval(() => void renew(), Math.max(250, this.leaseMs / 3));
    schedule();
    return Promise.resolve(async () => {
      stopped = true;
      clearInterval(poll);
      listener();
      await Promise.allSettled([...running]);
      clearInterval(renewal);
    });
  }

  /** Leases up to `n` runs that are due (new, or their lease ended) and have deliveries left. */
  private claim(n: number) {
    const max = this.o.queue.max_deliver;
    return this.sql<{ id: string; payload: string; deliveries: number }[]>`
      UPDATE run_queue q
      SET deliveries = q.deliveries + 1,
          available_at = now() + ${this.leaseMs} * interval '1 millisecond',
          leased_by = ${this.o.name}
      FROM (
        SELECT id FROM run_queue
        WHERE available_at <= now() AND (${max}::int < 0 OR deliveries < ${max}::int)
        ORDER BY id LIMIT ${n}
        FOR UPDATE SKIP LOCKED
      ) c
      WHERE q.id = c.id
      RETURNING q.id::text, q.payload, q.deliveries`;
  }

  private async dequeue(ids: string[]): Promise<void> {
    try {
      await this.sql`DELETE FROM run_queue WHERE id = ANY(${ids}::bigint[])`;
    } catch (err) {
      // the lease ends and the run is delivered again; the executor finds it final and acks it
      this.o.log.warn({ err: (err as Error).message }, 'postgres queue: ack failed');
    }
  }

  /**
   * Makes every leased run due now. Only for a queue this process owns alone (the embedded
   * mode, whose database no other process uses): the leases left by a runtime that was killed
   * then end at once instead of after queue.ack_wait. Returns how many runs it released.
   */
  async releaseAllLeases(): Promise<number> {
    const rows = await this.sql`UPDATE run_queue SET available_at = now() WHERE available_at > now() RETURNING 1`;
    return rows.length;
  }

  async queuedRun(runId: string): Promise<{ msg: RunMessage; deliveries: number } | null> {
    const rows = await this.sql<{ payload: string; deliveries: number }[]>`
      SELECT payload, deliveries FROM run_queue WHERE run_id = ${runId} ORDER BY id LIMIT 1`;
    return rows[0] ? { msg: JSON.parse(rows[0].payload) as RunMessage, deliveries: rows[0].deliveries } : null;
  }

  async consumerPending(): Promise<{ pending: number; ackPending: number }> {
    const [r] = await this.sql<{ pending: number; ack_pending: number }[]>`
      SELECT count(*) FILTER (WHERE deliveries = 0 OR available_at <= now())::int AS pending,
             count(*) FILTER (WHERE deliveries > 0 AND available_at > now())::int AS ack_pending
      FROM run_queue`;
    return { pending: r?.pending ?? 0, ackPending: r?.ack_pending ?? 0 };
  }

  /**
   * The engine role's sweep: runs delivered max_deliver times whose last lease ended are
   * leased to the dead-letter handler (so one engine handles each), recorded, then deleted.
   * It also forgets idempotency keys past their time, a few at a time.
   */
  onDeadLetter(cb: (run: RunMessage, deliveries: number) => Promise<void>): Unsubscribe {
    const max = this.o.queue.max_deliver;
    let busy = false;
    const sweep = async () => {
      if (busy || this.closed) return;
      busy = true;
      try {
        if (max >= 0) {
          const dead = await this.sql<{ id: string; payload: string; deliveries: number }[]>`
            UPDATE run_queue q
            SET available_at = now() + ${this.leaseMs} * interval '1 millisecond', leased_by = ${`dead-letters:${this.o.name}`}
            FROM (
              SELECT id FROM run_queue WHERE deliveries >= ${max}::int AND available_at <= now()
              ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED
            ) c
            WHERE q.id = c.id
            RETURNING q.id::text, q.payload, q.deliveries`;
          for (const d of dead) {
            try {
              await cb(JSON.parse(d.payload) as RunMessage, d.deliveries);
              await this.dequeue([d.id]);
            } catch (err) {
              this.o.log.error({ err }, 'dead-letter handling failed; tried again when its lease ends');
            }
          }
        }
        await this.sql`
          DELETE FROM idempotency_keys WHERE key IN (
            SELECT key FROM idempotency_keys WHERE expires_at < now() LIMIT 1000)`;
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'postgres queue: dead-letter sweep failed');
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void sweep(), Math.max(200, Math.min(5000, this.leaseMs / 3)));
    void sweep();
    return () => clearInterval(timer);
  }

  resultAddress(processId: string): string {
    // a channel name is an identifier: at most 63 bytes
    return `wf_results_${processId.replace(/[^A-Za-z0-9]/g, '').slice(0, 40)}`;
  }

  onResults(address: string, cb: (r: RunResult) => void): Unsubscribe {
    return this.listen(address, (payload) => this.parse(payload, cb));
  }

  publishResult(address: string, r: RunResult): void {
    let payload = JSON.stringify(r);
    if (Buffer.byteLength(payload) > MAX_NOTIFY_BYTES) payload = JSON.stringify({ ...r, output: undefined });
    this.notify(address, payload);
  }

  publishCancel(runId: string): void {
    this.notify(CHANNEL.cancel, runId);
  }

  onCancel(cb: (runId: string) => void): Unsubscribe {
    return this.listen(CHANNEL.cancel, cb);
  }

  publishWorkflowChange(c: WorkflowChange): void {
    this.notify(CHANNEL.workflows, JSON.stringify(c));
  }

  onWorkflowChange(cb: (c: WorkflowChange) => void): Unsubscribe {
    return this.listen(CHANNEL.workflows, (payload) => this.parse(payload, cb));
  }

  async ready(): Promise<boolean> {
    try {
      await this.sql`SELECT 1 FROM run_queue LIMIT 1`;
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    await this.flushNotifies();
    await Promise.allSettled(this.listeners.map(async (l) => (await l).unlisten()));
  }

  /** Notifications made in one turn of the event loop go out in one statement. */
  private notify(channel: string, payload: string): void {
    this.notifies.push({ channel, payload });
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    setImmediate(() => void this.flushNotifies());
  }

  private async flushNotifies(): Promise<void> {
    this.notifyScheduled = false;
    const batch = this.notifies.splice(0);
    if (!batch.length) return;
    try {
      await this.sql`
        SELECT pg_notify(c, p) FROM unnest(${batch.map((n) => n.channel)}::text[], ${batch.map((n) => n.payload)}::text[]) AS t(c, p)`;
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'postgres queue: notifications not sent');
    }
  }

  /** LISTEN on a channel (postgres.js keeps one connection for it and listens again after a reconnect). */
  private listen(channel: string, cb: (payload: string) => void, onListen?: () => void): Unsubscribe {
    const l = this.sql.listen(channel, cb, onListen);
    this.listeners.push(l);
    l.catch((err: Error) => this.o.log.error({ err: err.message, channel }, 'postgres queue: LISTEN failed'));
    return () => void l.then((x) => x.unlisten()).catch(() => {});
  }

  private parse<T>(payload: string, cb: (v: T) => void): void {
    try {
      cb(JSON.parse(payload) as T);
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'postgres queue: bad notification');
    }
  }
}
