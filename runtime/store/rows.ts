/** Row shapes of the three tables, as the runtime writes and reads them. */

export type RunStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export type StepStatus = 'running' | 'completed' | 'failed' | 'skipped';
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
}
