import { hostname } from 'node:os';
import {
  hasTemplate,
  renderTemplate,
  resolvePolicy,
  runAttempts,
  runDefinition,
  type LeafStep,
  type NodeEvent,
  type PolicyDefaults,
  type Unit,
  type UnitResult,
} from '../engine/index.js';
import type { PlainError } from '../errors/index.js';
import type { Logger, Metrics } from '../observability/index.js';
import { keepAliveInterval, type Delivery, type RunMessage, type RunResult } from '../queue/index.js';
import type { Registry, Workflow } from '../registry/index.js';
import { FINAL_RUN_STATUSES, type BatchWriter, type InstanceRow, type RunRecords, type RunStatus, type StepRow } from '../store/index.js';
import type { Cancellations } from './cancellations.js';
import type { CatalogueEntry } from './catalogue.js';
import type { StepOutcome, StepTask } from './protocol.js';

export interface RunDriverDeps {
  runs: RunRecords;
  registry: Registry;
  writer: BatchWriter;
  /** runs one attempt: inline for trusted built-ins, else on the pool */
  runAttempt: (task: Omit<StepTask, 'seq' | 'deadline'>, cancelled?: AbortSignal) => Promise<StepOutcome>;
  cancellations: Cancellations;
  isInline: (type: string) => boolean;
  publishResult: (address: string, r: RunResult) => void;
  catalogue: () => ReadonlyMap<string, CatalogueEntry>;
  defaults: PolicyDefaults;
  ackWaitMs: number;
  log: Logger;
  metrics: Metrics;
}

/** recorded on the runs this process drives (`executor_host`) */
const HOST = `${hostname()}:${process.pid}`;

/**
 * Drives one run message to a final state: resumes from recorded steps when
 * redelivered, runs each remaining step on the pool with retries and
 * timeouts, records every step through the batched writer, and acks the
 * message only after the run's final row is committed. (Redis is not
 * touched: once an executor has a run, Postgres answers for it within a
 * flush interval, and the API's "queued" entry covers the moments before.)
 */
export async function driveRun(d: Delivery, deps: RunDriverDeps): Promise<void> {
  const m = d.data;
  const { metrics } = deps;
  const keepalive = setInterval(() => d.working(), keepAliveInterval(deps.ackWaitMs));
  metrics.runsInFlight.inc();
  try {
    const done = new Map<string, unknown>();
    if (d.deliveryCount > 1) {
      metrics.redeliveries.inc();
      const prior = await deps.runs.progress(m.run_id);
      if (prior.run && (FINAL_RUN_STATUSES as string[]).includes(prior.run.status)) {
        d.ack(); // finished before; the ack was lost
        return;
      }
      for (const s of prior.completed) done.set(s.step_name, s.output_data);
    }

    const wf = await deps.registry.getById(m.workflow_id);
    const base = baseRow(m, wf, d.deliveryCount);
    if (!wf) {
      await finish(
        d,
        deps,
        m,
        { ...base, status: 'failed', error_code: 'E_WORKFLOW_NOT_FOUND', error_message: `workflow ${m.workflow_id} does not exist` },
        null,
      );
      return;
    }
    const startedAt = new Date();
    if (deps.cancellations.isCancelled(m.run_id)) {
      // cancelled while it waited in the queue
      await finish(
        d,
        deps,
        m,
        {
          ...base,
          status: 'cancelled',
          error_code: 'E_CANCELLED',
          error_message: 'the run was cancelled before it started',
          completed_at: startedAt,
        },
        null,
      );
      return;
    }
    void deps.writer.writeRun({ ...base, status: 'running', started_at: startedAt });

    const cancelled = deps.cancellations.track(m.run_id);
    let outcome;
    try {
      outcome = await runDefinition(
        wf.definition,
        { runId: m.run_id, input: m.input, done, cancelled },
        {
          step: (u) => runUnit(deps, m, wf, u),
          node: (e) => void deps.writer.writeStep(nodeRow(m, e)),
        },
      );
    } finally {
      deps.cancellations.untrack(m.run_id);
    }
    if (!outcome.ok && cancelled.aborted) {
      await finish(
        d,
        deps,
        m,
        {
          ...base,
          status: 'cancelled',
          started_at: startedAt,
          completed_at: new Date(),
          error_code: 'E_CANCELLED',
          error_message: 'the run was cancelled',
        },
        outcome.error,
      );
    } else if (outcome.ok) {
      await finish(
        d,
        deps,
        m,
        { ...base, status: 'completed', output_data: outcome.output, started_at: startedAt, completed_at: new Date() },
        null,
      );
    } else {
      const err = outcome.error;
      await finish(
        d,
        deps,
        m,
        {
          ...base,
          status: 'failed',
          started_at: startedAt,
          completed_at: new Date(),
          error_code: err.code,
          error_message: `step "${outcome.step}" failed: ${err.message}`,
        },
        err,
      );
    }
  } finally {
    clearInterval(keepalive);
    metrics.runsInFlight.dec();
  }
}

