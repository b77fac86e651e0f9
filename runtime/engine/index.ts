export { resolvePolicy, backoffDelay, shouldRetry, type StepPolicy, type PolicyDefaults } from './policy.js';
export { nextAction, outputsObject, type RunProgress, type NextAction } from './plan.js';
export { startRecoverySweep } from './recovery.js';
