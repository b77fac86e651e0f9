import { Redis } from 'ioredis';
import { redisUrl, type Config } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import { uuidv7Time } from '../ids.js';
import { Circuit } from './circuit.js';
import type { Cache, HotRunStatus, IdempotencyHolder } from './port.js';

const RECENT_KEEP = 2000;

/**
 * Hot statuses live in one hash per minute of accept time, read off the run id (a UUIDv7), and
 * the hash expires `redis.ttl` after its minute: a batch of accepts is one HSET instead of a SET
 * with its own expiry per run, and Redis keeps one key a minute instead of one per run.
 */
const HOT_BUCKET_MS = 60_000;
const bucketOf = (runId: string) => Math.floor(uuidv7Time(runId) / HOT_BUCKET_MS);

/**
 * How long accepted runs gather before their hot statuses go to Redis in one pipeline. Another
 * API process asked for such a run looks again after 50 ms (routes-executions FRESH_RELOOKS_MS)
 * and this one answers from memory meanwhile; under load the pipeline carries a dozen runs, where
 * one per turn of PubAcks (a publish tick's worth, three or four) had been a socket write each.
 */
const HOT_LINGER_MS = 15;

/** Every key this adapter writes, under the configured prefix (`wf:` by default). */
const key = {
  workflow: (id: string) => `workflow:${id}`,
  workflowId: (name: string) => `workflow-name:${name}`,
  hotRuns: (bucket: number) => `runs:hot:${bucket}`,
  recentRuns: 'runs:recent',
  idempotency: (k: string) => `idem:${k}`,
};

/**
 * The cache on Redis: workflow definitions, the hot status of runs not yet
 * written to PostgreSQL, a short list of recent run ids and idempotency keys.
 *
 * Redis is off the critical path: every call is bounded (`redis.command_timeout`, no offline
 * queue: a command while disconnected fails at once), goes through a circuit breaker (after
 * three failures in a row, calls get their fallback without touching Redis for a second, then
 * one probes), and answers "unknown" on failure. The accept path does not wait for the hot
 * status (see runAccepted); while the circuit is open it is skipped, and PostgreSQL answers for
 * the run once its executor writes it. When Redis returns, the circuit closes and entries are
 * written again as they are read from PostgreSQL.
 */
/** An idempotency claim whose run is not yet known to be stored: `p:<run id>`. */
const PENDING = 'p:';

export class RedisCache implements Cache {
  private readonly redis: Redis;
  private readonly ttlSec: number;
  private trimCounter = 0;
  private accepted: HotRunStatus[] = [];
  private acceptedFlush: Promise<void> | null = null;
  /** accepted here and not yet answered by Redis: this process answers for them meanwhile */
  private readonly unwritten = new Map<string, HotRunStatus>();
  private readonly circuit: Circuit;

  constructor(
    c: Config['redis'],
    private readonly log: Logger,
  ) {
    this.redis = new Redis(redisUrl(c), {
      keyPrefix: c.key_prefix,
      enableAutoPipelining: true,
      commandTimeout: c.command_timeout || undefined,
      maxRetriesPerRequest: 0,
      // a command while disconnected fails at once instead of waiting for the reconnect
      enableOfflineQueue: false,
      lazyConnect: false,
      // reconnect for ever, at most a second apart: the circuit decides when to use it again
      retryStrategy: (times) => Math.min(1000, 50 * times),
    });
    this.circuit = new Circuit({ failures: 3, openMs: 1000, log, name: 'redis' });
    // the circuit logs what matters (down, back); connection errors repeat every reconnect
    this.redis.on('error', () => {});
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
    return (await this.circuit.call(() => this.redis.ping(), null)) === 'PONG';
  }

  /**
   * Execute calls this after the run's PubAck and does not wait for it (the run is stored in the
   * queue already): this process answers for the run from memory until Redis has it. Runs
   * accepted within HOT_LINGER_MS share one pipeline (one socket write, one HSET per minute of
   * accepts; a SET per accept had been a tenth of a run's CPU at 800/s); each caller resolves
   * when that pipeline has been answered (or failed: the cache is best effort).
   */
  runAccepted(s: HotRunStatus): Promise<void> {
    if (this.circuit.isOpen) return Promise.resolve(); // skipped: PostgreSQL answers for the run soon
    this.accepted.push(s);
    this.unwritten.set(s.run_id, s);
    this.acceptedFlush ??= new Promise<void>((resolve) => {
      setTimeout(() => {
        const batch = this.accepted;
        this.accepted = [];
        this.acceptedFlush = null;
        void this.safe(() => this.writeAccepted(batch)).then(() => {
          for (const b of batch) if (this.unwritten.get(b.run_id) === b) this.unwritten.delete(b.run_id);
          resolve();
        });
      }, HOT_LINGER_MS);
    });
    return this.acceptedFlush;
  }

