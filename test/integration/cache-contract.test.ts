import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { uuidv7 } from 'uuidv7';
import { MemoryCache, RedisCache, type Cache } from '../../dist/runtime/cache/index.js';
import { createLogger } from '../../dist/runtime/observability/index.js';
import { cleanup, testConfig } from '../helpers/env.js';
import { redisUrl } from '../../dist/runtime/config/index.js';
import { has } from '../helpers/services.js';

/** The cache port's contract, for Redis (a real server) and the in-process cache. */
const log = createLogger({ level: 'warn', format: 'json', output: 'stderr' });

describe.each([...(has('redis') ? (['redis'] as const) : []), 'memory' as const])('cache contract: %s', (driver) => {
  const { config } = testConfig();
  const cache: Cache = driver === 'redis' ? new RedisCache(config.redis, log) : new MemoryCache(60_000);
  afterAll(async () => {
    await cache.close();
    await cleanup(config);
  });

  it('keeps workflows by id and name until forgotten', async () => {
    expect(await cache.ready(5000)).toBe(true);
    const id = uuidv7();
    expect(await cache.cachedWorkflow(id)).toBeNull();
    await cache.cacheWorkflow(id, { id, name: 'orders', definition: { steps: [] } }, 60_000);
    await cache.cacheWorkflowId('orders', id, 60_000);
    expect(await cache.cachedWorkflow(id)).toEqual({ id, name: 'orders', definition: { steps: [] } });
    expect(await cache.cachedWorkflowId('orders')).toBe(id);
    await cache.forgetWorkflow(id, 'orders');
    expect(await cache.cachedWorkflow(id)).toBeNull();
    expect(await cache.cachedWorkflowId('orders')).toBeNull();
  });

  it('answers for accepted runs, newest first, until a run is forgotten', async () => {
    const ids = [uuidv7(), uuidv7(), uuidv7()];
    const at = Date.now();
    await Promise.all(
      ids.map((id, i) =>
        cache.runAccepted({ run_id: id, status: 'queued', workflow_id: 'w', accepted_at: new Date(at + i).toISOString() }),
      ),
    );
    expect((await cache.runStatus(ids[0]))?.status).toBe('queued');
    expect((await cache.runStatuses([ids[1], uuidv7()])).map((s) => s?.run_id ?? null)).toEqual([ids[1], null]);
    expect((await cache.recentRunIds(60_000, 10)).slice(0, 3)).toEqual([...ids].reverse());
    await cache.forgetAcceptedRun(ids[2]);
    expect(await cache.runStatus(ids[2])).toBeNull();
  });

  it('answers for an accepted run at once, before the write is answered (execute does not wait for it)', async () => {
    const id = uuidv7();
    const written = cache.runAccepted({ run_id: id, status: 'queued', workflow_id: 'w', accepted_at: new Date().toISOString() });
    expect((await cache.runStatus(id))?.status).toBe('queued');
    expect((await cache.runStatuses([id]))[0]?.run_id).toBe(id);
    expect((await cache.recentRunIds(60_000, 5))[0]).toBe(id);
    await written;
    expect((await cache.runStatus(id))?.status).toBe('queued');
  });

  it('claims an idempotency key once, unconfirmed until stored (Redis), or says it cannot answer (in-process: the queue decides)', async () => {
    const key = `wf:${uuidv7()}`;
    const [a, b] = [uuidv7(), uuidv7()];
    if (driver === 'redis') {
      expect(await cache.claimIdempotencyKey(key, a, 60_000)).toBeNull();
      // unconfirmed: a's run may never have been stored
      expect(await cache.claimIdempotencyKey(key, b, 60_000)).toEqual({ runId: a, stored: false });
      // b's release never takes a's claim
      await cache.forgetAcceptedRun(b, key);
      expect(await cache.claimIdempotencyKey(key, b, 60_000)).toEqual({ runId: a, stored: false });
      await cache.confirmIdempotencyKey(key, a, 60_000);
      expect(await cache.claimIdempotencyKey(key, b, 60_000)).toEqual({ runId: a, stored: true });
      // a's own release of a confirmed claim does not drop it either (only an unconfirmed one goes)
      await cache.forgetAcceptedRun(a, key);
      expect(await cache.claimIdempotencyKey(key, b, 60_000)).toEqual({ runId: a, stored: true });
      const other = `wf:${uuidv7()}`;
      expect(await cache.claimIdempotencyKey(other, a, 60_000)).toBeNull();
      await cache.forgetAcceptedRun(a, other);
      expect(await cache.claimIdempotencyKey(other, b, 60_000)).toBeNull(); // a's unconfirmed claim went
    } else {
      expect(await cache.claimIdempotencyKey(key, a, 60_000)).toBeUndefined();
    }
    expect(await cache.ping()).toBe(true);
  });
});

describe.runIf(has('redis'))('hot run statuses on Redis, seen from another API process', () => {
  const { config } = testConfig();
  const [accepting, other] = [new RedisCache(config.redis, log), new RedisCache(config.redis, log)];
  const raw = new Redis(redisUrl(config.redis), { keyPrefix: config.redis.key_prefix });
  afterAll(async () => {
    await Promise.all([accepting.close(), other.close()]);
    raw.disconnect();
    await cleanup(config);
  });

  it('finds a run another process accepted once its write is answered, in one hash per minute that expires, until forgotten', async () => {
    const ids = Array.from({ length: 20 }, () => uuidv7());
    const writes = ids.map((id) =>
      accepting.runAccepted({ run_id: id, status: 'queued', workflow_id: 'w', accepted_at: new Date().toISOString() }),
    );
    expect(await other.runStatus(ids[0])).toBeNull(); // not written yet: only the accepting process knows it
    await Promise.all(writes);
    expect((await other.runStatus(ids[0]))?.run_id).toBe(ids[0]);
    expect((await other.runStatuses([ids[19], uuidv7(), ids[3]])).map((s) => s?.run_id ?? null)).toEqual([ids[19], null, ids[3]]);
    expect((await other.recentRunIds(60_000, 20)).sort()).toEqual([...ids].sort());
    // not a key per run: one hash for the minute (two, when the minute turned meanwhile), expiring
    const keys = await raw.keys(`${config.redis.key_prefix}runs:hot:*`);
    expect(keys.length).toBeGreaterThanOrEqual(1);
    expect(keys.length).toBeLessThanOrEqual(2);
    const ttl = await raw.ttl(keys[0].slice(config.redis.key_prefix.length));
    const ttlSec = Math.round(config.redis.ttl / 1000);
    expect(ttl).toBeGreaterThan(ttlSec - 5);
    expect(ttl).toBeLessThanOrEqual(ttlSec + 60);
    expect(await raw.exists(`run:${ids[0]}`)).toBe(0);
    await other.forgetAcceptedRun(ids[5]);
    expect(await accepting.runStatus(ids[5])).toBeNull();
    expect(await other.runStatus('not-a-run-id')).toBeNull();
  });
});
