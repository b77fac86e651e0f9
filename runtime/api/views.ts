import type { HotRunStatus } from '../cache/index.js';
import type { RunRecord, StepRecord } from '../store/index.js';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const span = (a: Date | null | undefined, b: Date | null | undefined) => (a && b ? b.getTime() - a.getTime() : null);

/** A run as the API shows it (GET /api/v1/executions/:run_id). */
export function runView(r: RunRecord, steps: StepRecord[] | null) {
  return {
    run_id: r.id,
    workflow_id: r.workflow_id,
    workflow_name: r.workflow_name || null,
    workflow_version: r.workflow_version || null,
    status: r.status,
    input: r.input_data ?? null,
    output: r.output_data ?? null,
    error: r.error_code || r.error_message ? { code: r.error_code, message: r.error_message } : null,
    accepted_at: iso(r.accepted_at),
    started_at: iso(r.started_at),
    completed_at: iso(r.completed_at),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    duration_ms: span(r.started_at, r.completed_at),
    deliveries: r.deliveries,
    parent_run_id: r.parent_run_id ?? null,
    redrives: r.redrives ?? 0,
    ...(steps ? { steps: steps.map(stepView) } : {}),
  };
}

export function stepView(s: StepRecord) {
  return {
    name: s.step_name,
    type: s.step_type,
    index: s.step_index,
    status: s.status,
    input: s.input_data ?? null,
    output: s.output_data ?? null,
    error:
      s.error_code || s.error_message
        ? { code: s.error_code, message: s.error_message, ...(s.error_stack ? { stack: s.error_stack } : {}) }
        : null,
    ...(s.status === 'waiting' ? { waiting_for: s.waiting_for ?? null, wake_at: iso(s.wake_at) } : {}),
    ...(s.history?.length ? { history: s.history } : {}),
    attempts: (s.retry_count ?? 0) + 1,
    started_at: iso(s.started_at),
    completed_at: iso(s.completed_at),
    duration_ms: span(s.started_at, s.completed_at),
    logs: s.logs ?? [],
  };
}

/** A run known only from its hot status in Redis (accepted, not yet written to Postgres). */
export function hotRunView(h: HotRunStatus) {
  return {
    run_id: h.run_id,
    workflow_id: h.workflow_id,
    status: h.status,
    input: null,
    output: null,
    error: h.error_code ? { code: h.error_code, message: null } : null,
    accepted_at: h.accepted_at,
    started_at: h.started_at ?? null,
    completed_at: h.completed_at ?? null,
    steps: [],
  };
}

/** A run in a list (no payloads). */
export function runSummary(r: RunRecord) {
  return withoutPayloads(runView(r, null));
}

/** A run known only from Redis, in a list. */
export function hotRunSummary(h: HotRunStatus) {
  return withoutPayloads(hotRunView(h));
}

function withoutPayloads<T extends { input: unknown; output: unknown; steps?: unknown }>(v: T): Omit<T, 'input' | 'output' | 'steps'> {
  const { input: _i, output: _o, steps: _s, ...rest } = v;
  return rest;
}