  private async writeAccepted(batch: HotRunStatus[]): Promise<void> {
    if (!batch.length) return;
    const p = this.redis.pipeline();
    const zargs: (string | number)[] = [];
    const buckets = new Map<number, string[]>();
    for (const s of batch) {
      const b = bucketOf(s.run_id);
      let fields = buckets.get(b);
      if (!fields) buckets.set(b, (fields = []));
      fields.push(s.run_id, JSON.stringify(s));
      zargs.push(Date.parse(s.accepted_at), s.run_id);
    }
    for (const [b, fields] of buckets) {
      p.hset(key.hotRuns(b), ...fields);
      p.expireat(key.hotRuns(b), Math.ceil(((b + 1) * HOT_BUCKET_MS) / 1000) + this.ttlSec);
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
    if (this.unwritten.delete(runId)) this.accepted = this.accepted.filter((s) => s.run_id !== runId);
    if (!idempotencyKey) {
      await this.safe(() => this.redis.hdel(key.hotRuns(bucketOf(runId)), runId));
      return;
    }
    // the claim goes only if it is still this run's own unconfirmed one (compare and delete, one round trip)
    await this.safe(() =>
      this.redis.eval(
        "redis.call('hdel', KEYS[1], ARGV[2]); if redis.call('get', KEYS[2]) == ARGV[1] then redis.call('del', KEYS[2]) end; return 1",
        2,
        key.hotRuns(bucketOf(runId)),
        key.idempotency(idempotencyKey),
        PENDING + runId,
        runId,
      ),
    );
  }

  async runStatus(runId: string): Promise<HotRunStatus | null> {
    const mine = this.unwritten.get(runId);
    if (mine) return mine;
    const v = await this.safe(() => this.redis.hget(key.hotRuns(bucketOf(runId)), runId));
    return v ? (JSON.parse(v) as HotRunStatus) : null;
  }

  async runStatuses(runIds: string[]): Promise<(HotRunStatus | null)[]> {
    if (!runIds.length) return [];
    const vs = await this.safe(async () => {
      const p = this.redis.pipeline();
      for (const id of runIds) p.hget(key.hotRuns(bucketOf(id)), id);
      return ((await p.exec()) ?? []).map(([err, v]) => (err ? null : (v as string | null)));
    });
    return runIds.map((id, i) => this.unwritten.get(id) ?? (vs?.[i] ? (JSON.parse(vs[i]) as HotRunStatus) : null));
  }

  async recentRunIds(windowMs: number, limit: number): Promise<string[]> {
    const ids =
      (await this.safe(() => this.redis.zrevrangebyscore(key.recentRuns, '+inf', Date.now() - windowMs, 'LIMIT', 0, limit))) ?? [];
    if (!this.unwritten.size) return ids;
    // run ids are UUIDv7: newest first is descending order
    return [...new Set([...ids, ...this.unwritten.keys()])].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)).slice(0, limit);
  }

  /** undefined when Redis cannot answer: the queue's own check (its duplicate window) decides. */
  async claimIdempotencyKey(k: string, runId: string, ttlMs: number): Promise<IdempotencyHolder | null | undefined> {
    return this.circuit.call(async () => {
      const ok = await this.redis.set(key.idempotency(k), PENDING + runId, 'PX', ttlMs, 'NX');
      if (ok === 'OK') return null;
      const v = await this.redis.get(key.idempotency(k));
      if (v === null) return undefined; // it expired in between: let the queue decide
      return v.startsWith(PENDING) ? { runId: v.slice(PENDING.length), stored: false } : { runId: v, stored: true };
    }, undefined);
  }

  async confirmIdempotencyKey(k: string, runId: string, ttlMs: number): Promise<void> {
    // the run the queue stored under the key holds it from now on, whoever claimed it first
    await this.safe(() => this.redis.set(key.idempotency(k), runId, 'PX', ttlMs));
  }

  ready(timeoutMs: number): Promise<boolean> {
    if (this.redis.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.redis.once('ready', onReady);
    });
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

  /** `fn` through the circuit; null when Redis does not answer (or is known not to). */
  private safe<T>(fn: () => Promise<T>): Promise<T | null> {
    return this.circuit.call<T | null>(fn, null);
  }
}
