export { startExecutor, type Executor, type ExecutorDeps } from './executor.js';
export { loadCatalogue, compiledDir, type CatalogueEntry } from './catalogue.js';
export { StepPool, type StepPoolOptions } from './pool.js';
export { createStepRunner, type StepRunner, type StepRunnerOptions } from './step-runner.js';
export type { StepTask, StepOutcome } from './protocol.js';
