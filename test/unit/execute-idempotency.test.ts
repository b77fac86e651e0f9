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
  readonly claims = new Map<string, string>();
  claimIdempotencyKey(key: string, runId: string): Promise<string | null> {
    const holder = this.claims.get(key);
    if (holder) return Promise.resolve(holder);
    this.claims.set(key, runId);
    return Promise.resolve(null);
  }
  forgetAcceptedRun(_runId: string, key?: string): Promise<void> {
    return new Promise((resolve) =>
      setTimeout(() => {
        if (key) this.claims.delete(key);
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
});
