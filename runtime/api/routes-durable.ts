import { uuidv7 } from '../ids.js';
import { RuntimeError } from '../errors/index.js';
import { nextTick, parseCron, type Resumer } from '../engine/index.js';
import { isUuid, type Registry } from '../registry/index.js';
import type { ScheduleRecords, ScheduleRow, WaitRecords } from '../store/index.js';
import { EventBody, intParam, json, parseBody, ScheduleBody, SignalBody } from './body.js';
import type { Route } from './http-server.js';

export interface DurableRouteDeps {
  registry: Registry;
  waits: WaitRecords;
  schedules: ScheduleRecords;
  resumer: Resumer;
  /** a run accepted and not yet written to PostgreSQL (the hot cache, or the postgres queue, knows it) */
  accepted: (runId: string) => Promise<boolean>;
}

const NAME_RE = /^[\w.:/-]{1,255}$/;

/**
 * Signals to runs, events, schedules: the durable-time-and-events endpoints (docs/api.md).
 * Each stores what it was given before it answers (202 means durable).
 */
export function durableRoutes(d: DurableRouteDeps): Route[] {
  return [
    {
      method: 'post',
      pattern: '/api/v1/executions/:run_id/signals/:name',
      scope: 'execute',
      handler: async (req) => {
        const runId = runIdOf(req.params.run_id);
        const name = req.params.name;
        if (!NAME_RE.test(name)) {
          throw new RuntimeError('E_VALIDATION', 'a signal name is 1 to 255 letters, digits and _ . : / -');
        }
        const body = req.body && req.body.length ? parseBody(req, SignalBody) : null;
        let r = await d.waits.signal(runId, name, body);
        // accepted moments ago and not yet written by an executor: the signal is kept for it
        if (r.outcome === 'unknown' && (await d.accepted(runId))) r = await d.waits.signal(runId, name, body, true);
        if (r.outcome === 'unknown') throw new RuntimeError('E_RUN_NOT_FOUND', `no run ${runId}`);
        if (r.outcome === 'final') {
          throw new RuntimeError('E_RUN_FINAL', `run ${runId} is already ${r.status}; a signal to it would never be read`, {
            status: r.status,
          });
        }
        await d.resumer.resume(r.resumes);
        // delivered: a step was waiting for it; stored: the first step that waits for it takes it
        return json(202, { run_id: runId, signal: name, delivered: r.outcome === 'delivered' });
      },
    },
    {
      method: 'post',
      pattern: '/api/v1/events',
      scope: 'execute',
      handler: async (req) => {
        const body = parseBody(req, EventBody);
        if (!NAME_RE.test(body.name)) throw new RuntimeError('E_VALIDATION', 'an event name is 1 to 255 letters, digits and _ . : / -');
        const trigger = JSON.stringify([{ event: body.name }]);
        const r = await d.waits.event({ id: uuidv7(), name: body.name, dedupeId: body.id ?? null, data: body.data ?? null }, async (tx) => {
          // the latest active version of each workflow name (as execute by name picks it) whose
          // definition lists the event in its triggers: one statement, inside the event's lock
          const rows = await tx<{ id: string; name: string; version: string }[]>`
            SELECT id::text, name, version FROM (
              SELECT DISTINCT ON (name) id, name, version, definition FROM workflows
              WHERE status = 'active'
                AND name IN (SELECT name FROM workflows WHERE definition -> 'triggers' @> ${trigger}::text::jsonb)
              ORDER BY name, created_at DESC, id DESC) latest
            WHERE definition -> 'triggers' @> ${trigger}::text::jsonb`;
          return rows.map((w) => ({
            runId: uuidv7(),
            workflowId: w.id,
            workflowName: w.name,
            workflowVersion: w.version,
            input: body.data ?? {},
            origin: `event:${body.name}:${body.id ?? uuidv7()}:${w.id}`,
          }));
        });
        await Promise.all([d.resumer.start(r.started), d.resumer.resume(r.resumes)]);
        return json(202, {
          event_id: r.id,
          name: body.name,
          duplicate: r.duplicate,
          started: r.started.map((s) => ({ run_id: s.runId, workflow_id: s.workflowId, workflow_name: s.workflowName })),
          resumed: r.resumes.length,
        });
      },
    },
    {
      method: 'post',
      pattern: '/api/v1/schedules',
      scope: 'admin',
      handler: async (req) => {
        const body = parseBody(req, ScheduleBody);
        const wf = await d.registry.resolve(body.workflow_id, body.version);
        const timezone = body.timezone ?? 'UTC';
        let next: Date | null;
        try {
          parseCron(body.cron, timezone);
          next = nextTick(body.cron, timezone, new Date());
        } catch (err) {
          throw new RuntimeError('E_VALIDATION', `invalid schedule: ${(err as Error).message}`);
        }
        if (!next) throw new RuntimeError('E_VALIDATION', `invalid schedule: "${body.cron}" never fires`);
        const row = await d.schedules.create({
          id: uuidv7(),
          workflow_id: wf.id,
          workflow_name: wf.name,
          // by name (no version): each tick runs the latest active version
          follow_latest: !isUuid(body.workflow_id) && !body.version,
          cron: body.cron,
          timezone,
          input_data: body.input_data ?? {},
          overlap: body.overlap ?? 'skip',
          catchup: body.catchup ?? 'latest',
          next_tick: next,
        });
        return json(201, scheduleView(row));
      },
    },
    {
      method: 'get',
      pattern: '/api/v1/schedules',
      scope: 'read',
      handler: async (req) => {
        const limit = intParam(req, 'limit', 100, 1, 500);
        const rows = await d.schedules.list(limit, req.query.get('workflow_name') || undefined);
        return json(200, { schedules: rows.map(scheduleView) });
      },
    },
    {
      method: 'get',
      pattern: '/api/v1/schedules/:id',
      scope: 'read',
      handler: async (req) => {
        const row = await existing(d, req.params.id);
        const ticks = await d.schedules.ticks(row.id, 20);
        return json(200, {
          ...scheduleView(row),
          recent_ticks: ticks.map((t) => ({ tick: t.tick.toISOString(), outcome: t.outcome, run_id: t.run_id })),
        });
      },
    },
    {
      method: 'delete',
      pattern: '/api/v1/schedules/:id',
      scope: 'admin',
      handler: async (req) => {
        const row = await existing(d, req.params.id);
        await d.schedules.remove(row.id);
        return json(200, { id: row.id, deleted: true });
      },
    },
    ...(['pause', 'resume'] as const).map((action): Route => ({
      method: 'post',
      pattern: `/api/v1/schedules/:id/${action}`,
      scope: 'admin',
      handler: async (req) => {
        const row = await existing(d, req.params.id);
        const next = nextTick(row.cron, row.timezone, new Date());
        const updated = await d.schedules.setPaused(row.id, action === 'pause', next);
        return json(200, scheduleView(updated ?? row));
      },
    })),
    {
      method: 'post',
      pattern: '/api/v1/executions/:run_id/retry',
      scope: 'execute',
      handler: async (req) => {
        const runId = runIdOf(req.params.run_id);
        const r = await d.waits.redrive(runId);
        if (r.status === null) throw new RuntimeError('E_RUN_NOT_FOUND', `no run ${runId}`);
        if (!r.resume) {
          throw new RuntimeError('E_RUN_NOT_FAILED', `run ${runId} is ${r.status}; only a failed or cancelled run can be retried`, {
            status: r.status,
          });
        }
        await d.resumer.resume([r.resume]);
        return json(202, { run_id: runId, status: 'queued', redriven_from: r.status });
      },
    },
  ];
}

