/**
 * The cache port: what the runtime keeps in a cache, in the runtime's own words. Nothing
 * lives only here: every read that misses falls back to PostgreSQL (or the queue), and
 * every call tolerates the cache being down (a miss, logged). Adapters: `redis.ts` and `memory.ts`
 * (in-process).
 */

/** A run's status as the API knows it between its acceptance and its first row in PostgreSQL. */
/** The run an idempotency key names, and whether that run is known to be stored. */
export interface IdempotencyHolder {
  runId: string;
  stored: boolean;
}

export interface HotRunStatus {
  run_id: string;
  status: string;
  workflow_id: string;
  accepted_at: string;
  started_at?: string;
  completed_at?: string;
  error_code?: string;
}

export interface Cache {
  /**
   * Resolves once the cache can answer, or after `timeoutMs` (false): a start waits for it so
   * that the first requests are not all misses; a cache that is down never stops the start.
   */
  ready(timeoutMs: number): Promise<boolean>;
  /** A workflow version by id (a JSON value; versions never change), or null. */
  cachedWorkflow<T>(id: string): Promise<T | null>;
  cacheWorkflow(id: string, workflow: unknown, ttlMs: number): Promise<void>;
  /** The id of the latest active version of a workflow name, or null. */
  cachedWorkflowId(name: string): Promise<string | null>;
  cacheWorkflowId(name: string, id: string, ttlMs: number): Promise<void>;
  /** Drops what is cached for a version and its name (a new version, an archive). */
  forgetWorkflow(id: string, name: string): Promise<void>;

  /** Records a run as accepted: its hot status and its place among the recent runs. */
  runAccepted(s: HotRunStatus): Promise<void>;
  /**
   * Forgets a run that was not stored (its publish failed or was a duplicate): its hot status if
   * any, and its idempotency claim if the key still holds this run's own unconfirmed claim (never
   * another's). Execute writes the hot status only after the PubAck, so it calls this for the claim.
   */
  forgetAcceptedRun(runId: string, idempotencyKey?: string): Promise<void>;
  runStatus(runId: string): Promise<HotRunStatus | null>;
  runStatuses(runIds: string[]): Promise<(HotRunStatus | null)[]>;
  /** Run ids accepted in the last `windowMs`, newest first. */
  recentRunIds(windowMs: number, limit: number): Promise<string[]>;

  /**
   * Claims an idempotency key for a run: null when the claim is new, the holder otherwise,
   * undefined when the cache cannot answer. A claim is unconfirmed (`stored: false`) until
   * `confirmIdempotencyKey`: its run may never have been stored (its API process died between
   * claim and publish), so a holder that is not `stored` settles nothing; the queue decides.
   */
  claimIdempotencyKey(key: string, runId: string, ttlMs: number): Promise<IdempotencyHolder | null | undefined>;
  /** The run holding the key was stored: its claim now settles repeats by itself. */
  confirmIdempotencyKey(key: string, runId: string, ttlMs: number): Promise<void>;

  ping(): Promise<boolean>;
  close(): Promise<void>;
}
