import type { Sql } from 'postgres';

/** How long a cancel is remembered for executors that start after it was broadcast. */
export const CANCEL_MEMORY_MS = 3_600_000;

/**
 * Cancels, durably: the broadcast reaches the executors running at the time; one that starts
 * later reads the cancels of the last CANCEL_MEMORY_MS here, so it skips a cancelled run it
 * takes from the queue. Cancels are rare: one row each, older ones pruned as new ones come.
 */
export class CancelRecords {
  constructor(private readonly sql: Sql) {}

  async remember(runId: string): Promise<void> {
    await this.sql`
      WITH old AS (DELETE FROM run_cancels WHERE cancelled_at < now() - ${CANCEL_MEMORY_MS} * interval '1 millisecond')
      INSERT INTO run_cancels (run_id) VALUES (${runId}) ON CONFLICT (run_id) DO NOTHING`;
  }

  async has(runId: string): Promise<boolean> {
    return (await this.sql`SELECT 1 FROM run_cancels WHERE run_id = ${runId}`).length > 0;
  }

  async recent(): Promise<string[]> {
    const rows = await this.sql<{ run_id: string }[]>`
      SELECT run_id::text FROM run_cancels WHERE cancelled_at >= now() - ${CANCEL_MEMORY_MS} * interval '1 millisecond'`;
    return rows.map((r) => r.run_id);
  }
}