function runIdOf(id: string): string {
  if (!isUuid(id)) throw new RuntimeError('E_VALIDATION', 'run_id must be a UUID as returned by POST /api/v1/execute');
  return id.toLowerCase();
}

async function existing(d: DurableRouteDeps, id: string): Promise<ScheduleRow> {
  if (!isUuid(id)) throw new RuntimeError('E_VALIDATION', 'a schedule id is a UUID as returned by POST /api/v1/schedules');
  const row = await d.schedules.get(id.toLowerCase());
  if (!row) throw new RuntimeError('E_SCHEDULE_NOT_FOUND', `no schedule ${id}; list them with GET /api/v1/schedules`);
  return row;
}

function scheduleView(s: ScheduleRow) {
  return {
    id: s.id,
    workflow_id: s.workflow_id,
    workflow_name: s.workflow_name,
    follows_latest_version: s.follow_latest,
    cron: s.cron,
    timezone: s.timezone,
    input_data: s.input_data ?? {},
    overlap: s.overlap,
    catchup: s.catchup,
    paused: s.paused,
    next_tick: s.paused ? null : (s.next_tick?.toISOString() ?? null),
    last_tick: s.last_tick?.toISOString() ?? null,
    last_run_id: s.last_run_id,
    created_at: s.created_at.toISOString(),
  };
}
