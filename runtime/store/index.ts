export { openPostgres, type Sql } from './postgres.js';
export { migrate, MIGRATIONS } from './migrations.js';
export { BatchWriter, type BatchWriterOptions } from './batch-writer.js';
export { HotState, type HotRunStatus } from './redis.js';
export * from './rows.js';
export * from './workflows.js';
export * from './runs.js';
