export { ensureDatabase, openPostgres, pingPostgres, type Sql, type SocketTarget } from './postgres.js';
export { migrate, MIGRATIONS } from './migrations.js';
export { BatchWriter, type BatchWriterOptions } from './batch-writer.js';
export * from './rows.js';
export { findUnstorable } from './storable.js';
export { CancelRecords, CANCEL_MEMORY_MS } from './cancels.js';
export { WorkflowRecords, type NewWorkflow, type WorkflowListQuery } from './workflows.js';
export {
  RunRecords,
  pruneRuns,
  pruneEventsAndTicks,
  uuidv7Floor,
  type RunRecord,
  type StepRecord,
  type RunListQuery,
  type RunProgress,
} from './runs.js';
export {
  WaitRecords,
  insertStartedRun,
  type WaitKind,
  type WaitSpec,
  type WaitAnswer,
  type Resolution,
  type Resume,
  type StartedRun,
} from './waits.js';
export { ExecutorRecords, EXECUTOR_BEAT_MS, EXECUTOR_LIVE_MS, type ExecutorBeat, type ExecutorRow } from './executors.js';
export {
  OverviewRecords,
  RUN_SAMPLE,
  STEP_SAMPLE_RUNS,
  type Buckets,
  type BucketCount,
  type EndedCount,
  type Percentiles,
} from './overview.js';
export { ScheduleRecords, type ScheduleRow, type NewSchedule, type TickOutcome } from './schedules.js';
