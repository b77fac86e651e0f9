/** Row shapes of the three tables, as the runtime writes and reads them. */

/** `waiting`: the run holds nothing and waits (a sleep, a signal, an event, a child run); see store/waits.ts */
export type RunStatus = 'queued' | 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled';
export type StepStatus = 'running' | 'waiting' | 'completed' | 'failed' | 'skipped';
export const FINAL_RUN_STATUSES: readonly RunStatus[] = ['completed', 'failed', 'cancelled'];

export interface WorkflowRow {
  id: string;
  name: string;
  description: string | null;
  definition: unknown;
  version: string;
  status: string;
  created_at: Date;
  updated_at: Date;
  created_by: string | null;
  updated_by: string | null;
}

export interface InstanceRow {
  id: string;
  /** null only for a run whose workflow does not exist (it failed with E_WORKFLOW_NOT_FOUND) */
  workflow_id: string | null;
  workflow_name: string;
  workflow_version: string;
  status: RunStatus;
  input_data: unknown;
  output_data: unknown;
  error_message: string | null;
  error_code: string | null;
  started_at: Date | null;
  completed_at: Date | null;
  accepted_at: Date | null;
  deliveries: number;
  executor_host: string | null;
  /** the run whose `workflow` step started this one */
  parent_run_id?: string | null;
}

export interface StepRow {
  instance_id: string;
  step_name: string;
  step_index: number;
  step_type: string;
  status: StepStatus;
  input_data: unknown;
  output_data: unknown;
  error_message: string | null;
  error_code: string | null;
  retry_count: number;
  started_at: Date | null;
  completed_at: Date | null;
  logs: unknown;
  /** a waiting step: until when (a sleep's end, or its timeout), and what for (`signal "approved"`) */
  wake_at?: Date | null;
  waiting_for?: string | null;
  /** a function's stack, its frames mapped to the .ts sources */
  error_stack?: string | null;
}
