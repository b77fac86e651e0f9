import { hostname } from 'node:os';
import type { Config } from '../config/index.js';
import { RuntimeError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import type { Sql } from '../store/index.js';
import type { RunMessage, RunResult, WorkflowChange } from './codec.js';
import { PostgresConsumer } from './postgres-consumer.js';
import { RateLinger } from './linger.js';
import { MAX_NOTIFY_BYTES, Notifier } from './postgres-notifier.js';
import {
  keepAliveInterval,
  type Delivery,
  type IdempotencyClaim,
  type PublishResult,
  type Queue,
  type QueueEntry,
  type StopConsuming,
  type Unsubscribe,
} from './port.js';

export interface PostgresQueueOptions {
  queue: Config['queue'];
  /** how often an idle consumer looks for runs a notification missed and leases that ended */
  pollIntervalMs: number;
  /** this process, unique per start (`<host>:<pid>:<nonce>`): recorded on the runs it leases */
  owner: string;
  log: Logger;
}

interface PendingPublish {
  msg: RunMessage;
  payload: string;
  idempotency?: IdempotencyClaim;
  resolve: (r: PublishResult) => void;
  reject: (e: Error) => void;
}

/** Runs inserted per statement, and their bytes at most (the rest go in the next statement). */
const PUBLISH_BATCH = 1000;
const PUBLISH_BATCH_BYTES = 16 * 1024 * 1024;
/** Expired idempotency keys deleted per statement of the sweep. */
const KEY_SWEEP_BATCH = 1000;

const CHANNEL = { cancel: 'wf_cancels', workflows: 'wf_workflows' };

/**
 * The run queue in PostgreSQL (`queue.driver: postgres`): one database and no NATS, for the
 * embedded mode and small installs. The contract is JetStream's (queue/port.ts):
 *
 * - **Accepted means stored.** Runs published in one turn of the event loop are inserted in
 *   one statement (a group commit); each caller resolves when it has committed. Under load
 *   (`queue.publish_linger`, as with JetStream) the publishes of a short tick share the
 *   statement: at an evenly spaced 800/s each had been a statement, a commit and a
 *   notification of its own, and a claim by the consumer. A statement
 *   trigger NOTIFYs `wf_runs`, which wakes every consumer.
 * - **Leases** (postgres-consumer.ts): claims with `FOR UPDATE SKIP LOCKED` in batches, a
 *   delivery counted and a lease of `queue.ack_wait` per claim, renewed while handled, claimed
 *   again when it ends; deletes fenced by the delivery.
 * - **Ack** deletes the row; the executor does it in the statement that commits the run's
 *   final rows (`dequeue`), so the record and the ack are one atomic step.
 * - **Dead letters.** A run delivered `queue.max_deliver` times whose lease ended is handed to
 *   the dead-letter handler (engine role), which records it and removes it in one statement.
 * - **Idempotency keys** are stored with the run in the same statement (`idempotency_keys`),
 *   so a repeat is refused with the run that holds the key, durably.
 * - Results, cancels and registry changes are NOTIFY broadcasts (at most once, like core NATS).
 */
export class PostgresQueue implements Queue {
  private pending: PendingPublish[] = [];
  private flushScheduled = false;
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly tick: RateLinger;
  private publishing = 0;
  private readonly notifier: Notifier;
  private closed = false;

  constructor(
    private readonly sql: Sql,
    private readonly o: PostgresQueueOptions,
  ) {
    this.notifier = new Notifier(sql, o.log);
    this.tick = new RateLinger(o.queue.publish_linger);
  }

  private get leaseMs(): number {
    return this.o.queue.ack_wait;
  }

  publishRun(msg: RunMessage, idempotency?: IdempotencyClaim): Promise<PublishResult> {
    if (this.closed) return Promise.reject(new RuntimeError('E_QUEUE_UNAVAILABLE', 'the queue is closing'));
    if (this.pending.length + this.publishing >= this.o.queue.max_pending_publishes) {
      return Promise.reject(
        new RuntimeError(
          'E_OVERLOADED',
          'not accepted: too many runs waiting to be stored (queue.max_pending_publishes); retry after a second',
          {
            reason: 'publishes',
          },
        ),
      );
    }
    return new Promise<PublishResult>((resolve, reject) => {
      const payload = JSON.stringify(msg);
      this.pending.push({ msg, payload, idempotency, resolve, reject });
      this.tick.count();
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        const linger = this.tick.delay;
        if (linger) this.flushTimer = setTimeout(() => void this.flush(), linger);
        else setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    // runs published while an insert is out have scheduled a flush of their own (and may wait
    // for the tick): this loop goes on only with what a full batch left behind
    while (this.pending.length && !this.flushScheduled) {
      const batch = this.takeBatch();
      this.publishing += batch.length;
      try {
        await this.insert(batch);
      } finally {
        this.publishing -= batch.length;
      }
    }
  }

  /** The next statement's runs: up to PUBLISH_BATCH, and PUBLISH_BATCH_BYTES (at least one). */
  private takeBatch(): PendingPublish[] {
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length && n < PUBLISH_BATCH && (n === 0 || bytes + this.pending[n].payload.length <= PUBLISH_BATCH_BYTES)) {
      bytes += this.pending[n].payload.length;
      n++;
    }
    return this.pending.splice(0, n);
  }

  /** Runs without keys and runs with keys go in two statements; each group is settled by its own. */
  private async insert(batch: PendingPublish[]): Promise<void> {
    const plain = batch.filter((p) => !p.idempotency);
    const keyed = batch.filter((p) => p.idempotency);
    const fail = (group: PendingPublish[]) => (err: unknown) => {
      const e = new RuntimeError('E_QUEUE_UNAVAILABLE', `the run queue did not store the run: ${(err as Error).message}`);
      for (const p of group) p.reject(e);
    };
    await Promise.all([
      plain.length
        ? this.sql`
            INSERT INTO run_queue (run_id, payload)
            SELECT * FROM unnest(${plain.map((p) => p.msg.run_id)}::uuid[], ${plain.map((p) => p.payload)}::text[])`.then(
            () => plain.forEach((p) => p.resolve({ duplicate: false })),
            fail(plain),
          )
        : null,
      keyed.length ? this.insertKeyed(keyed).catch(fail(keyed)) : null,
    ]);
  }

  /**
   * Runs with idempotency keys: the key and the run in one statement. The upsert locks the
   * key's row and returns its latest version, so whichever statement commits first holds the
   * key (also across processes), and a repeat learns which run holds it: the run is stored only
   * where the returned run id is its own. An expired key is taken over. The same key twice in
   * one batch: the first is stored, the others answer it.
   */
  private async insertKeyed(batch: PendingPublish[]): Promise<void> {
    const first = new Map<string, PendingPublish>();
    const repeats: PendingPublish[] = [];
    for (const p of batch) {
      if (first.has(p.idempotency!.key)) repeats.push(p);
      else first.set(p.idempotency!.key, p);
    }
    const ps = [...first.values()];
    const rows = await this.sql<{ key: string; run_id: string }[]>`
      WITH k AS (
        INSERT INTO idempotency_keys (key, run_id, expires_at)
        SELECT key, run_id, now() + ttl * interval '1 millisecond' FROM unnest(
          ${ps.map((p) => p.idempotency!.key)}::text[], ${ps.map((p) => p.msg.run_id)}::uuid[],
          ${ps.map((p) => p.idempotency!.ttlMs)}::bigint[]) AS u(key, run_id, ttl)
        ON CONFLICT (key) DO UPDATE SET
          run_id = CASE WHEN idempotency_keys.expires_at < now() THEN EXCLUDED.run_id ELSE idempotency_keys.run_id END,
          expires_at = CASE WHEN idempotency_keys.expires_at < now() THEN EXCLUDED.expires_at ELSE idempotency_keys.expires_at END
        RETURNING key, run_id
      ), ins AS (
        INSERT INTO run_queue (run_id, payload)
        SELECT u.run_id, u.payload FROM unnest(${ps.map((p) => p.msg.run_id)}::uuid[], ${ps.map((p) => p.payload)}::text[]) AS u(run_id, payload)
        WHERE u.run_id IN (SELECT run_id FROM k)
        RETURNING 1
      )
      SELECT key, run_id::text FROM k`;
    const holder = new Map(rows.map((r) => [r.key, r.run_id]));
    for (const p of ps) {
      const h = holder.get(p.idempotency!.key);
      p.resolve(h === p.msg.run_id ? { duplicate: false } : { duplicate: true, holder: h });
    }
    for (const p of repeats) p.resolve({ duplicate: true, holder: holder.get(p.idempotency!.key) });
  }

  consumeRuns(maxInFlight: number, handle: (d: Delivery) => Promise<void>): Promise<StopConsuming> {
    const consumer = new PostgresConsumer(
      {
        sql: this.sql,
        notifier: this.notifier,
        leaseMs: this.leaseMs,
        maxDeliver: this.o.queue.max_deliver,
        pollIntervalMs: this.o.pollIntervalMs,
        owner: this.o.owner,
        log: this.o.log,
      },
      maxInFlight,
      handle,
    );
    return Promise.resolve(consumer.start());
  }

  /**
   * At the start of a process that owns this queue's database (the embedded mode): the runs
   * leased by processes of this host that are gone (a runtime killed with -9) are made due at
   * once, instead of when their leases end. Leases of live processes, and of other hosts, stay.
   */
  async releaseDeadLeases(): Promise<number> {
    const owners = await this.sql<{ leased_by: string }[]>`
      SELECT DISTINCT leased_by FROM run_queue WHERE available_at > now() AND leased_by IS NOT NULL`;
    const host = hostname();
    const dead = owners
      .map((o) => o.leased_by)
      .filter((owner) => {
        const [h, pid] = owner.split(':');
        return h === host && owner !== this.o.owner && !alive(Number(pid));
      });
    if (!dead.length) return 0;
    const rows = await this.sql`
      UPDATE run_queue SET available_at = now() WHERE available_at > now() AND leased_by = ANY(${dead}::text[]) RETURNING 1`;
    return rows.length;
  }

  async queuedRun(runId: string): Promise<{ msg: RunMessage; deliveries: number } | null> {
    const rows = await this.sql<{ payload: string; deliveries: number }[]>`
      SELECT payload, deliveries FROM run_queue WHERE run_id = ${runId} ORDER BY id LIMIT 1`;
    return rows[0] ? { msg: JSON.parse(rows[0].payload) as RunMessage, deliveries: rows[0].deliveries } : null;
  }

  /** Runs waiting for an executor (not those waiting for the dead-letter sweep), and runs leased. */
  async consumerPending(): Promise<{ pending: number; ackPending: number }> {
    const max = this.o.queue.max_deliver;
    const [r] = await this.sql<{ pending: number; ack_pending: number }[]>`
      SELECT count(*) FILTER (WHERE available_at <= now() AND (${max}::int < 0 OR deliveries < ${max}::int))::int AS pending,
             count(*) FILTER (WHERE available_at > now())::int AS ack_pending
      FROM run_queue`;
    return { pending: r?.pending ?? 0, ackPending: r?.ack_pending ?? 0 };
  }

  /**
   * The engine role's sweep, every ack_wait / 3 (at most 5 s): runs delivered max_deliver
   * times whose last lease ended are leased to the dead-letter handler (so one engine handles
   * each), which records and removes them; then expired idempotency keys are deleted.
   */
  onDeadLetter(cb: (run: RunMessage, deliveries: number, dequeue?: QueueEntry) => Promise<void>): () => Promise<void> {
    let sweeping: Promise<void> | null = null;
    let stopped = false;
    const sweep = () => {
      if (sweeping || stopped || this.closed) return;
      sweeping = (async () => {
        try {
          await this.sweepDeadLetters(cb);
          await this.sweepExpiredKeys();
        } catch (err) {
          this.o.log.warn({ err: (err as Error).message }, 'postgres queue: dead-letter sweep failed');
        } finally {
          sweeping = null;
        }
      })();
    };
    const timer = setInterval(sweep, Math.min(5000, keepAliveInterval(this.leaseMs)));
    sweep();
    return async () => {
      stopped = true;
      clearInterval(timer);
      await sweeping;
    };
  }

  private async sweepDeadLetters(cb: (run: RunMessage, deliveries: number, dequeue?: QueueEntry) => Promise<void>): Promise<void> {
    const max = this.o.queue.max_deliver;
    if (max < 0) return;
    const dead = await this.sql<{ id: string; payload: string; deliveries: number }[]>`
      UPDATE run_queue q
      SET available_at = now() + ${this.leaseMs} * interval '1 millisecond', leased_by = ${`dead-letters:${this.o.owner}`}
      FROM (
        SELECT id FROM run_queue WHERE deliveries >= ${max}::int AND available_at <= now()
        ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED
      ) c
      WHERE q.id = c.id
      RETURNING q.id::text, q.payload, q.deliveries`;
    for (const d of dead) {
      const entry = { id: d.id, delivery: d.deliveries };
      let run: RunMessage;
      try {
        run = JSON.parse(d.payload) as RunMessage;
      } catch (err) {
        this.o.log.error({ err, queue_id: d.id }, 'postgres queue: a dead letter cannot be read; removing it');
        await this.sql`DELETE FROM run_queue WHERE id = ${d.id}`;
        continue;
      }
      try {
        await cb(run, d.deliveries, entry);
        // the handler removed it with its record; a handler that did not leaves it here
        await this.sql`DELETE FROM run_queue WHERE id = ${d.id} AND deliveries = ${d.deliveries}`;
      } catch (err) {
        this.o.log.error({ err, run_id: run.run_id }, 'dead-letter handling failed; tried again when its lease ends');
      }
    }
  }

  /** Deletes expired idempotency keys, a batch per statement, until none is left. */
  private async sweepExpiredKeys(): Promise<void> {
    for (let more = true; more && !this.closed;) {
      const rows = await this.sql`
        DELETE FROM idempotency_keys WHERE key IN (
          SELECT key FROM idempotency_keys WHERE expires_at < now() LIMIT ${KEY_SWEEP_BATCH})
        RETURNING 1`;
      more = rows.length === KEY_SWEEP_BATCH;
    }
  }

  resultAddress(processId: string): string {
    // a channel name is an identifier: at most 63 bytes
    return `wf_results_${processId.replace(/[^A-Za-z0-9]/g, '').slice(0, 40)}`;
  }

  onResults(address: string, cb: (r: RunResult) => void): Unsubscribe {
    return this.notifier.listen(address, (payload) => this.parse(payload, cb));
  }

  publishResult(address: string, r: RunResult): void {
    let payload = JSON.stringify(r);
    if (Buffer.byteLength(payload) > MAX_NOTIFY_BYTES)
      payload = JSON.stringify({ run_id: r.run_id, status: r.status, partial: true } satisfies RunResult);
    this.notifier.notify(address, payload);
  }

  publishCancel(runId: string): void {
    this.notifier.notify(CHANNEL.cancel, runId);
  }

  onCancel(cb: (runId: string) => void, resync?: () => void): Unsubscribe {
    return this.notifier.listen(CHANNEL.cancel, cb, resync);
  }

  publishWorkflowChange(c: WorkflowChange): void {
    this.notifier.notify(CHANNEL.workflows, JSON.stringify(c));
  }

  onWorkflowChange(cb: (c: WorkflowChange) => void): Unsubscribe {
    return this.notifier.listen(CHANNEL.workflows, (payload) => this.parse(payload, cb));
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
    await this.notifier.close();
  }

  private parse<T>(payload: string, cb: (v: T) => void): void {
    try {
      cb(JSON.parse(payload) as T);
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'postgres queue: bad notification');
    }
  }
}

/** Whether a process with this pid runs on this host (one of another user counts). */
function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
