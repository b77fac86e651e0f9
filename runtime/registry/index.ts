export { Registry, isUuid, type Workflow, type NewWorkflowInput, type RegistryChange, type RegistryDeps } from './registry.js';
export {
  WorkflowDefinition, StepDefinition, RetryPolicy, Duration, validateDefinition, durationMs, type DefinitionProblem,
} from './definition.js';
export { TtlCache } from './cache.js';
