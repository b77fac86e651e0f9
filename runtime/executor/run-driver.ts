import { hostname } from 'node:os';
import { uuidv7 } from '../ids.js';
import {
  backoffDelay,
  DurableConfigError,
  hasTemplate,
  isDurableStep,
  renderTemplate,
  resolvePolicy,
  runAttempts,
  runDefinition,
  shouldRetry,
  sleepEnd,
  timeoutEnd,
  timeoutHint,
  childError,
  type CancelSignal,
  type LeafStep,
  type NodeEvent,
  type PolicyDefaults,
  type Resumer,
  type RunOutcome,
  type Unit,
  type UnitResult,
} from '../engine/index.js';
import { RuntimeError, type PlainError } from '../errors/index.js';
import { labelled, type Logger, type Metrics } from '../observability/index.js';
import { keepAliveInterval, type Delivery, type RunMessage, type RunResult } from '../queue/index.js';
import type { Registry, Workflow } from '../registry/index.js';
import {
  FINAL_RUN_STATUSES,
  type BatchWriter,
  type CancelRecords,
  type InstanceRow,
  type RunRecords,
  type RunStatus,
  type StepRow,
  type WaitRecords,
  type WaitSpec,
} from '../store/index.js';
import type { Cancellations } from './cancellations.js';
import type { CatalogueEntry } from './catalogue.js';
import type { StepOutcome, StepTask } from './protocol.js';

