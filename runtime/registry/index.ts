export { Registry, isUuid, type Workflow, type NewWorkflowInput, type RegistryDeps } from './registry.js';
