import type { Logger } from '../observability/index.js';
import type { Sql } from '../store/index.js';
import type { RunMessage } from './codec.js';
import type { Notifier } from './postgres-notifier.js';
import { keepAliveInterval, within, type Delivery, type StopConsuming } from './port.js';

export interface ConsumerOptions {
  sql: Sql;
  notifier: Notifier;
  /** queue.ack_wait: the lease of a claimed run */
  leaseMs: number;
  /** queue.max_deliver (-1: no limit) */
  maxDeliver: number;
  pollIntervalMs: number;
  /** this process, unique per start: recorded on the runs it leases */
  owner: string;
  log: Logger;
}

/** Runs claimed per statement. */
const CLAIM_BATCH = 100;

interface Lease {
  id: string;
  /** the delivery this process holds: the fence of its renewals and its delete */
  delivery: number;
}

/**
 * The consumer side of the postgres queue: claims due runs (new, or whose lease ended) as they
 * arrive (NOTIFY wf_runs), when runs end while it is full (room for more: at 800/s, a claim at
 * every run's end had been a statement per run, most finding nothing) and every poll interval (a missed
 * notification, an ended lease), at most `maxInFlight` at once. It renews the leases of all its
 * runs in one statement every ack_wait / 3. A lease it finds taken by another consumer (this
 * process stalled past ack_wait) is let go: that run's delete is fenced by its delivery, so the
 * stale driver can no longer remove the row the new one works on.
 */
export class PostgresConsumer {
  /** run queue id → the lease this process holds */
  private readonly leased = new Map<string, Lease>();
  private readonly running = new Set<Promise<void>>();
  private stopped = false;
  private claiming: Promise<void> | null = null;
  private again = false;
  private scheduled = false;
  /**
   * The last claim stopped for want of room, not of runs: a run that ends makes room, so it
   * claims again. Otherwise a run's end claims nothing: new runs come with a notification.
   */
  private behind = false;

  constructor(
    private readonly o: ConsumerOptions,
    private readonly maxInFlight: number,
    private readonly handle: (d: Delivery) => Promise<void>,
  ) {}

  start(): StopConsuming {
    const unlisten = this.o.notifier.listen(
      'wf_runs',
      () => this.schedule(),
      () => this.schedule(),
    );
    const poll = setInterval(() => this.schedule(), Math.max(10, this.o.pollIntervalMs));
    const renewal = setInterval(() => void this.renew(), keepAliveInterval(this.o.leaseMs));
    this.schedule();
    return async (graceMs = Infinity) => {
      this.stopped = true;
      clearInterval(poll);
      unlisten();
      // a claim in flight may hand out runs yet: they are given back (take sees `stopped`)
      await this.claiming;
      const done = await within(Promise.allSettled([...this.running]), graceMs);
      clearInterval(renewal);
      if (done) return { handedBack: 0 };
      // past the grace: the runs still being handled go back (they resume from their recorded steps)
      const leases = [...this.leased.values()];
      this.leased.clear();
      await this.handBack(leases);
      return { handedBack: leases.length };
    };
  }