/** Runs one step (a unit of the definition) with its retries and timeouts, recording each attempt. */
async function runUnit(deps: RunDriverDeps, m: RunMessage, wf: Workflow, u: Unit): Promise<UnitResult> {
  const { step, input } = u;
  const fn = deps.catalogue().get(step.type)?.fn;
  const policy = resolvePolicy(step, fn, deps.defaults);
  const firstStart = new Date();
  const rowOf = (attempt: number) => ({
    instance_id: m.run_id,
    step_name: u.name,
    step_index: u.index,
    step_type: step.type,
    input_data: input,
    retry_count: attempt - 1,
    started_at: firstStart,
  });
  let config = step.config ?? {};
  if (templated(step)) {
    // data passing: {{ input.x }}, {{ run.input.x }}, {{ steps.<earlier step>.x }}, {{ item }} (recorded outputs on resume)
    try {
      config = renderTemplate(config, u.roots) as Record<string, unknown>;
    } catch (err) {
      const error = { code: 'E_STEP_CONFIG', message: `step "${u.name}": ${(err as Error).message}` };
      void deps.writer.writeStep({
        ...rowOf(1),
        status: 'failed',
        output_data: null,
        error_code: error.code,
        error_message: error.message,
        completed_at: new Date(),
        logs: null,
      });
      return { ok: false, error };
    }
  }
  return runAttempts({
    policy,
    stopped: u.stopped,
    sleepUnlessStopped: u.sleepUnlessStopped,
    attempt: async (attempt) => {
      if (!deps.isInline(step.type)) {
        // visible while it runs (an inline step finishes before the row could be flushed)
        void deps.writer.writeStep({
          ...rowOf(attempt),
          status: 'running',
          output_data: null,
          error_code: null,
          error_message: null,
          completed_at: null,
          logs: null,
        });
      }
      const t0 = performance.now();
      const outcome = await deps.runAttempt(
        {
          type: step.type,
          input,
          config,
          runId: m.run_id,
          workflowId: wf.id,
          stepName: u.name,
          attempt,
          runInput: m.input,
          steps: u.roots.steps,
          timeoutMs: policy.timeoutMs,
        },
        u.cancelled,
      );
      deps.metrics.stepDuration.observe({ type: step.type, status: outcome.ok ? 'completed' : 'failed' }, (performance.now() - t0) / 1000);
      return outcome.ok ? { ...outcome, output: asStored(outcome.output) } : outcome;
    },
    record: (r) =>
      void deps.writer.writeStep({
        ...rowOf(r.attempt),
        status: r.status,
        output_data: r.output,
        error_code: r.error?.code ?? null,
        error_message: r.error?.message ?? null,
        completed_at: r.completedAt,
        logs: r.logs,
      }),
    retrying: (attempt, delay, error) => {
      deps.metrics.stepRetries.inc({ type: step.type });
      deps.log.debug({ run_id: m.run_id, step: u.name, attempt, delay, code: error.code }, 'step failed; retrying');
    },
  });
}

/**
 * An output as Postgres will give it back on resume (JSON: Dates as strings, NaN as null,
 * undefined fields gone, no shared references), so that conditions, templates and later
 * steps read the same value on the first delivery as on a redelivery.
 */
function asStored(v: unknown): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v;
  if (v === undefined) return null;
  try {
    return JSON.parse(JSON.stringify(v) ?? 'null') as unknown;
  } catch {
    return v; // not serializable (a cycle, a BigInt): the writer reports what it stores
  }
}

/** Whether a step's config holds `{{ }}`, once per step definition (definitions never change). */
const templatedSteps = new WeakMap<LeafStep, boolean>();
function templated(step: LeafStep): boolean {
  let t = templatedSteps.get(step);
  if (t === undefined) templatedSteps.set(step, (t = hasTemplate(step.config)));
  return t;
}

/** Commits the final row, then acks, then tells whoever waits. */
async function finish(d: Delivery, deps: RunDriverDeps, m: RunMessage, wanted: InstanceRow, wantedError: PlainError | null): Promise<void> {
  // what was committed is what the waiter hears (Postgres may have refused the payload)
  // with the postgres queue the run leaves the queue in the statement that commits its final row
  const stored = await deps.writer.writeRun(wanted, { dequeue: d.dequeue });
  const row = stored ?? wanted;
  const error = stored?.error_code ? { code: stored.error_code, message: stored.error_message ?? '' } : wantedError;
  d.ack({ dequeued: d.dequeue !== undefined });
  const completedAt = row.completed_at ?? new Date();
  const status: RunStatus = row.status;
  if (status === 'completed') deps.metrics.runsCompleted.inc();
  else deps.metrics.runsFailed.inc();
  deps.metrics.runDuration.observe({ status }, (completedAt.getTime() - m.accepted_at) / 1000);
  if (m.reply) {
    const result: RunResult = {
      run_id: m.run_id,
      status,
      output: row.output_data,
      error: error ? { code: error.code, message: row.error_message ?? error.message } : null,
      started_at: row.started_at?.getTime(),
      completed_at: completedAt.getTime(),
    };
    deps.publishResult(m.reply, result); // too large for one message, the queue sends it partial: the waiter reads the record
  }
}

/** The record of a parallel, map or choice node: its output is the joined result, its log what it decided. */
function nodeRow(m: RunMessage, e: NodeEvent): StepRow {
  const final = e.status !== 'running';
  return {
    instance_id: m.run_id,
    step_name: e.name,
    step_index: e.index,
    step_type: e.kind,
    status: e.status,
    input_data: e.input,
    output_data: final ? e.output : null,
    retry_count: 0,
    started_at: e.startedAt,
    completed_at: final ? new Date() : null,
    error_code: e.error?.code ?? null,
    error_message: e.error?.message ?? null,
    logs: e.note ? [{ t: e.startedAt.getTime(), level: 'info', msg: e.note }] : null,
  };
}

function baseRow(m: RunMessage, wf: Workflow | null, deliveries: number): InstanceRow {
  return {
    id: m.run_id,
    // a run of a workflow Postgres does not have cannot reference it (foreign key); its id is in the error
    workflow_id: wf ? m.workflow_id : null,
    workflow_name: wf?.name ?? '',
    workflow_version: wf?.version ?? '',
    status: 'running',
    input_data: m.input,
    output_data: null,
    error_message: null,
    error_code: null,
    started_at: null,
    completed_at: null,
    accepted_at: new Date(m.accepted_at),
    deliveries,
    executor_host: HOST,
  };
}
