import { uuidv7, uuidv7Time } from '../ids.js';
import { isoTime } from '../iso-time.js';
import { RuntimeError } from '../errors/index.js';
import type { Metrics } from '../observability/index.js';
import type { Cache } from '../cache/index.js';
import type { IdempotencyClaim, PublishResult, Queue, RunMessage, RunResult } from '../queue/index.js';
import { durationMs, type Resumer } from '../engine/index.js';
import { isUuid, type Registry } from '../registry/index.js';
import { FINAL_RUN_STATUSES, type RunRecords, type RunStatus, type WaitRecords } from '../store/index.js';
import { ExecuteBody, intParam, json, parseBody } from './body.js';
import type { Reply, Route } from './http-server.js';
import type { RunEvents } from './run-events.js';
import { sseEvent } from './sse.js';
import { hotRunSummary, hotRunView, runSummary, runView } from './views.js';
import type { Admission } from './admission.js';
import type { Waiters } from './waiters.js';

export interface ExecutionDeps {
  registry: Registry;
  queue: Queue;
  runs: RunRecords;
  /** live progress for GET /executions/:run_id/events */
  events: RunEvents;
  waits: WaitRecords;
  resumer: Resumer;
  cache: Cache;
  waiters: Waiters;
  /** this process's result address, for execute with wait=true */
  resultAddress: string;
  /** refuses executes the system cannot hold (api/admission.ts) */
  admission: Admission;
  waitTimeoutMs: number;
  idempotencyTtlMs: number;
  maxWaitTimeoutMs: number;
  metrics: Metrics;
}

/** how far back the run list looks in Redis for runs not yet in Postgres */
const RECENT_WINDOW_MS = 60_000;

export function executionRoutes(d: ExecutionDeps): Route[] {
  return [
    {
      method: 'post',
      pattern: '/api/v1/execute',
      scope: 'execute',
      // refused before its body is read: an overloaded system answers at once, cheaply
      guard: () => d.admission.admit(),
      handler: (req) => execute(d, parseBody(req, ExecuteBody), req.query.get('wait'), req.header('idempotency-key')),
    },
    {
      method: 'get',
      pattern: '/api/v1/executions',
      scope: 'read',
      handler: async (req) => {
        const limit = intParam(req, 'limit', 50, 1, 500);
        const before = req.query.get('before') || undefined;
        const workflowRef = req.query.get('workflow_id') || undefined;
        const status = req.query.get('status') || undefined;
        if (before && !isUuid(before)) throw new RuntimeError('E_VALIDATION', '"before" must be a run_id from a previous page');
        if (status && !(RUN_STATUSES as readonly string[]).includes(status)) {
          throw new RuntimeError('E_VALIDATION', `"status" must be one of ${RUN_STATUSES.join(', ')}; got "${status}"`);
        }
        const from = timeParam(req.query.get('from'), 'from');
        const to = timeParam(req.query.get('to'), 'to');
        // a workflow by id (that version) or by name (every version)
        const byId = workflowRef && isUuid(workflowRef) ? workflowRef.toLowerCase() : undefined;
        const byName = workflowRef && !byId ? workflowRef : undefined;
        const rows = await d.runs.list({ limit, before, workflow_id: byId, workflow_name: byName, status, from, to });
        const executions: { run_id: string }[] = rows.map(runSummary);
        if (!before && !workflowRef && !status && !from && !to) {
          executions.push(...(await notYetStored(d, rows, limit)));
          executions.sort((a, b) => (a.run_id < b.run_id ? 1 : -1)).splice(limit);
        }
        return json(200, { executions, next: rows.length === limit ? rows.at(-1)!.id : null });
      },
    },
    {
      method: 'get',
      pattern: '/api/v1/executions/:run_id',
      scope: 'read',
      handler: async (req) => json(200, await existingRun(d, req.params.run_id)),
    },
    {
      method: 'get',
      pattern: '/api/v1/executions/:run_id/events',
      scope: 'read',
      handler: async (req) => liveEvents(d, req.params.run_id),
    },
    {
      method: 'post',
      pattern: '/api/v1/executions/:run_id/cancel',
      scope: 'execute',
      handler: async (req) => {
        const view = await existingRun(d, req.params.run_id);
        if ((FINAL_RUN_STATUSES as string[]).includes(view.status)) {
          throw new RuntimeError(
            'E_RUN_FINAL',
            `run ${view.run_id} is already ${view.status}; only a queued or running run can be cancelled`,
            { status: view.status },
          );
        }
        // the run and its child runs (a cancel cascades down): one that nothing drives (waiting,
        // or queued to resume) is cancelled here; one an executor holds, every executor hears
        // of (the one running it stops it, one that takes it from the queue later skips it), and
        // PostgreSQL remembers it for executors that start later
        const cancelledHere = await d.resumer.cancel(view.run_id, true);
        if (cancelledHere) return json(202, { run_id: view.run_id, status: 'cancelled' });
        return json(202, { run_id: view.run_id, status: 'cancelling' });
      },
    },
  ];
}