export interface RunDriverDeps {
  runs: RunRecords;
  /** durable waits (sleep, signals, events, child runs) */
  waits: WaitRecords;
  /** sends resumes and the runs the system starts (child runs) */
  resumer: Resumer;
  cancels: CancelRecords;
  registry: Registry;
  writer: BatchWriter;
  /** runs one attempt: inline for trusted built-ins, else on the pool */
  runAttempt: (task: Omit<StepTask, 'seq' | 'deadline'>, cancelled?: CancelSignal) => Promise<StepOutcome>;
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
 * Drives one run message to a final state, or to sleep: resumes from recorded steps when
 * redelivered or woken, runs each remaining step on the pool with retries and timeouts,
 * records every step through the batched writer, and acks the message only after the run's
 * final row is committed. A step that waits durably (sleep, signal, event, child run) parks
 * its branch; once nothing else of the run can go on, the drive's writes are awaited, the run
 * is marked `waiting` (unless a wait it parked on ended meanwhile: then it goes on here) and
 * the message is acked: the run holds nothing until it is queued again for its next drive.
 * (Redis is not touched: once an executor has a run, Postgres answers for it within a flush
 * interval, and the API's "queued" entry covers the moments before.)
 */
export async function driveRun(d: Delivery, deps: RunDriverDeps): Promise<void> {
  const m = d.data;
  const { metrics } = deps;
  const keepalive = keepalives(deps);
  keepalive.add(d);
  metrics.runsInFlight.inc();
  try {
    const redelivered = d.deliveryCount > 1;
    if (m.drive && !(await deps.waits.claim(m.run_id, m.drive, redelivered))) {
      d.ack(); // a resume already taken, or for a drive that is over (the run woke, or was cancelled)
      return;
    }
    const wf = await deps.registry.getById(m.workflow_id);
    const done = new Map<string, unknown>();
    let failed = new Map<string, PlainError>();
    if (redelivered || m.drive) {
      if (redelivered) metrics.redeliveries.inc();
      const prior = await deps.runs.progress(m.run_id);
      if (prior.run && (FINAL_RUN_STATUSES as string[]).includes(prior.run.status)) {
        d.ack(); // finished before; the ack was lost
        return;
      }
      if (!m.drive && prior.run && (prior.run.drive > 0 || prior.run.status === 'waiting')) {
        d.ack(); // the run has slept since this message was sent: its resume message drives it
        return;
      }
      for (const s of prior.completed) done.set(s.step_name, s.output_data);
      if (wf && hasCatch(wf.definition)) failed = caughtFailures(await deps.runs.steps(m.run_id));
    }

    const base = baseRow(m, wf, d.deliveryCount);
    if (!wf) {
      await finish(
        d,
        deps,
        m,
        runRow(base, { status: 'failed', error_code: 'E_WORKFLOW_NOT_FOUND', error_message: `workflow ${m.workflow_id} does not exist` }),
        null,
      );
      return;
    }
    const startedAt = new Date();
    // a resume of a run cancelled and then redriven: the cancel it heard is over (redrive removed its row)
    if (m.drive && deps.cancellations.isCancelled(m.run_id) && !(await deps.cancels.has(m.run_id))) deps.cancellations.forget(m.run_id);
    if (deps.cancellations.isCancelled(m.run_id)) {
      // cancelled while it waited in the queue
      await finish(
        d,
        deps,
        m,
        runRow(base, {
          status: 'cancelled',
          error_code: 'E_CANCELLED',
          error_message: 'the run was cancelled before it started',
          completed_at: startedAt,
        }),
        null,
      );
      return;
    }
    const running = deps.writer.writeRun(runRow(base, { status: 'running', started_at: startedAt }));
    running.catch(() => {}); // awaited where it matters (a durable wait, the suspension)

    const cancelled = deps.cancellations.track(m.run_id);
    let outcome: Exclude<RunOutcome, { suspended: true }>;
    try {
      for (;;) {
        const parked: string[] = [];
        const storeErrors: unknown[] = [];
        const writes: Promise<unknown>[] = [running];
        const track = (p: Promise<unknown>) => {
          p.catch(() => {});
          writes.push(p);
        };
        const o = await runDefinition(
          wf.definition,
          { runId: m.run_id, input: m.input, done, failed, cancelled },
          {
            step: (u) =>
              isDurableStep(u.step.type) ? durableUnit(deps, m, u, parked, running, storeErrors, track) : runUnit(deps, m, wf, u, track),
            node: (e) => track(deps.writer.writeStep(nodeRow(m, e))),
            waits: isDurableStep,
          },
        );
        if (storeErrors.length) throw storeErrors[0] as Error;
        if (!o.suspended) {
          outcome = o;
          break;
        }
        // every part of the run waits: what this drive recorded is committed before it sleeps
        await Promise.all(writes);
        const s = await deps.waits.suspend(m.run_id, parked, m.reply ?? null);
        if (s === 'resume') {
          // a wait ended while the rest of the run went on: go on here, from the records
          done.clear();
          for (const st of (await deps.runs.progress(m.run_id)).completed) done.set(st.step_name, st.output_data);
          if (hasCatch(wf.definition)) failed = caughtFailures(await deps.runs.steps(m.run_id));
          continue;
        }
        if (s === 'cancelled') {
          // cancelled while it was being put to sleep (suspend recorded it): tell whoever waits
          const error = { code: 'E_CANCELLED', message: 'the run was cancelled' };
          await finish(
            d,
            deps,
            m,
            runRow(base, { status: 'cancelled', error_code: error.code, error_message: error.message, completed_at: new Date() }),
            error,
          );
          await cancelChildren(deps, m, wf);
          return;
        }
        metrics.runsSuspended.inc();
        d.ack();
        return;
      }
    } finally {
      deps.cancellations.untrack(m.run_id);
    }
    if (!outcome.ok && cancelled.aborted) {
      await finish(
        d,
        deps,
        m,
        runRow(base, {
          status: 'cancelled',
          started_at: startedAt,
          completed_at: new Date(),
          error_code: 'E_CANCELLED',
          error_message: 'the run was cancelled',
        }),
        outcome.ok ? null : outcome.error,
      );
    } else if (outcome.ok) {
      await finish(
        d,
        deps,
        m,
        runRow(base, { status: 'completed', output_data: outcome.output, started_at: startedAt, completed_at: new Date() }),
        null,
      );
    } else {
      const err = outcome.error;
      await finish(
        d,
        deps,
        m,
        runRow(base, {
          status: 'failed',
          started_at: startedAt,
          completed_at: new Date(),
          error_code: err.code,
          error_message: `step "${outcome.step}" failed: ${err.message}`,
        }),
        err,
      );
    }
    if (!outcome.ok) await cancelChildren(deps, m, wf);
  } finally {
    keepalive.delete(d);
    metrics.runsInFlight.dec();
  }
}

/**
 * Keeps the messages of the runs being driven alive ("working" every ack_wait / 3, so none is
 * delivered again while it runs here): one timer for all of them, where a timer per run had cost
 * every run a few µs to set and clear. A message taken just after a beat gets its first "working"
 * one interval later, as with a timer of its own; the timer runs only while runs are in flight.
 */
class Keepalives {
  private readonly runs = new Set<Delivery>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly intervalMs: number) {}

  add(d: Delivery): void {
    this.runs.add(d);
    if (this.timer) return;
    this.timer = setInterval(() => {
      for (const r of this.runs) r.working();
    }, this.intervalMs);
    this.timer.unref();
  }

  delete(d: Delivery): void {
    this.runs.delete(d);
    if (this.runs.size || !this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
  }
}

const keepaliveByDeps = new WeakMap<RunDriverDeps, Keepalives>();
function keepalives(deps: RunDriverDeps): Keepalives {
  let k = keepaliveByDeps.get(deps);
  if (!k) keepaliveByDeps.set(deps, (k = new Keepalives(keepAliveInterval(deps.ackWaitMs))));
  return k;
}

/** A run that ended without completing: the child runs it started and no longer waits for are cancelled. */
async function cancelChildren(deps: RunDriverDeps, m: RunMessage, wf: Workflow): Promise<void> {
  if (!startsChildren(wf.definition)) return;
  await deps.resumer.cancel(m.run_id, false).catch((err: Error) => {
    deps.log.warn({ run_id: m.run_id, err: err.message }, 'child runs of an ended run not cancelled');
  });
}

const childSteps = new WeakMap<object, boolean>();
function startsChildren(def: object): boolean {
  let c = childSteps.get(def);
  if (c === undefined) childSteps.set(def, (c = /"type":"workflow"/.test(JSON.stringify(def))));
  return c;
}

/** Whether a definition has `catch` anywhere (only then do caught failures need reading), once per definition. */
const catches = new WeakMap<object, boolean>();
function hasCatch(def: object): boolean {
  let c = catches.get(def);
  if (c === undefined) catches.set(def, (c = JSON.stringify(def).includes('"catch"')));
  return c;
}

/**
 * The nodes whose catch steps have begun (a `<node>#catch/...` step is recorded): their failure
 * is settled, so a resumed drive goes straight to their catch steps instead of running them
 * again. By recorded name, with the node's recorded error.
 */
function caughtFailures(steps: { step_name: string; status: string; error_code: string | null; error_message: string | null }[]) {
  const failed = new Map<string, PlainError>();
  const byName = new Map(steps.map((s) => [s.step_name, s]));
  for (const s of steps) {
    let at = s.step_name.indexOf('#catch/');
    while (at >= 0) {
      const node = byName.get(s.step_name.slice(0, at));
      if (node?.status === 'failed')
        failed.set(node.step_name, { code: node.error_code ?? 'E_STEP_FAILED', message: node.error_message ?? '' });
      at = s.step_name.indexOf('#catch/', at + 1);
    }
  }
  return failed;
}

/**
 * A step that waits durably: registers its wait (or finds the one an earlier drive registered)
 * and answers its output when the wait has ended, or `suspended` (its branch parks) when not.
 * A wait that ended in an error (a timeout, a failed child) is retried as the step's policy
 * says (durable steps retry 0 times unless `retry` says otherwise), then fails the step.
 */
async function durableUnit(
  deps: RunDriverDeps,
  m: RunMessage,
  u: Unit,
  parked: string[],
  running: Promise<unknown>,
  errors: unknown[],
  track: (p: Promise<unknown>) => void,
): Promise<UnitResult> {
  try {
    return await durableAttempts(deps, m, u, parked, running, track);
  } catch (err) {
    // the store failed (not the step): the branch parks, the rest of the drive ends, and the
    // drive then fails as a whole so that the run is delivered again (nothing is left running)
    errors.push(err);
    return { ok: false, suspended: true };
  }
}

async function durableAttempts(
  deps: RunDriverDeps,
  m: RunMessage,
  u: Unit,
  parked: string[],
  running: Promise<unknown>,
  track: (p: Promise<unknown>) => void,
): Promise<UnitResult> {
  const { step } = u;
  const policy = resolvePolicy(step, { retry: { maxRetries: 0 } }, deps.defaults);
  const fail = (error: PlainError) => ({ ok: false as const, error });
  let config = step.config ?? {};
  try {
    if (templated(step)) config = renderTemplate(config, u.roots) as Record<string, unknown>;
  } catch (err) {
    return failConfig(deps, m, u, (err as Error).message, track);
  }
  await running; // the wait's step row refers to the run's row
  for (let attempt = 1; ; attempt++) {
    let spec: WaitSpec;
    try {
      spec = await waitSpec(deps, m, u, config, attempt);
    } catch (err) {
      // a config that cannot work, or a child workflow that does not exist (or is not active)
      if (err instanceof DurableConfigError || (err instanceof RuntimeError && err.code === 'E_WORKFLOW_NOT_FOUND')) {
        return failConfig(deps, m, u, err.message, track);
      }
      throw err;
    }
    const { answer, started } = await deps.waits.register(spec);
    if (started.length) await deps.resumer.start(started);
    if (answer.state === 'parked') {
      parked.push(answer.waitId);
      return { ok: false, suspended: true };
    }
    const r = answer.resolution;
    if (r.ok) return { ok: true, output: r.output };
    if (!shouldRetry(policy, attempt, r.error) || u.stopped()) return fail(r.error);
    if (await u.sleepUnlessStopped(backoffDelay(policy, attempt + 1))) return fail(r.error);
  }
}

/** What a durable step waits for, from its rendered config. */
async function waitSpec(deps: RunDriverDeps, m: RunMessage, u: Unit, config: Record<string, unknown>, attempt: number): Promise<WaitSpec> {
  const now = Date.now();
  const base = { runId: m.run_id, stepName: u.name, stepIndex: u.index, stepType: u.step.type, attempt, input: u.input };
  const name = (field: string) => {
    const v = config[field];
    if (typeof v !== 'string' || !v) throw new DurableConfigError(`"${field}" must be a non-empty string, got ${JSON.stringify(v)}`);
    return v;
  };
  switch (u.step.type) {
    case 'sleep': {
      const wakeAt = sleepEnd(config, now);
      return { ...base, kind: 'sleep', key: null, wakeAt, waitingFor: `sleep until ${wakeAt.toISOString()}` };
    }
    case 'wait_for_signal': {
      const signal = name('signal');
      return { ...base, kind: 'signal', key: signal, wakeAt: timeoutEnd(config, now), waitingFor: `signal "${signal}"` };
    }
    case 'wait_for_event': {
      const event = name('event');
      const match = config.match;
      if (match !== undefined && (typeof match !== 'object' || match === null || Array.isArray(match))) {
        throw new DurableConfigError(`"match" must be an object whose fields the event's data must contain`);
      }
      return { ...base, kind: 'event', key: event, match, wakeAt: timeoutEnd(config, now), waitingFor: `event "${event}"` };
    }
    default: {
      const ref = name('workflow_id');
      const version = config.version === undefined ? undefined : name('version');
      const child = await deps.registry.resolve(ref, version);
      if (child.status !== 'active')
        throw new DurableConfigError(
          `workflow "${child.name}" version "${child.version}" is ${child.status}; a child run needs an active version`,
        );
      const childRunId = uuidv7();
      return {
        ...base,
        kind: 'child',
        key: childRunId,
        wakeAt: timeoutEnd(config, now),
        waitingFor: `child run ${childRunId} of "${child.name}"`,
        child: {
          runId: childRunId,
          workflowId: child.id,
          workflowName: child.name,
          workflowVersion: child.version,
          input: config.input === undefined ? u.input : config.input,
          parentRunId: m.run_id,
          origin: `child:${childRunId}`,
        },
      };
    }
  }
}

/** A step whose config cannot be used (a template that fails, a bad durable config): recorded failed, E_STEP_CONFIG. */
function failConfig(deps: RunDriverDeps, m: RunMessage, u: Unit, why: string, track: (p: Promise<unknown>) => void): UnitResult {
  const error = { code: 'E_STEP_CONFIG', message: `step "${u.name}": ${why}` };
  track(
    deps.writer.writeStep({
      instance_id: m.run_id,
      step_name: u.name,
      step_index: u.index,
      step_type: u.step.type,
      input_data: u.input,
      retry_count: 0,
      started_at: new Date(),
      status: 'failed',
      output_data: null,
      error_code: error.code,
      error_message: error.message,
      completed_at: new Date(),
      logs: null,
    }),
  );
  return { ok: false, error };
}

/** Runs one step (a unit of the definition) with its retries and timeouts, recording each attempt. */
async function runUnit(
  deps: RunDriverDeps,
  m: RunMessage,
  wf: Workflow,
  u: Unit,
  track: (p: Promise<unknown>) => void,
): Promise<UnitResult> {
  const { step, input } = u;
  const fn = deps.catalogue().get(step.type)?.fn;
  const policy = resolvePolicy(step, fn, deps.defaults);
  const firstStart = new Date();
  /** the step's row at an attempt, with every column: what a state changes is assigned, not added */
  const rowOf = (attempt: number): StepRow => ({
    instance_id: m.run_id,
    step_name: u.name,
    step_index: u.index,
    step_type: step.type,
    status: 'running',
    input_data: input,
    output_data: null,
    retry_count: attempt - 1,
    started_at: firstStart,
    completed_at: null,
    error_code: null,
    error_message: null,
    logs: null,
    wake_at: null,
    waiting_for: null,
    error_stack: null,
  });
  let config = step.config ?? {};
  if (templated(step)) {
    // data passing: {{ input.x }}, {{ run.input.x }}, {{ steps.<earlier step>.x }}, {{ item }} (recorded outputs on resume)
    try {
      config = renderTemplate(config, u.roots) as Record<string, unknown>;
    } catch (err) {
      return failConfig(deps, m, u, (err as Error).message, track);
    }
  }
  return runAttempts({
    policy,
    stopped: u.stopped,
    sleepUnlessStopped: u.sleepUnlessStopped,
    attempt: async (attempt) => {
      if (!deps.isInline(step.type)) {
        // visible while it runs (an inline step finishes before the row could be flushed)
        track(deps.writer.writeStep(rowOf(attempt)));
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
          timeoutHint: timeoutHint(policy),
        },
        u.cancelled,
      );
      labelled(deps.metrics.stepDuration, { type: step.type, status: outcome.ok ? 'completed' : 'failed' }).observe(
        (performance.now() - t0) / 1000,
      );
      return outcome.ok ? { ...outcome, output: asStored(outcome.output) } : outcome;
    },
    record: (r) =>
      track(
        deps.writer.writeStep(
          Object.assign(rowOf(r.attempt), {
            status: r.status,
            output_data: r.output,
            error_code: r.error?.code ?? null,
            error_message: r.error?.message ?? null,
            error_stack: r.error?.stack ?? null,
            completed_at: r.completedAt,
            logs: r.logs,
          }),
        ),
      ),
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
  if (v === undefined) return null;
  // plain JSON already (most outputs): given back as it is, without the round trip
  if (isPlainJson(v, 0)) return v;
  try {
    return JSON.parse(JSON.stringify(v) ?? 'null') as unknown;
  } catch {
    return v; // not serializable (a cycle, a BigInt): the writer reports what it stores
  }
}

/**
 * Whether JSON would give `v` back as it is: null, booleans, strings, finite numbers, arrays of
 * such and plain objects of such without undefined fields, not too deep (a cycle is too deep).
 * A value met twice (shared, not a cycle) comes back as two copies: no step tells the difference.
 */
function isPlainJson(v: unknown, depth: number): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (typeof v !== 'object' || depth > 32) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!isPlainJson(v[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return false; // a Date, a Map, a class: JSON changes it
  for (const k in v) {
    if (!Object.prototype.hasOwnProperty.call(v, k)) return false; // an inherited field JSON would drop
    if (!isPlainJson((v as Record<string, unknown>)[k], depth + 1)) return false;
  }
  // symbol keys and non-enumerable fields are dropped by JSON, and toJSON would change it
  return Object.getOwnPropertySymbols(v).length === 0 && !('toJSON' in v);
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
  labelled(deps.metrics.runDuration, { status }).observe((completedAt.getTime() - m.accepted_at) / 1000);
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
  if (m.parent_run_id) {
    // a child run: its parent's `workflow` step ends with it (if this is lost, the engine's sweep does it)
    const r =
      status === 'completed'
        ? { ok: true as const, output: row.output_data }
        : { ok: false as const, error: childError(m.run_id, status, row.error_code, row.error_message) };
    await deps.waits.childEnded(m.parent_run_id, m.run_id, r).then(
      (resumes) => deps.resumer.resume(resumes),
      (err: Error) => deps.log.warn({ run_id: m.run_id, parent: m.parent_run_id, err: err.message }, 'parent not told; the engine does it'),
    );
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

/**
 * The run's row in another state: a copy of `b` with every column, `c` assigned over it. A
 * spread (`{ ...base, status }`) adds each property anew, and had been the costliest part of
 * writing a run's rows; assigning to properties a literal already has keeps its shape.
 */
function runRow(b: InstanceRow, c: Partial<InstanceRow>): InstanceRow {
  return Object.assign(
    {
      id: b.id,
      workflow_id: b.workflow_id,
      workflow_name: b.workflow_name,
      workflow_version: b.workflow_version,
      status: b.status,
      input_data: b.input_data,
      output_data: b.output_data,
      error_message: b.error_message,
      error_code: b.error_code,
      started_at: b.started_at,
      completed_at: b.completed_at,
      accepted_at: b.accepted_at,
      deliveries: b.deliveries,
      executor_host: b.executor_host,
      parent_run_id: b.parent_run_id ?? null,
    },
    c,
  );
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
    parent_run_id: m.parent_run_id ?? null,
  };
}
