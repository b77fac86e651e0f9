import type { Logger } from '../observability/index.js';
import type { Sql } from '../store/index.js';
import type { Unsubscribe } from './port.js';

/** A NOTIFY payload must stay under 8000 bytes. */
export const MAX_NOTIFY_BYTES = 7900;

/**
 * NOTIFY and LISTEN for the postgres queue. Notifications made in one turn of the event loop
 * go out in one statement; when that statement fails (one payload PostgreSQL refuses), they
 * are sent one by one, so one bad notification cannot drop the others.
 */
export class Notifier {
  private batch: { channel: string; payload: string }[] = [];
  private scheduled = false;
  private readonly listeners: Promise<{ unlisten: () => Promise<void> }>[] = [];

  constructor(
    private readonly sql: Sql,
    private readonly log: Logger,
  ) {}

  notify(channel: string, payload: string): void {
    this.batch.push({ channel, payload });
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.batch.splice(0);
    if (!batch.length) return;
    try {
      await this.send(batch);
    } catch {
      for (const n of batch) {
        await this.send([n]).catch((err: Error) =>
          this.log.warn(
            { err: err.message, channel: n.channel, bytes: Buffer.byteLength(n.payload) },
            'postgres queue: a notification was not sent',
          ),
        );
      }
    }
  }

  private async send(batch: { channel: string; payload: string }[]): Promise<void> {
    await this.sql`
      SELECT pg_notify(c, p) FROM unnest(${batch.map((n) => n.channel)}::text[], ${batch.map((n) => n.payload)}::text[]) AS t(c, p)`;
  }

  /**
   * LISTEN on a channel. postgres.js keeps one connection for it and listens again after a
   * reconnect; `onListen` runs each time it (re)listens: whatever was notified in between is
   * lost, so that is when a listener reads the durable state again.
   */
  listen(channel: string, cb: (payload: string) => void, onListen?: () => void): Unsubscribe {
    const l = this.sql.listen(channel, cb, onListen);
    this.listeners.push(l);
    l.catch((err: Error) => this.log.error({ err: err.message, channel }, 'postgres queue: LISTEN failed'));
    return () => void l.then((x) => x.unlisten()).catch(() => {});
  }

  async close(): Promise<void> {
    await this.flush();
    await Promise.allSettled(this.listeners.map(async (l) => (await l).unlisten()));
  }
}