const RUN_STATUSES: readonly RunStatus[] = ['queued', 'running', 'waiting', 'completed', 'failed', 'cancelled'];

/** A time-range bound: an ISO 8601 time, or ms since the epoch. */
function timeParam(v: string | null, name: string): Date | undefined {
  if (!v) return undefined;
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  // run ids hold 48 bits of milliseconds: a time outside them is no time a run can have
  if (!Number.isFinite(t) || t < 0 || t >= 2 ** 48)
    throw new RuntimeError('E_VALIDATION', `"${name}" must be an ISO 8601 time (2026-12-01T09:00:00Z) or ms since the epoch`);
  return new Date(t);
}

/**
 * Server-Sent Events of a run: `snapshot` (the run as GET answers it) first, then `run` and
 * `step` for each change of their records, then `end` (the final record) and the stream closes.
 * A comment every 5 s keeps idle connections (and proxies) open. SSE rather than a WebSocket:
 * one direction is all it needs, it is plain HTTP (curl, HAProxy, API keys as for any GET), and
 * browsers' EventSource reconnects by itself (a reconnect gets a new snapshot: nothing is lost).
 */
async function liveEvents(d: ExecutionDeps, rawId: string): Promise<Reply> {
  if (!isUuid(rawId)) throw new RuntimeError('E_VALIDATION', 'run_id must be a UUID as returned by POST /api/v1/execute');
  const id = rawId.toLowerCase();
  // the snapshot and what the listener is told it has seen come from the same reads: a change
  // between two reads would be in neither (the step would never be heard in that state)
  const run = await d.runs.get(id);
  const steps = run ? await d.runs.steps(id) : [];
  const view = run ? runView(run, steps) : await existingRun(d, id);
  return {
    status: 200,
    body: '',
    contentType: 'text/event-stream',
    headers: { 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
    stream: (sink) => {
      const send = (type: string, data: unknown) => sink.write(sseEvent(type, data));
      send('snapshot', view);
      if ((FINAL_RUN_STATUSES as string[]).includes(view.status)) {
        send('end', view);
        sink.end();
        return;
      }
      const stop = d.events.subscribe(run, id, steps, (e) => {
        send(e.type, e.data);
        if (e.type === 'end') sink.end();
      });
      const ping = setInterval(() => sink.write(': ping\n\n'), 5000);
      sink.onClose(() => {
        stop();
        clearInterval(ping);
      });
    },
  };
}

/** The run named in the path, or 400 (not a UUID) / 404 (no such run). */
async function existingRun(d: ExecutionDeps, id: string) {
  if (!isUuid(id)) throw new RuntimeError('E_VALIDATION', 'run_id must be a UUID as returned by POST /api/v1/execute');
  const view = await loadRun(d, id.toLowerCase());
  if (!view) throw new RuntimeError('E_RUN_NOT_FOUND', `no run ${id}`);
  return view;
}

async function execute(d: ExecutionDeps, body: typeof ExecuteBody.static, waitParam: string | null, keyHeader: string) {
  const wf = await d.registry.resolve(body.workflow_id, body.version);
  if (wf.status !== 'active') {
    throw new RuntimeError('E_WORKFLOW_INACTIVE', `workflow "${wf.name}" version "${wf.version}" is ${wf.status}; start an active version`);
  }
  const wait = body.wait ?? (waitParam === 'true' || waitParam === '1');
  const runId = uuidv7();
  const acceptedAt = Date.now();
  const msg: RunMessage = { run_id: runId, workflow_id: wf.id, input: body.input_data ?? {}, accepted_at: acceptedAt };
  const waitMs = Math.min(durationMs(body.wait_timeout, d.waitTimeoutMs), d.maxWaitTimeoutMs);
  let waiter: ReturnType<Waiters['wait']> | null = null;
  if (wait) {
    d.admission.admitWaiter(d.waiters.size);
    msg.reply = d.resultAddress;
    waiter = d.waiters.wait(runId, waitMs); // before publishing: a fast run must not beat it
  }
  const accepted = isoTime(acceptedAt);
  const head = { run_id: runId, workflow_id: wf.id, workflow_name: wf.name, workflow_version: wf.version };

  // idempotency: a key names one run per workflow name for api.idempotency_ttl. The cache answers
  // first when it can (Redis); the queue refuses a repeat too: the postgres queue durably and
  // with the run that holds the key, JetStream within queue.duplicate_window without it
  const idemKey = body.idempotency_key ?? (keyHeader || undefined);
  let claim: IdempotencyClaim | undefined;
  let claimedInCache: string | undefined;
  let unconfirmed: string | undefined;
  const deduplicated = async (holder: string) => {
    waiter?.cancel();
    const status = (await d.runs.get(holder))?.status ?? (await d.cache.runStatus(holder))?.status ?? 'queued';
    return json(200, { ...head, run_id: holder, status, deduplicated: true });
  };
  if (idemKey !== undefined) {
    if (idemKey.length > 255 || idemKey.includes('\u0000'))
      throw new RuntimeError('E_VALIDATION', 'Idempotency-Key must be 1 to 255 characters');
    claim = { key: `${wf.name}:${idemKey}`, ttlMs: d.idempotencyTtlMs };
    const holder = await d.cache.claimIdempotencyKey(claim.key, runId, d.idempotencyTtlMs);
    if (holder?.stored) return deduplicated(holder.runId);
    // a claim not confirmed stored may name a run its API process never stored (it died in
    // between): it settles nothing; this run is published under the same key and the queue
    // tells (a duplicate then means the first one was stored after all)
    if (holder) unconfirmed = holder.runId;
    if (holder === null) claimedInCache = claim.key;
  }

  const t0 = performance.now();
  // a run not stored lets go of its key before the answer goes out: a client that retries at once
  // on another API process would otherwise find the key still naming this run, and be told
  // "deduplicated, accepted" for a run that does not exist (found by test/chaos)
  const forget = () => (claimedInCache ? d.cache.forgetAcceptedRun(runId, claimedInCache) : undefined);
  let published: PublishResult;
  try {
    published = await d.queue.publishRun(msg, claim);
  } catch (err) {
    waiter?.cancel();
    d.metrics.publishErrors.inc();
    await forget();
    throw err;
  }
  if (published.duplicate) {
    waiter?.cancel();
    await forget();
    if (published.holder) return deduplicated(published.holder);
    if (unconfirmed) return deduplicated(unconfirmed);
    // the cache could not tell, but JetStream stored a run under this key moments ago
    throw new RuntimeError(
      'E_IDEMPOTENCY_CONFLICT',
      'a run with this idempotency key was accepted moments ago; its run_id cannot be looked up right now (the cache is not answering); list the executions to find it',
    );
  }
  d.metrics.publishDuration.observe((performance.now() - t0) / 1000);
  d.metrics.runsStarted.inc();
  // the hot status ("queued", for reads before its first row) is written once the run is stored,
  // batched with other accepts and not waited for: this process answers for it meanwhile, and
  // another API process looks again for a run id minted a moment ago (loadRun); nothing is
  // written before the PubAck, so a failed or duplicate publish has only its key claim to release
  void d.cache.runAccepted({ run_id: runId, status: 'queued', workflow_id: wf.id, accepted_at: accepted });
  // stored: from now on the key's claim settles repeats by itself
  if (claim) await d.cache.confirmIdempotencyKey(claim.key, runId, claim.ttlMs);
  if (!waiter) {
    // the fields of `head` written out: a spread into a new literal cost more than the rest of the answer
    return json(200, {
      run_id: runId,
      workflow_id: wf.id,
      workflow_name: wf.name,
      workflow_version: wf.version,
      status: 'queued',
      accepted_at: accepted,
    });
  }

  const result = await waiter.promise;
  if (!result) {
    const hot = await d.cache.runStatus(runId);
    return json(202, { ...head, status: hot?.status ?? 'queued', accepted_at: accepted, wait_timed_out: true });
  }
  return json(200, { ...head, ...(await resultView(d, result)), accepted_at: accepted });
}

async function resultView(d: ExecutionDeps, r: RunResult) {
  if (r.partial) {
    // too large for one message: the record has it all (committed before the result was sent)
    const run = await d.runs.get(r.run_id);
    if (run) {
      const v = runView(run, null);
      return {
        status: v.status,
        output: v.output,
        error: v.error,
        started_at: v.started_at,
        completed_at: v.completed_at,
        duration_ms: v.duration_ms,
      };
    }
  }
  return {
    status: r.status,
    output: r.output ?? null,
    error: r.error ?? null,
    started_at: r.started_at ? new Date(r.started_at).toISOString() : null,
    completed_at: r.completed_at ? new Date(r.completed_at).toISOString() : null,
    duration_ms: r.started_at && r.completed_at ? r.completed_at - r.started_at : null,
  };
}

/** PostgreSQL is the truth; the cache answers for a run accepted but not yet written. */
async function loadRun(d: ExecutionDeps, id: string) {
  const found = await lookUp(d, id);
  if (found) return found;
  // minted a moment ago: accepted, perhaps, by another API process whose hot status is on its way
  // to the cache (RedisCache writes it after the PubAck, not waited for); look again before saying no
  const age = Date.now() - uuidv7Time(id);
  if (age >= -1000 && age < FRESH_RUN_MS) {
    for (const ms of FRESH_RELOOKS_MS) {
      await new Promise((r) => setTimeout(r, ms));
      const again = await lookUp(d, id);
      if (again) return again;
    }
  }
  return null;
}

/** a run id this young that nothing knows of yet may still be on its way to the cache */
const FRESH_RUN_MS = 2000;
/** the pauses before each further look (250 ms in all: an accepting process that lags still answers in time) */
const FRESH_RELOOKS_MS = [50, 200];

async function lookUp(d: ExecutionDeps, id: string) {
  const run = await d.runs.get(id);
  if (run) return runView(run, await d.runs.steps(id));
  const hot = await d.cache.runStatus(id);
  if (hot) return hotRunView(hot);
  // accepted by another API process and not yet taken by an executor (the postgres queue can tell)
  const queued = await d.queue.queuedRun(id);
  return queued
    ? hotRunView({
        run_id: id,
        status: 'queued',
        workflow_id: queued.msg.workflow_id,
        accepted_at: new Date(queued.msg.accepted_at).toISOString(),
      })
    : null;
}

/**
 * Runs accepted in the last minute that the Postgres page does not show yet
 * (their executor has not written them): answered from Redis. Run ids are
 * UUIDv7, so ids older than a full page's last row belong to later pages.
 */
async function notYetStored(d: ExecutionDeps, rows: { id: string }[], limit: number) {
  const stored = new Set(rows.map((r) => r.id));
  const oldest = rows.length === limit ? rows.at(-1)!.id : '';
  const ids = (await d.cache.recentRunIds(RECENT_WINDOW_MS, limit)).filter((id) => !stored.has(id) && id > oldest);
  const statuses = await d.cache.runStatuses(ids);
  return statuses.filter((s) => s !== null).map((s) => hotRunSummary(s));
}
