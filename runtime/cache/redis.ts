import { Redis } from 'ioredis';
import { redisUrl, type Config } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import type { Cache, HotRunStatus } from './port.js';

const RECENT_KEEP = 2000;

/** Every key this adapter writes, under the configured prefix (`wf:` by default). */
const key = {
  workflow: (id: string) => `workflow:${id}`,
  workflowId: (name: string) => `workflow-name:${name}`,
  run: (id: string) => `run:${id}`,
  recentRuns: 'runs:recent',
  idempotency: (k: string) => `idem:${k}`,
};

/**
 * The cache on Redis: workflow definitions, the hot status of runs not yet
 * written to PostgreSQL, a short list of recent run ids and idempotency keys.
 * Every call tolerates Redis being down (it logs and answers
 * "unknown").
 */
export class RedisCache implements Cache {
  private readonly redis: Redis;
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
    this.redis.on('error', (err: Error) => this.log.warn({ err: err.message }, 'redis error'));
    this.ttlSec = Math.max(1, Math.round(c.ttl / 1000));
  }

  async cachedWorkflow<T>(id: string): Promise<T | null> {
    return this.getJson<T>(key.workflow(id));
  }

  async cacheWorkflow(id: string, workflow: unknown, ttlMs: number): Promise<void> {
    await this.setJson(key.workflow(id), workflow, ttlMs);
  }

  async cachedWorkflowId(name: string): Promise<string | null> {
    return this.getJson<string>(key.workflowId(name));
  }

  async cacheWorkflowId(name: string, id: string, ttlMs: number): Promise<void> {
    await this.setJson(key.workflowId(name), id, ttlMs);
  }

  async forgetWorkflow(id: string, name: string): Promise<void> {
    await this.safe(() => this.redis.del(key.workflow(id), key.workflowId(name)));
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /**
   * Runs accepted in one turn of the event loop share one pipeline (one
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
      p.set(key.run(s.run_id), JSON.stringify(s), 'EX', this.ttlSec);
      zargs.push(Date.parse(s.accepted_at), s.run_id);
    }
    p.zadd(key.recentRuns, ...zargs);
    this.trimCounter += batch.length;
    if (this.trimCounter >= 256) {
      this.trimCounter = 0;
      p.zremrangebyrank(key.recentRuns, 0, -RECENT_KEEP - 1);
    }
    await p.exec();
  }

  async forgetAcceptedRun(runId: string, idempotencyKey?: string): Promise<void> {
    const keys = [key.run(runId), ...(idempotencyKey ? [key.idempotency(idempotencyKey)] : [])];
    await this.safe(() => this.redis.del(...keys));
  }

  async runStatus(runId: string): Promise<HotRunStatus | null> {
    return this.getJson<HotRunStatus>(key.run(runId));
  }

  async runStatuses(runIds: string[]): Promise<(HotRunStatus | null)[]> {
    if (!runIds.length) return [];
    const vs = await this.safe(() => this.redis.mget(runIds.map(key.run)));
    return (vs ?? runIds.map(() => null)).map((v) => (v ? (JSON.parse(v) as HotRunStatus) : null));
  }

  async recentRunIds(windowMs: number, limit: number): Promise<string[]> {
    const ids = await this.safe(() => this.redis.zrevrangebyscore(key.recentRuns, '+inf', Date.now() - windowMs, 'LIMIT', 0, limit));
    return ids ?? [];
  }

  async claimIdempotencyKey(k: string, runId: string, ttlMs: number): Promise<string | null | undefined> {
    try {
      const ok = await this.redis.set(key.idempotency(k), runId, 'PX', ttlMs, 'NX');
      if (ok === 'OK') return null;
      return (await this.redis.get(key.idempotency(k))) ?? undefined;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'redis call failed; idempotency falls back to the queue window');
      return undefined;
    }
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  private async getJson<T>(k: string): Promise<T | null> {
    const v = await this.safe(() => this.redis.get(k));
    return v ? (JSON.parse(v) as T) : null;
  }

  private async setJson(k: string, value: unknown, ttlMs: number): Promise<void> {
    await this.safe(() => this.redis.set(k, JSON.stringify(value), 'PX', Math.max(1, ttlMs)));
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
