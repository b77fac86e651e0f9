import { describe, expect, it } from 'vitest';
import { executionRoutes, type ExecutionDeps } from '../../dist/runtime/api/index.js';
import { RuntimeError } from '../../dist/runtime/errors/index.js';
import { createMetrics } from '../../dist/runtime/observability/index.js';

/**
 * A run that was not stored lets go of its idempotency key before its answer goes out. Found by
 * the chaos suite (NATS killed under load): one API process answered 503 for a PubAck that never
 * came, the client retried at once on the other process, whose claim still found the key naming
 * the first run, and answered 200 "deduplicated" with a run that was never stored: lost. The
 * cache here lets go of a key one macrotask after it is asked to, as Redis does at best (a round
 * trip), so the order of the answer and the release is what the test sees.
 */
class SlowReleaseCache {
  /** key → holder; `p:` marks an unconfirmed claim, as in cache/redis.ts */
  readonly claims = new Map<string, string>();
  claimIdempotencyKey(key: string, runId: string): Promise<{ runId: string; stored: boolean } | null> {
    const v = this.claims.get(key);
    if (v) return Promise.resolve(v.startsWith('p:') ? { runId: v.slice(2), stored: false } : { runId: v, stored: true });
    this.claims.set(key, `p:${runId}`);
    return Promise.resolve(null);
  }
  confirmIdempotencyKey(key: string, runId: string): Promise<void> {
    this.claims.set(key, runId);
    return Promise.resolve();
  }
  forgetAcceptedRun(runId: string, key?: string): Promise<void> {
    return new Promise((resolve) =>
      setTimeout(() => {
        if (key && this.claims.get(key) === `p:${runId}`) this.claims.delete(key);
        resolve();
      }, 0),
    );
  }
  runAccepted(): Promise<void> {
    return Promise.resolve();
  }
  runStatus(): Promise<null> {
    return Promise.resolve(null);
  }
}

function executeRoute(publishRun: ExecutionDeps['queue']['publishRun'], cache: SlowReleaseCache) {
  const deps = {
    registry: { resolve: () => Promise.resolve({ id: 'wf-1', name: 'wf', version: '1.0.0', status: 'active' }) },
    queue: { publishRun },
    runs: { get: () => Promise.resolve(null) },
    cache,
    admission: { admit: () => {}, admitWaiter: () => {} },
    waitTimeoutMs: 1000,
    maxWaitTimeoutMs: 1000,
    idempotencyTtlMs: 60_000,
    metrics: createMetrics(),
  } as unknown as ExecutionDeps;
  const route = executionRoutes(deps).find((r) => r.method === 'post' && r.pattern === '/api/v1/execute')!;
  return (key: string) =>
    route.handler({
      method: 'POST',
      path: '/api/v1/execute',
      query: new URLSearchParams(),
      params: {},
      header: (name: string) => (name === 'idempotency-key' ? key : ''),
      body: Buffer.from(JSON.stringify({ workflow_id: 'wf' })),
    });
}

describe('execute with an idempotency key whose run is not stored', () => {
  it('releases the key before it answers 503', async () => {
    const cache = new SlowReleaseCache();
    const execute = executeRoute(() => Promise.reject(new RuntimeError('E_QUEUE_UNAVAILABLE', 'no PubAck')), cache);
    await expect(execute('k1')).rejects.toMatchObject({ code: 'E_QUEUE_UNAVAILABLE' });
    // the client's retry, on any process, finds the key free: its run is not "deduplicated" into one that does not exist
    expect(cache.claims.has('wf:k1')).toBe(false);
  });

  it('releases the key of a run the queue refused as a duplicate before it answers', async () => {
    const cache = new SlowReleaseCache();
    const execute = executeRoute(() => Promise.resolve({ duplicate: true }), cache);
    await expect(execute('k2')).rejects.toMatchObject({ code: 'E_IDEMPOTENCY_CONFLICT' });
    expect(cache.claims.has('wf:k2')).toBe(false);
  });

  it('an unconfirmed claim left by a process that died settles nothing: the retry is published, and stored', async () => {
    const cache = new SlowReleaseCache();
    cache.claims.set('wf:k3', 'p:01890000-0000-7000-8000-00000000dead'); // claimed, then the process died before its publish
    const published: string[] = [];
    const execute = executeRoute((msg) => {
      published.push(msg.run_id);
      return Promise.resolve({ duplicate: false });
    }, cache);
    const r = await execute('k3');
    expect(r.status).toBe(200);
    expect(published).toHaveLength(1);
    expect(JSON.parse(r.body as string).deduplicated).toBeUndefined();
    expect(cache.claims.get('wf:k3')).toBe(published[0]); // confirmed: the stored run holds the key
  });

  it('an unconfirmed claim whose run was stored after all: the queue says duplicate, the answer names that run', async () => {
    const cache = new SlowReleaseCache();
    const first = '01890000-0000-7000-8000-0000000000f1';
    cache.claims.set('wf:k4', `p:${first}`);
    const execute = executeRoute(() => Promise.resolve({ duplicate: true }), cache);
    const r = await execute('k4');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body as string)).toMatchObject({ run_id: first, deduplicated: true });
  });
});
