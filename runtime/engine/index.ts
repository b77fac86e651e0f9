export { resolvePolicy, backoffDelay, shouldRetry, type StepPolicy, type PolicyDefaults } from './policy.js';
export {
  runDefinition,
  MAX_RUN_STEPS_IN_FLIGHT,
  type Runner,
  type Unit,
  type UnitResult,
  type NodeEvent,
  type RunState,
  type RunOutcome,
  type DataRoots,
} from './interpreter.js';
export { evaluateCondition } from './conditions.js';
export { startRecoverySweep } from './recovery.js';
export { Limiter } from './limiter.js';
