import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import ms from 'ms';
import { templatePaths } from '../sdk/index.js';

/** A duration: milliseconds, or a string such as "500ms", "30s", "5m". */
export const Duration = Type.Union([
  Type.Integer({ minimum: 0, maximum: 24 * 3600 * 1000 }),
  Type.String({ pattern: '^\\d+(\\.\\d+)?\\s*(ms|s|m|h)$' }),
]);

export const RetryPolicy = Type.Object({
  max_retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  retry_delay: Type.Optional(Duration),
  max_delay: Type.Optional(Duration),
  backoff_coefficient: Type.Optional(Type.Number({ minimum: 1, maximum: 10 })),
}, { additionalProperties: false });

export const StepDefinition = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9][A-Za-z0-9 _.:-]*$' }),
  type: Type.String({ minLength: 1, maxLength: 50 }),
  config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  timeout: Type.Optional(Duration),
  retry: Type.Optional(RetryPolicy),
}, { additionalProperties: false });

export const WorkflowDefinition = Type.Object({
  steps: Type.Array(StepDefinition, { minItems: 1, maxItems: 200 }),
}, { additionalProperties: false });

export type StepDefinition = Static<typeof StepDefinition>;
export type WorkflowDefinition = Static<typeof WorkflowDefinition>;

const check = TypeCompiler.Compile(WorkflowDefinition);

export interface DefinitionProblem {
  path: string;
  message: string;
}

/**
 * Checks a definition's shape and its meaning: unique step names, and step
 * types that an executor can run (when `knownTypes` is given).
 */
export function validateDefinition(def: unknown, knownTypes: ReadonlySet<string> | null, base = '/definition'): DefinitionProblem[] {
  const problems: DefinitionProblem[] = [];
  for (const e of check.Errors(def)) {
    problems.push({ path: base + e.path, message: e.message });
    if (problems.length >= 10) return problems;
  }
  if (problems.length) return problems;
  const d = def as WorkflowDefinition;
  const seen = new Map<string, number>();
  const indexOf = new Map(d.steps.map((s, i) => [s.name, i] as const));
  d.steps.forEach((s, i) => {
    const prev = seen.get(s.name);
    if (prev !== undefined) problems.push({ path: `${base}/steps/${i}/name`, message: `duplicate step name "${s.name}" (also step ${prev})` });
    seen.set(s.name, i);
    if (knownTypes && !knownTypes.has(s.type)) {
      problems.push({ path: `${base}/steps/${i}/type`, message: `unknown step type "${s.type}"; known types: ${[...knownTypes].sort().join(', ')}` });
    }
    problems.push(...referenceProblems(s.config, i, indexOf, `${base}/steps/${i}/config`));
  });
  return problems;
}

/** Milliseconds from a Duration value. */
export function durationMs(v: number | string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  let n: number | undefined;
  try {
    n = ms(v.replace(/\s+/g, '') as ms.StringValue);
  } catch {
    return fallback; // ms('') throws
  }
  return typeof n === 'number' && Number.isFinite(n) ? n : fallback;
}

/**
 * A step's config may read `{{ input... }}`, `{{ run.input... }}`, `{{ run.id }}` and
 * `{{ steps.<name>... }}` of steps that come before it (see runtime/sdk/template.ts).
 */
function referenceProblems(config: unknown, index: number, indexOf: ReadonlyMap<string, number>, path: string): DefinitionProblem[] {
  let paths: string[];
  try {
    paths = templatePaths(config);
  } catch (err) {
    return [{ path, message: (err as Error).message }];
  }
  const problems: DefinitionProblem[] = [];
  for (const p of paths) {
    const [root, name] = p.split('.');
    if (root === 'input' || root === 'run') continue;
    if (root !== 'steps' || !name) {
      problems.push({ path, message: `{{ ${p} }} reads nothing: a path starts with input, run.input, run.id or steps.<step name>` });
      continue;
    }
    const stepName = name.replace(/\[\d+\]$/, '');
    const at = indexOf.get(stepName);
    if (at === undefined || at >= index) {
      problems.push({ path, message: at === undefined
        ? `{{ ${p} }} references step "${stepName}", which does not exist`
        : `{{ ${p} }} references step "${stepName}", which comes later (step ${at}); a step can only read earlier steps` });
    }
  }
  return problems;
}
