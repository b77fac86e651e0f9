import { Type, type TSchema } from '@sinclair/typebox';

/**
 * The shapes of the API's answers, for the OpenAPI document (api/openapi.ts). The request
 * bodies are the schemas the API validates with (api/body.ts), so they cannot drift; these are
 * checked against real answers by test/e2e/openapi.test.ts. Fields are listed, not closed: an
 * answer may carry more (clients ignore what they do not know).
 */
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Time = Nullable(Type.String({ format: 'date-time' }));
const Id = Type.String({ format: 'uuid' });
const Any = Type.Unknown();

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable: see the error codes in docs/api.md', examples: ['E_VALIDATION'] }),
      message: Type.String({ description: 'what went wrong and what to do about it' }),
      details: Type.Optional(Any),
    }),
  },
  { $id: 'Error' },
);

const RunError = Nullable(
  Type.Object({ code: Nullable(Type.String()), message: Nullable(Type.String()), stack: Type.Optional(Type.String()) }),
);

export const StepView = Type.Object(
  {
    name: Type.String({ description: 'recorded name: `price`, `enrich/stock/reserve`, `resize[3]/thumb`, `pay#catch/refund`' }),
    type: Type.String(),
    index: Type.Integer(),
    status: Type.Union(['running', 'waiting', 'completed', 'failed', 'skipped'].map((s) => Type.Literal(s))),
    input: Any,
    output: Any,
    error: RunError,
    waiting_for: Type.Optional(Nullable(Type.String())),
    wake_at: Type.Optional(Time),
    history: Type.Optional(Type.Array(Any)),
    attempts: Type.Integer({ minimum: 1 }),
    started_at: Time,
    completed_at: Time,
    duration_ms: Nullable(Type.Number()),
    logs: Type.Array(Any),
  },
  { $id: 'Step' },
);

const RunStatus = Type.Union(['queued', 'running', 'waiting', 'completed', 'failed', 'cancelled'].map((s) => Type.Literal(s)));

const RunFields = {
  run_id: Id,
  workflow_id: Nullable(Type.String()),
  workflow_name: Type.Optional(Nullable(Type.String())),
  workflow_version: Type.Optional(Nullable(Type.String())),
  status: RunStatus,
  error: RunError,
  accepted_at: Time,
  started_at: Time,
  completed_at: Time,
};

export const RunView = Type.Object(
  {
    ...RunFields,
    input: Any,
    output: Any,
    duration_ms: Type.Optional(Nullable(Type.Number())),
    deliveries: Type.Optional(Type.Integer()),
    parent_run_id: Type.Optional(Nullable(Id)),
    redrives: Type.Optional(Type.Integer()),
    steps: Type.Array(StepView),
  },
  { $id: 'Run' },
);

export const RunList = Type.Object(
  {
    executions: Type.Array(Type.Object(RunFields)),
    next: Nullable(Type.String({ description: 'pass as `before` for the next page' })),
  },
  { $id: 'RunList' },
);

export const ExecuteAnswer = Type.Object(
  {
    run_id: Id,
    workflow_id: Type.String(),
    workflow_name: Type.String(),
    workflow_version: Type.String(),
    status: RunStatus,
    accepted_at: Type.Optional(Type.String({ format: 'date-time' })),
    deduplicated: Type.Optional(Type.Boolean()),
    wait_timed_out: Type.Optional(Type.Boolean()),
    output: Type.Optional(Any),
    error: Type.Optional(RunError),
    duration_ms: Type.Optional(Nullable(Type.Number())),
  },
  { $id: 'ExecuteAnswer' },
);

export const Accepted = Type.Object(
  { run_id: Id, status: Type.String() },
  { $id: 'Accepted', description: 'a cancel (`cancelling`, or `cancelled` when nothing drove the run) or a retry (`queued`)' },
);

export const SignalAnswer = Type.Object(
  { run_id: Id, signal: Type.String(), delivered: Type.Boolean({ description: 'false: stored for the first step that waits for it' }) },
  { $id: 'SignalAnswer' },
);

export const EventAnswer = Type.Object(
  {
    event_id: Type.String(),
    name: Type.String(),
    duplicate: Type.Boolean(),
    started: Type.Array(Type.Object({ run_id: Id, workflow_id: Type.String(), workflow_name: Type.String() })),
    resumed: Type.Integer(),
  },
  { $id: 'EventAnswer' },
);

export const WorkflowView = Type.Object(
  {
    id: Id,
    name: Type.String(),
    version: Type.String(),
    status: Type.String(),
    description: Nullable(Type.String()),
    definition: Type.Object({}, { description: 'docs/workflows.md' }),
    created_at: Type.String(),
    updated_at: Type.String(),
  },
  { $id: 'Workflow' },
);

