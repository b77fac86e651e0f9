export {
  WorkflowDefinition,
  StepDefinition,
  Condition,
  RetryPolicy,
  Duration,
  validateDefinition,
  durationMs,
  childName,
  MAX_MAP_ITEMS,
  MAX_DEPTH,
  type LeafStep,
  type DefinitionProblem,
  type KnownTypes,
} from './definition.js';
export { renderTemplate, hasTemplate, templatePaths, readPath, TemplateError } from './template.js';
export { resolvePolicy, backoffDelay, shouldRetry, timeoutHint, type StepPolicy, type PolicyDefaults } from './policy.js';
export { runAttempts, MAX_LOG_LINES, type AttemptLoop, type AttemptResult, type AttemptRecord, type LogLine } from './attempts.js';
export {
  runDefinition,
  MAX_RUN_STEPS_IN_FLIGHT,
  type Runner,
  type Unit,
  type UnitResult,
  type NodeEvent,
  type RunState,
  type CancelSignal,
  type RunOutcome,
  type DataRoots,
} from './interpreter.js';
export { evaluateCondition } from './conditions.js';
export { startDeadLetterHandler } from './dead-letters.js';
export { startRetention, type RetentionOptions } from './retention.js';
export { Limiter } from './limiter.js';
export { DURABLE_STEP_TYPES, isDurableStep, sleepEnd, timeoutEnd, DurableConfigError } from './durable-steps.js';
export { Resumer, startDurableTimers, resumeMessage, startMessage, childError, type DurableTimerOptions } from './durable.js';
export { startScheduler, parseCron, nextTick, dueTicks, MISSED_AFTER_MS, type ScheduleLoopDeps } from './schedules.js';
