import { Redis } from 'ioredis';
import { redisUrl, type Config } from '../config/index.js';
import type { Logger } from '../observability/index.js';

export interface HotRunStatus {
  run_id: string;
  status: string;
  workflow_id: string;
  accepted_at: string;
  started_at?: string;
  completed_at?: string;
  error_code?: string;
}

const RECENT_KEEP = 2000;
const CANCELS = 'cancels';
export const CANCEL_MEMORY_MS = 3_600_000;

/**
 * Redis as a cache and coordination aid: workflow definitions, the hot status
 * of runs not yet written to Postgres, and a short list of recent run ids.
 * Nothing lives only here: every miss falls back to Postgres or JetStream, and
 * every call tolerates Redis being down (it logs and answers "unknown").
 */
export class HotState {
  readonly redis: Redis;
  private readonly ttlSec: number;
  private trimCounter = 0;
  private accepted: HotRunStatus[] = [];
  private acceptedFlush: Promise<void> | null = null;

  constructor(
    c: Config['redis'],
    private readonly log: Logger,
  ) {
    this.redis = new Redis(redisUrl(c), {
      keyPrefix: c.key_prefix,
      enableAutoPipelining: true,
      commandTimeout: c.command_timeout || undefined,
      maxRetriesPerRequest: 1,
      lazyConnect: false,
    });
    this.redis.on('error', (err) => this.log.warn({ err: err.message }, 'redis error'));
    this.ttlSec = Math.max(1, Math.round(c.ttl / 1000));
  }

  /**
   * Remembers a cancel for an hour, so that an executor that starts later still knows it
   * (the NATS broadcast reaches only the executors running at the time). Best effort.
   */
  async runCancelled(runId: string): Promise<void> {
    const now = Date.now();
    try {
      await this.redis
        .multi()
        .zadd(CANCELS, now, runId)
        .zremrangebyscore(CANCELS, 0, now - CANCEL_MEMORY_MS)
        .exec();
    } catch (err) {
      this.log.warn({ err: (err as Error).message, run_id: runId }, 'redis: cancel not remembered');
    }
  }

  /** Run ids cancelled in the last hour (empty when Redis does not answer). */
  async recentCancels(): Promise<string[]> {
    try {
      return await this.redis.zrangebyscore(CANCELS, Date.now() - CANCEL_MEMORY_MS, '+inf');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'redis: recent cancels not read');
      return [];
    }
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /**
   * Records a run as accepted: its hot status and its place in the recent
   * list. Runs accepted in one turn of the event loop share one pipeline (one
   * socket write); each caller resolves when that pipeline has been answered.
   */
  runAccepted(s: HotRunStatus): Promise<void> {
    this.accepted.push(s);
    if (!this.acceptedFlush) {
      this.acceptedFlush = new Promise<void>((resolve) =>
        setImmediate(() => {
          const batch = this.accepted;
          this.accepted = [];
          this.acceptedFlush = null;
          void this.safe(() => this.writeAccepted(batch)).then(() => resolve());
        }),
      );
    }
    return this.acceptedFlush;
  }

  private async writeAccepted(batch: HotRunStatus[]): Promise<void> {
    const p = this.redis.pipeline();
    const zargs: (string | number)[] = [];
    for (const s of batch) {
      p.set(`run:${s.run_id}`, JSON.stringify(s), 'EX', this.ttlSec);
      zargs.push(Date.parse(s.accepted_at), s.run_id);
    }
    p.zadd('runs:recent', ...zargs);
    this.trimCounter += batch.length;
    if (this.trimCounter >= 256) {
      this.trimCounter = 0;
      p.zremrangebyrank('runs:recent', 0, -RECENT_KEEP - 1);
    }
    await p.exec();
  }

  async getRunStatus(runId: string): Promise<HotRunStatus | null> {
    const v = await this.safe(() => this.redis.get(`run:${runId}`));
    return v ? (JSON.parse(v) as HotRunStatus) : null;
  }

  async getRunStatuses(runIds: string[]): Promise<(HotRunStatus | null)[]> {
    if (!runIds.length) return [];
    const vs = await this.safe(() => this.redis.mget(runIds.map((id) => `run:${id}`)));
    return (vs ?? runIds.map(() => null)).map((v) => (v ? (JSON.parse(v) as HotRunStatus) : null));
  }

  /** Run ids accepted in the last `windowMs`, newest first. */
  async recentRunIds(windowMs: number, limit: number): Promise<string[]> {
    const ids = await this.safe(() => this.redis.zrevrangebyscore('runs:recent', '+inf', Date.now() - windowMs, 'LIMIT', 0, limit));
    return ids ?? [];
  }

  /**
   * Claims an idempotency key for a run: resolves with null when the claim is
   * new, with the run id that holds it otherwise, or with undefined when Redis
   * cannot answer (the caller falls back on JetStream's duplicate window).
   */
  async claimIdempotencyKey(key: string, runId: string, ttlMs: number): Promise<string | null | undefined> {
    try {
      const ok = await this.redis.set(`idem:${key}`, runId, 'PX', ttlMs, 'NX');
      if (ok === 'OK') return null;
      return (await this.redis.get(`idem:${key}`)) ?? undefined;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'redis call failed; idempotency falls back to the JetStream window');
      return undefined;
    }
  }

  async getJson<T>(key: string): Promise<T | null> {
    const v = await this.safe(() => this.redis.get(key));
    return v ? (JSON.parse(v) as T) : null;
  }

  async setJson(key: string, value: unknown, ttlMs: number): Promise<void> {
    await this.safe(() => this.redis.set(key, JSON.stringify(value), 'PX', Math.max(1, ttlMs)));
  }

  async del(...keys: string[]): Promise<void> {
    if (keys.length) await this.safe(() => this.redis.del(...keys));
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  private async safe<T>(fn: () => Promise<T>): Promise<T | null> {
    try {
      return await fn();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'redis call failed; continuing without cache');
      return null;
    }
  }
}
