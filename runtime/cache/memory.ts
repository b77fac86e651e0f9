import { TtlCache } from './ttl-cache.js';
import type { Cache, HotRunStatus } from './port.js';

const MAX_HOT_RUNS = 20_000;
const RECENT_KEEP = 2000;

/**
 * The cache in this process, for when there is no Redis (embedded mode, or
 * `cache.driver: memory`). It knows only what this process saw: the runs it
 * accepted, the workflows it looked up. It cannot hold idempotency keys for
 * other processes, so it does not claim them (the queue refuses repeats).
 */
export class MemoryCache implements Cache {
  private readonly workflows: TtlCache<unknown>;
  private readonly workflowIds: TtlCache<string>;
  private readonly runs: TtlCache<HotRunStatus>;
  /** run ids in acceptance order (UUIDv7), newest last */
  private recent: { id: string; at: number }[] = [];

  constructor(ttlMs: number) {
    this.workflows = new TtlCache(ttlMs);
    this.workflowIds = new TtlCache(ttlMs);
    this.runs = new TtlCache(ttlMs, MAX_HOT_RUNS);
  }

  cachedWorkflow<T>(id: string): Promise<T | null> {
    return Promise.resolve((this.workflows.get(id) as T | undefined) ?? null);
  }

  cacheWorkflow(id: string, workflow: unknown, ttlMs: number): Promise<void> {
    this.workflows.set(id, workflow, ttlMs);
    return Promise.resolve();
  }

  cachedWorkflowId(name: string): Promise<string | null> {
    return Promise.resolve(this.workflowIds.get(name) ?? null);
  }

  cacheWorkflowId(name: string, id: string, ttlMs: number): Promise<void> {
    this.workflowIds.set(name, id, ttlMs);
    return Promise.resolve();
  }

  forgetWorkflow(id: string, name: string): Promise<void> {
    this.workflows.delete(id);
    this.workflowIds.delete(name);
    return Promise.resolve();
  }

  runAccepted(s: HotRunStatus): Promise<void> {
    this.runs.set(s.run_id, s);
    this.recent.push({ id: s.run_id, at: Date.parse(s.accepted_at) });
    if (this.recent.length > 2 * RECENT_KEEP) this.recent = this.recent.slice(-RECENT_KEEP);
    return Promise.resolve();
  }

  forgetAcceptedRun(runId: string): Promise<void> {
    this.runs.delete(runId);
    return Promise.resolve();
  }

  runStatus(runId: string): Promise<HotRunStatus | null> {
    return Promise.resolve(this.runs.get(runId) ?? null);
  }

  runStatuses(runIds: string[]): Promise<(HotRunStatus | null)[]> {
    return Promise.resolve(runIds.map((id) => this.runs.get(id) ?? null));
  }

  recentRunIds(windowMs: number, limit: number): Promise<string[]> {
    const since = Date.now() - windowMs;
    const out: string[] = [];
    for (let i = this.recent.length - 1; i >= 0 && out.length < limit; i--) {
      const r = this.recent[i];
      if (r.at < since) break;
      if (this.runs.get(r.id)) out.push(r.id);
    }
    return Promise.resolve(out);
  }

  /** Cannot answer for other processes: undefined sends the caller to the queue's own check. */
  claimIdempotencyKey(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  confirmIdempotencyKey(): Promise<void> {
    return Promise.resolve();
  }

  ping(): Promise<boolean> {
    return Promise.resolve(true);
  }

  ready(): Promise<boolean> {
    return Promise.resolve(true);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