  /** Many runs ending in one turn of the event loop make one claim, not one each. */
  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.claimLoop();
    });
  }

  /**
   * One claim loop at a time; a call while one runs makes it go round once more. (`claiming`
   * is cleared in a `.finally` callback, which runs after the assignment below even when the
   * loop finds nothing to do and resolves at once.)
   */
  private claimLoop(): Promise<void> {
    if (this.claiming) {
      this.again = true;
      return this.claiming;
    }
    const p = this.claimUntilFull().finally(() => {
      this.claiming = null;
    });
    this.claiming = p;
    return p;
  }

  private async claimUntilFull(): Promise<void> {
    try {
      do {
        this.again = false;
        while (!this.stopped) {
          if (this.running.size >= this.maxInFlight) {
            this.behind = true;
            break;
          }
          const n = Math.min(this.maxInFlight - this.running.size, CLAIM_BATCH);
          const rows = await this.claim(n);
          rows.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1)).forEach((r) => this.take(r));
          if (rows.length < n) {
            this.behind = false;
            break;
          }
        }
      } while (this.again && !this.stopped);
    } catch (err) {
      if (!this.stopped) this.o.log.warn({ err: (err as Error).message }, 'postgres queue: claim failed; trying again at the next poll');
    }
  }

  /** Leases up to `n` runs that are due (new, or their lease ended) and have deliveries left. */
  private claim(n: number) {
    const max = this.o.maxDeliver;
    return this.o.sql<{ id: string; payload: string; deliveries: number }[]>`
      UPDATE run_queue q
      SET deliveries = q.deliveries + 1,
          available_at = now() + ${this.o.leaseMs} * interval '1 millisecond',
          leased_by = ${this.o.owner}
      FROM (
        SELECT id FROM run_queue
        WHERE available_at <= now() AND (${max}::int < 0 OR deliveries < ${max}::int)
        ORDER BY id LIMIT ${n}
        FOR UPDATE SKIP LOCKED
      ) c
      WHERE q.id = c.id
      RETURNING q.id::text, q.payload, q.deliveries`;
  }

  private take(row: { id: string; payload: string; deliveries: number }): void {
    const held = this.leased.get(row.id);
    if (held) {
      // our own run, whose lease lapsed (renewals failed past ack_wait) and which the claim
      // just took again: the driver in progress goes on with the new delivery as its fence
      held.delivery = row.deliveries;
      return;
    }
    let data: RunMessage;
    try {
      data = JSON.parse(row.payload) as RunMessage;
    } catch (err) {
      // never deliverable: not kept leased forever, not delivered again and again
      this.o.log.error({ err, queue_id: row.id }, 'postgres queue: a run in the queue cannot be read; removing it');
      void this.dequeue({ id: row.id, delivery: row.deliveries });
      return;
    }
    if (this.stopped) {
      // claimed while stopping: give it back for another executor, as if never delivered
      void this.release(row.id, row.deliveries);
      return;
    }
    const lease: Lease = { id: row.id, delivery: row.deliveries };
    this.leased.set(row.id, lease);
    let acked = false;
    const delivery: Delivery = {
      data,
      deliveryCount: row.deliveries,
      dequeue: lease,
      ack: (opts) => {
        if (acked) return;
        acked = true;
        this.leased.delete(row.id);
        if (!opts?.dequeued) void this.dequeue(lease);
      },
      // every lease of this process is renewed together (renew below)
      working: () => {},
    };
    const p: Promise<void> = this.handle(delivery)
      .catch((err) => this.o.log.error({ err, run_id: data.run_id }, 'run handler failed; the run will be redelivered'))
      .finally(() => {
        this.running.delete(p);
        // not acked (the handler failed): the lease runs out and the run is delivered again
        if (this.leased.get(row.id) === lease) this.leased.delete(row.id);
        if (this.behind) this.schedule();
      });
    this.running.add(p);
  }

  /** Renews every lease this process holds; a lease another consumer took since is let go. */
  private async renew(): Promise<void> {
    if (!this.leased.size) return;
    const leases = [...this.leased.values()];
    try {
      const kept = await this.o.sql<{ id: string }[]>`
        UPDATE run_queue q SET available_at = now() + ${this.o.leaseMs} * interval '1 millisecond'
        FROM unnest(${leases.map((l) => l.id)}::bigint[], ${leases.map((l) => l.delivery)}::int[]) AS l(id, delivery)
        WHERE q.id = l.id AND q.deliveries = l.delivery AND q.leased_by = ${this.o.owner}
        RETURNING q.id::text`;
      const ids = new Set(kept.map((k) => k.id));
      for (const l of leases) {
        if (ids.has(l.id) || this.leased.get(l.id) !== l) continue;
        this.leased.delete(l.id);
        this.o.log.warn(
          { queue_id: l.id, delivery: l.delivery },
          'postgres queue: a lease was lost (this process stalled past queue.ack_wait, or the run ended elsewhere); another delivery owns the run now',
        );
      }
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'postgres queue: leases not renewed');
    }
  }

  private async dequeue(l: Lease): Promise<void> {
    try {
      await this.o.sql`DELETE FROM run_queue WHERE id = ${l.id} AND deliveries = ${l.delivery}`;
    } catch (err) {
      // the lease ends and the run is delivered again; the executor finds it final and acks it
      this.o.log.warn({ err: (err as Error).message }, 'postgres queue: ack failed');
    }
  }

  /** Makes leased runs due now for another executor (the delivery counts: it may have run steps). */
  private async handBack(leases: Lease[]): Promise<void> {
    if (!leases.length) return;
    try {
      await this.o.sql`
        UPDATE run_queue q SET available_at = now(), leased_by = NULL
        FROM unnest(${leases.map((l) => l.id)}::bigint[], ${leases.map((l) => l.delivery)}::int[]) AS l(id, delivery)
        WHERE q.id = l.id AND q.deliveries = l.delivery AND q.leased_by = ${this.o.owner}`;
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'postgres queue: runs not handed back; their leases end on their own');
    }
  }

  private async release(id: string, delivery: number): Promise<void> {
    try {
      await this.o.sql`
        UPDATE run_queue SET available_at = now(), deliveries = deliveries - 1, leased_by = NULL
        WHERE id = ${id} AND deliveries = ${delivery} AND leased_by = ${this.o.owner}`;
    } catch {
      /* its lease ends on its own */
    }
  }
}
