export { Registry, isUuid, type Workflow, type NewWorkflowInput, type RegistryChange, type RegistryDeps } from './registry.js';
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
export { TtlCache } from './cache.js';
