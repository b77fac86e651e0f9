/** The API's answers as the console reads them (their full shapes: GET /api/v1/openapi.json). */
export type RunStatus = 'queued' | 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled';
export const RUN_STATUSES: RunStatus[] = ['queued', 'running', 'waiting', 'completed', 'failed', 'cancelled'];
export const FINAL: RunStatus[] = ['completed', 'failed', 'cancelled'];

export interface ErrorInfo {
  code: string;
  message: string;
  stack?: string;
  details?: unknown;
}

export interface RunSummary {
  run_id: string;
  workflow_id: string;
  workflow_name: string | null;
  workflow_version: string | null;
  status: RunStatus;
  error: ErrorInfo | null;
  accepted_at: string | null;
  started_at: string | null;
  completed_at: string | null;
  duration_ms: number | null;
  deliveries: number;
  parent_run_id: string | null;
  redrives: number;
}

export interface LogLine {
  t: string;
  level: string;
  msg: string;
  data?: unknown;
  attempt?: number;
}

export interface StepRecord {
  name: string;
  type: string;
  index: number;
  status: 'running' | 'waiting' | 'completed' | 'failed';
  input: unknown;
  output: unknown;
  error: ErrorInfo | null;
  attempts: number;
  started_at: string | null;
  completed_at: string | null;
  duration_ms: number | null;
  logs: LogLine[];
  waiting_for?: string | null;
  wake_at?: string | null;
  history?: { status: string; attempts: number; error: ErrorInfo | null; started_at: string | null; completed_at: string | null }[];
}

export interface Run extends RunSummary {
  input: unknown;
  output: unknown;
  steps: StepRecord[];
}

export interface StepDef {
  name: string;
  type?: string;
  config?: unknown;
  parallel?: { branches: { name: string; steps: StepDef[] }[] };
  map?: { items: unknown; concurrency?: number; steps: StepDef[] };
  choice?: { branches: { name: string; when: unknown; steps: StepDef[] }[]; default?: StepDef[] };
  catch?: StepDef[];
  timeout?: unknown;
  retry?: unknown;
}

export interface Workflow {
  id: string;
  name: string;
  version: string;
  status: string;
  description: string | null;
  definition: { steps: StepDef[]; triggers?: { event: string }[] };
  created_at: string;
}

export interface FunctionInfo {
  name: string;
  kind: 'builtin' | 'function';
  description: string | null;
  input_schema: unknown;
  output_schema: unknown;
  config_schema: unknown;
  timeout_ms: number | null;
  retry: unknown;
  concurrency: number | null;
  memory_mb: number | null;
}

export interface Schedule {
  id: string;
  workflow_id: string;
  workflow_name: string;
  cron: string;
  timezone: string;
  paused: boolean;
  next_tick: string | null;
  last_tick: string | null;
  last_run_id: string | null;
  overlap: string;
  catchup: string;
}

export interface Overview {
  now: string;
  window_s: number;
  bucket_s: number;
  series: { t: string; started: number; completed: number; failed: number; cancelled: number }[];
  totals: { started: number; completed: number; failed: number; cancelled: number; success_rate: number | null };
  run_duration_ms: { p50: number | null; p95: number | null; p99: number | null };
  step_duration_ms: { p50: number | null; p95: number | null; p99: number | null };
  runs_now: { queued: number; running: number; waiting: number };
  queue: { driver: string; pending: number | null };
  executors: {
    id: string;
    host: string;
    pid: number;
    started_at: string;
    last_seen: string;
    slots: number;
    in_flight: number;
    threads: number;
    utilization: number;
  }[];
}
