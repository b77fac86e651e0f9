import type { StepDefinition, WorkflowDefinition } from '../registry/index.js';

/** What the engine knows of a run in progress. */
export interface RunProgress {
  input: unknown;
  /** outputs of completed steps, by step name */
  outputs: Map<string, unknown>;
}

export type NextAction =
  | { kind: 'run-step'; index: number; step: StepDefinition; input: unknown }
  | { kind: 'complete'; output: unknown };

/**
 * The durable state machine of a run, as a pure function: given the definition
 * and what has completed, what comes next. Completed steps are skipped, which
 * is what makes a redelivered run resume rather than start again. A step's
 * input is the previous step's output (the run input for the first step).
 */
export function nextAction(def: WorkflowDefinition, p: RunProgress): NextAction {
  let prev = p.input;
  for (let i = 0; i < def.steps.length; i++) {
    const step = def.steps[i]!;
    if (!p.outputs.has(step.name)) return { kind: 'run-step', index: i, step, input: prev };
    prev = p.outputs.get(step.name);
  }
  return { kind: 'complete', output: prev };
}

/** Outputs of completed steps as a plain object, for a step's context. */
export function outputsObject(p: RunProgress): Record<string, unknown> {
  return Object.fromEntries(p.outputs);
}