export const WorkflowList = Type.Object({ workflows: Type.Array(WorkflowView), next: Nullable(Type.String()) }, { $id: 'WorkflowList' });

export const FunctionList = Type.Object(
  {
    functions: Type.Array(
      Type.Object({
        name: Type.String(),
        kind: Type.Union([Type.Literal('builtin'), Type.Literal('function')]),
        description: Nullable(Type.String()),
        input_schema: Any,
        output_schema: Any,
        config_schema: Any,
      }),
    ),
  },
  { $id: 'FunctionList' },
);

export const ScheduleView = Type.Object(
  {
    id: Id,
    workflow_id: Type.String(),
    workflow_name: Type.String(),
    follows_latest_version: Type.Boolean(),
    cron: Type.String(),
    timezone: Type.String(),
    input_data: Any,
    overlap: Type.String(),
    catchup: Type.String(),
    paused: Type.Boolean(),
    next_tick: Time,
    last_tick: Time,
    last_run_id: Nullable(Type.String()),
    created_at: Type.String(),
    recent_ticks: Type.Optional(Type.Array(Type.Object({ tick: Type.String(), outcome: Type.String(), run_id: Nullable(Type.String()) }))),
  },
  { $id: 'Schedule' },
);

export const ScheduleList = Type.Object({ schedules: Type.Array(ScheduleView) }, { $id: 'ScheduleList' });
export const Deleted = Type.Object({ id: Id, deleted: Type.Literal(true) }, { $id: 'Deleted' });

const Count = Type.Integer({ minimum: 0 });
const Durations = (of: string) =>
  Type.Object(
    {
      p50: Nullable(Type.Number()),
      p95: Nullable(Type.Number()),
      p99: Nullable(Type.Number()),
      samples: Type.Integer({ minimum: 0, description: `how many ${of} the percentiles are over (null percentiles: none)` }),
    },
    { description: `ms, started to ended, over ${of} that ended in the window (the latest ones, see docs/api.md)` },
  );

export const Overview = Type.Object(
  {
    now: Type.String({ format: 'date-time' }),
    window_s: Type.Integer({ description: 'the `minutes` asked for, in seconds' }),
    bucket_s: Type.Integer({ description: 'chosen so that the series has at most 90 points' }),
    series: Type.Array(
      Type.Object({
        t: Type.String({ format: 'date-time', description: "the bucket's start" }),
        started: Count,
        completed: Count,
        failed: Count,
        cancelled: Count,
      }),
      { description: 'every bucket of the window, oldest first, zeros included; the last one holds `now` and is still filling' },
    ),
    totals: Type.Object({
      started: Count,
      completed: Count,
      failed: Count,
      cancelled: Count,
      success_rate: Nullable(Type.Number({ minimum: 0, maximum: 1, description: 'completed / (completed + failed)' })),
    }),
    run_duration_ms: Durations('runs'),
    step_duration_ms: Durations('steps'),
    runs_now: Type.Object({ queued: Count, running: Count, waiting: Count }),
    queue: Type.Object({
      driver: Type.Union([Type.Literal('nats'), Type.Literal('postgres')]),
      pending: Nullable(Count),
      delivered: Nullable(Count),
    }),
    executors: Type.Array(
      Type.Object({
        id: Type.String(),
        host: Type.String(),
        pid: Type.Integer(),
        started_at: Type.String({ format: 'date-time' }),
        last_seen: Type.String({ format: 'date-time' }),
        slots: Count,
        in_flight: Count,
        threads: Count,
        utilization: Type.Number({ minimum: 0, maximum: 1 }),
      }),
    ),
  },
  { $id: 'Overview' },
);

export const Health = Type.Object({ status: Type.String(), role: Type.String(), uptime_s: Type.Number() }, { $id: 'Health' });
export const Ready = Type.Object(
  {
    status: Type.String(),
    role: Type.String(),
    checks: Type.Record(Type.String(), Type.Object({ ok: Type.Boolean(), latency_ms: Type.Number() })),
  },
  { $id: 'Ready' },
);

/** Every named schema, for `components.schemas`. */
export const SCHEMAS: TSchema[] = [
  ErrorBody,
  StepView,
  RunView,
  RunList,
  ExecuteAnswer,
  Accepted,
  SignalAnswer,
  EventAnswer,
  WorkflowView,
  WorkflowList,
  FunctionList,
  ScheduleView,
  ScheduleList,
  Deleted,
  Overview,
  Health,
  Ready,
];
