import { Type, type Static } from '@sinclair/typebox';
import ms from 'ms';
import { compiled } from '../schema/index.js';
import { hasTemplate, templatePaths } from './template.js';
import type { TSchema } from '@sinclair/typebox';

/** A duration: milliseconds, or a string such as "500ms", "30s", "5m". */
export const Duration = Type.Union([
  Type.Integer({ minimum: 0, maximum: 24 * 3600 * 1000 }),
  Type.String({ pattern: '^\\d+(\\.\\d+)?\\s*(ms|s|m|h)$' }),
]);

export const RetryPolicy = Type.Object(
  {
    max_retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    retry_delay: Type.Optional(Duration),
    max_delay: Type.Optional(Duration),
    backoff_coefficient: Type.Optional(Type.Number({ minimum: 1, maximum: 10 })),
  },
  { additionalProperties: false },
);

const NAME = { minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9][A-Za-z0-9 _.:-]*$' };
/** A path into the run's data, as in templates without the braces: `steps.price.total_cents`, `item.sku`. */
const DataPath = Type.String({ minLength: 1, maxLength: 500 });
const Comparable = Type.Union([Type.Number(), Type.String()]);

/**
 * A condition of a `choice` branch: a `path` with exactly one test, or a
 * combination (`all`, `any`, `not`) of conditions.
 */
export const Condition = Type.Recursive(
  (Self) =>
    Type.Object(
      {
        path: Type.Optional(DataPath),
        equals: Type.Optional(Type.Unknown()),
        not_equals: Type.Optional(Type.Unknown()),
        gt: Type.Optional(Comparable),
        gte: Type.Optional(Comparable),
        lt: Type.Optional(Comparable),
        lte: Type.Optional(Comparable),
        in: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 1000 })),
        exists: Type.Optional(Type.Boolean()),
        all: Type.Optional(Type.Array(Self, { minItems: 1, maxItems: 50 })),
        any: Type.Optional(Type.Array(Self, { minItems: 1, maxItems: 50 })),
        not: Type.Optional(Self),
      },
      { additionalProperties: false },
    ),
  { $id: 'Condition' },
);

/**
 * One node of a workflow: a step (`type`: a built-in step type or a function
 * name) or a control-flow node: `parallel` (branches run at once, joined),
 * `map` (a list of steps per element of an array, with a concurrency limit)
 * or `choice` (the first branch whose condition holds runs).
 */
export const StepDefinition = Type.Recursive(
  (Self) =>
    Type.Object(
      {
        name: Type.String(NAME),
        type: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
        /** what the step (or node) gets as its input instead of the previous output: a template such as "{{ steps.price }}" */
        input: Type.Optional(Type.Unknown()),
        config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        timeout: Type.Optional(Duration),
        retry: Type.Optional(RetryPolicy),
        /** steps that run when this step or node fails after its retries; the run then goes on after it */
        catch: Type.Optional(Type.Array(Self, { minItems: 1, maxItems: 200 })),
        parallel: Type.Optional(
          Type.Object(
            {
              branches: Type.Array(
                Type.Object(
                  {
                    name: Type.String(NAME),
                    steps: Type.Array(Self, { minItems: 1, maxItems: 200 }),
                  },
                  { additionalProperties: false },
                ),
                { minItems: 1, maxItems: 50 },
              ),
            },
            { additionalProperties: false },
          ),
        ),
        map: Type.Optional(
          Type.Object(
            {
              /** a template (`"{{ steps.validate.items }}"`) or a literal array */
              items: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.Unknown())]),
              concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
              steps: Type.Array(Self, { minItems: 1, maxItems: 200 }),
            },
            { additionalProperties: false },
          ),
        ),
        choice: Type.Optional(
          Type.Object(
            {
              branches: Type.Array(
                Type.Object(
                  {
                    name: Type.String(NAME),
                    when: Condition,
                    steps: Type.Array(Self, { maxItems: 200 }),
                  },
                  { additionalProperties: false },
                ),
                { minItems: 1, maxItems: 50 },
              ),
              default: Type.Optional(Type.Array(Self, { maxItems: 200 })),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
  { $id: 'Step' },
);

/** An event that starts a run of the workflow (its latest active version), with the event's data as input. */
export const Trigger = Type.Object({ event: Type.String(NAME) }, { additionalProperties: false });

export const WorkflowDefinition = Type.Object(
  {
    steps: Type.Array(StepDefinition, { minItems: 1, maxItems: 200 }),
    triggers: Type.Optional(Type.Array(Trigger, { maxItems: 20 })),
  },
  { additionalProperties: false },
);

export type Condition = Static<typeof Condition>;
export type StepDefinition = Static<typeof StepDefinition>;
export type WorkflowDefinition = Static<typeof WorkflowDefinition>;
/** A node that runs a step type or function. */
export type LeafStep = StepDefinition & { type: string };

/** Items a `map` may have in one run (derived step names stay within 255 characters). */
export const MAX_MAP_ITEMS = 10_000;
/** Nesting depth of parallel / map / choice. */
export const MAX_DEPTH = 4;
/** Nodes in one definition, nested ones included. */
export const MAX_NODES = 1000;

export interface DefinitionProblem {
  path: string;
  message: string;
}

/**
 * The name a unit of work is recorded under in `workflow_steps`: unique within
 * a run, so resuming skips what completed. Top-level nodes keep their name;
 * nested ones get their place: `enrich/stock/reserve`, `resize[3]/thumb`.
 */
export const childName = {
  branch: (parent: string, branch: string, step: string) => `${parent}/${branch}/${step}`,
  item: (parent: string, index: number, step: string) => `${parent}[${index}]/${step}`,
  /** `#` cannot occur in a step or branch name: a catch step never collides with a branch */
  caught: (parent: string, step: string) => `${parent}#catch/${step}`,
};

/**
 * The step types an executor can run: a set of names, or a map whose entries may carry the
 * `config` schema of a function (checked at registration for configs without templates).
 */
export type KnownTypes = ReadonlySet<string> | ReadonlyMap<string, { config?: TSchema }>;

/**
 * Checks a definition's shape and its meaning: every node is exactly one of
 * a step or a control-flow node, names are unique across the definition
 * (nested ones included), step types are ones an executor can run (when
 * `knownTypes` is given), and data references read only steps that have
 * completed by then.
 */
export function validateDefinition(def: unknown, knownTypes: KnownTypes | null, base = '/definition'): DefinitionProblem[] {
  const problems: DefinitionProblem[] = [];
  try {
    for (const e of compiled(WorkflowDefinition).Errors(def)) {
      problems.push({ path: base + e.path, message: e.message });
      if (problems.length >= 10) return problems;
    }
    if (problems.length) return problems;
    const checker = new Checker(knownTypes, problems);
    const steps = (def as WorkflowDefinition).steps;
    checker.collect(steps, `${base}/steps`);
    checker.list(steps, `${base}/steps`, { visible: new Set(), roots: ROOTS, depth: 0, recorded: '' });
  } catch (err) {
    // a body nested thousands of levels deep (conditions in conditions) overflows the checkers' recursion
    if (!(err instanceof RangeError)) throw err;
    return [{ path: base, message: 'the definition nests too deeply to check (conditions or steps thousands of levels deep)' }];
  }
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

const ROOTS: ReadonlySet<string> = new Set(['input', 'run', 'steps']);
/** Roots whose fields are fixed: a path into them names one of these. */
const ROOT_FIELDS: Record<string, readonly string[] | undefined> = { run: ['input', 'id'], error: ['code', 'message', 'details'] };

interface Scope {
  /** step names whose outputs exist when a node of this list starts */
  visible: ReadonlySet<string>;
  /** template roots available here (`item` and `index` inside a map) */
  roots: ReadonlySet<string>;
  depth: number;
  /** the recorded name prefix of this list, with map indexes at their widest */
  recorded: string;
}

type Kind = 'type' | 'parallel' | 'map' | 'choice';
const KINDS: Kind[] = ['type', 'parallel', 'map', 'choice'];

class Checker {
  /** every node's name → where it is, for duplicate and visibility messages */
  private readonly where = new Map<string, string>();
  private nodes = 0;

  constructor(
    private readonly known: KnownTypes | null,
    private readonly problems: DefinitionProblem[],
  ) {}

  private problem(path: string, message: string): void {
    if (this.problems.length < 50) this.problems.push({ path, message });
  }

  /** Names first, so that references can tell "later" from "elsewhere" from "missing". */
  collect(steps: StepDefinition[], path: string): void {
    steps.forEach((s, i) => {
      const at = `${path}/${i}`;
      if (++this.nodes === MAX_NODES + 1) this.problem(at, `a definition may hold at most ${MAX_NODES} steps, nested ones included`);
      const prev = this.where.get(s.name);
      if (prev !== undefined)
        this.problem(
          `${at}/name`,
          `duplicate step name "${s.name}" (also at ${prev}); names are unique across the definition, nested steps included`,
        );
      else this.where.set(s.name, at);
      s.parallel?.branches.forEach((b, j) => this.collect(b.steps, `${at}/parallel/branches/${j}/steps`));
      if (s.map) this.collect(s.map.steps, `${at}/map/steps`);
      s.choice?.branches.forEach((b, j) => this.collect(b.steps, `${at}/choice/branches/${j}/steps`));
      if (s.choice?.default) this.collect(s.choice.default, `${at}/choice/default`);
      if (s.catch) this.collect(s.catch, `${at}/catch`);
    });
  }

  list(steps: StepDefinition[], path: string, scope: Scope): void {
    const visible = new Set(scope.visible);
    steps.forEach((s, i) => {
      this.node(s, `${path}/${i}`, { ...scope, visible });
      visible.add(s.name);
    });
  }

  private node(s: StepDefinition, path: string, scope: Scope): void {
    const recorded = scope.recorded + s.name;
    if (recorded.length > 255)
      this.problem(`${path}/name`, `the recorded name "${recorded}" is longer than 255 characters; use shorter names for nested steps`);

    const kinds = KINDS.filter((k) => s[k] !== undefined);
    if (kinds.length !== 1) {
      this.problem(
        kinds.length ? `${path}/${kinds[1]}` : `${path}/type`,
        kinds.length
          ? `a step is exactly one of type, parallel, map or choice; this one has ${kinds.join(' and ')}`
          : 'Expected required property: a step needs a type (a step type or function name), or one of parallel, map, choice',
      );
      return;
    }
    const kind = kinds[0];
    if (kind !== 'type') {
      for (const k of ['config', 'timeout', 'retry'] as const) {
        if (s[k] !== undefined) this.problem(`${path}/${k}`, `${k} belongs on the steps inside a ${kind}, not on the ${kind} itself`);
      }
      if (scope.depth >= MAX_DEPTH) {
        this.problem(`${path}/${kind}`, `parallel, map and choice nest at most ${MAX_DEPTH} deep`);
        return;
      }
    }
    if (s.input !== undefined) this.references(s.input, `${path}/input`, scope);
    if (s.catch) {
      // the catch steps run instead of the node's output: they see what the node saw, and the error
      this.list(s.catch, `${path}/catch`, {
        visible: scope.visible,
        roots: new Set([...scope.roots, 'error']),
        depth: scope.depth + 1,
        recorded: childName.caught(recorded, ''),
      });
    }
    const inner = (recordedPrefix: string, roots = scope.roots): Scope => ({
      visible: scope.visible,
      roots,
      depth: scope.depth + 1,
      recorded: recordedPrefix,
    });
    switch (kind) {
      case 'type':
        if (this.known && !this.known.has(s.type!)) {
          this.problem(`${path}/type`, `unknown step type "${s.type}"; known types: ${[...this.known.keys()].sort().join(', ')}`);
        }
        this.references(s.config, `${path}/config`, scope);
        this.config(s, path);
        return;
      case 'parallel':
        this.branchNames(s.parallel!.branches, `${path}/parallel/branches`);
        s.parallel!.branches.forEach((b, i) =>
          this.list(b.steps, `${path}/parallel/branches/${i}/steps`, inner(childName.branch(recorded, b.name, ''))),
        );
        return;
      case 'map': {
        const m = s.map!;
        this.references(m.items, `${path}/map/items`, scope);
        if (typeof m.items === 'string' && !/^\{\{[^}]*\}\}$/.test(m.items)) {
          this.problem(`${path}/map/items`, 'items is an array, or one template that reads an array, such as "{{ steps.validate.items }}"');
        }
        this.list(
          m.steps,
          `${path}/map/steps`,
          inner(childName.item(recorded, MAX_MAP_ITEMS - 1, ''), new Set([...scope.roots, 'item', 'index'])),
        );
        return;
      }
      case 'choice': {
        const c = s.choice!;
        this.branchNames(c.branches, `${path}/choice/branches`);
        c.branches.forEach((b, i) => {
          this.condition(b.when, `${path}/choice/branches/${i}/when`, scope);
          this.list(b.steps, `${path}/choice/branches/${i}/steps`, inner(childName.branch(recorded, b.name, '')));
        });
        if (c.default) {
          if (c.branches.some((b) => b.name === 'default'))
            this.problem(
              `${path}/choice/default`,
              'a branch named "default" and a default list would share recorded names; rename the branch',
            );
          this.list(c.default, `${path}/choice/default`, inner(childName.branch(recorded, 'default', '')));
        }
      }
    }
  }

  /** A config without templates is known now: check it against the function's config schema. */
  private config(s: StepDefinition, path: string): void {
    const schema = this.known instanceof Map ? (this.known as ReadonlyMap<string, { config?: TSchema }>).get(s.type!)?.config : undefined;
    if (!schema || hasTemplate(s.config)) return;
    const first = compiled(schema)
      .Errors(s.config ?? {})
      .First();
    if (first) this.problem(`${path}/config${first.path}`, `${first.message} (the config schema of "${s.type}")`);
  }

  private branchNames(branches: { name: string }[], path: string): void {
    const seen = new Set<string>();
    branches.forEach((b, i) => {
      if (seen.has(b.name)) this.problem(`${path}/${i}/name`, `duplicate branch name "${b.name}"`);
      seen.add(b.name);
    });
  }

  private condition(c: Condition, path: string, scope: Scope): void {
    const tests = CONDITION_TESTS.filter((t) => (c as Record<string, unknown>)[t] !== undefined);
    const combos = (['all', 'any', 'not'] as const).filter((t) => c[t] !== undefined);
    if (
      combos.length + (c.path !== undefined ? 1 : 0) !== 1 ||
      (c.path !== undefined) !== (tests.length === 1) ||
      (combos.length && tests.length)
    ) {
      this.problem(
        path,
        'a condition is a path with exactly one test (equals, not_equals, gt, gte, lt, lte, in, exists), or exactly one of all, any, not',
      );
      return;
    }
    if (c.path !== undefined) {
      if (c.path !== c.path.trim() || /[|{}]/.test(c.path))
        this.problem(
          `${path}/path`,
          `"${c.path}" is not a path: names and [n] indexes separated by dots, without braces, filters or spaces around`,
        );
      else this.references(`{{ ${c.path} }}`, `${path}/path`, scope);
    }
    c.all?.forEach((x, i) => this.condition(x, `${path}/all/${i}`, scope));
    c.any?.forEach((x, i) => this.condition(x, `${path}/any/${i}`, scope));
    if (c.not) this.condition(c.not, `${path}/not`, scope);
  }

  /**
   * A template may read `input`, `run.input`, `run.id`, `item` and `index` inside a map,
   * and `steps.<name>` of steps that have completed by then: earlier ones in its own
   * list and in the lists around it.
   */
  private references(template: unknown, path: string, scope: Scope): void {
    let paths: string[];
    try {
      paths = templatePaths(template);
    } catch (err) {
      this.problem(path, (err as Error).message);
      return;
    }
    for (const p of paths) {
      const [root, name] = p.split('.');
      const rootName = root.replace(/(\[\d+\])+$/, '');
      const fields = ROOT_FIELDS[rootName];
      const field = name?.replace(/(\[\d+\])+$/, '');
      if (fields && scope.roots.has(rootName) && field !== undefined && !fields.includes(field)) {
        // {{ run.inptu.x }}: a misspelled field of a root whose fields are known
        this.problem(
          path,
          `{{ ${p} }} reads nothing: ${rootName} has ${fields.map((f) => `${rootName}.${f}`).join(', ')}, not ${rootName}.${field}`,
        );
        continue;
      }
      if (rootName !== 'steps' && scope.roots.has(rootName)) continue;
      if (rootName !== 'steps' || !name) {
        this.problem(
          path,
          `{{ ${p} }} reads nothing: a path starts with ${[...scope.roots].filter((r) => r !== 'steps').join(', ')} or steps.<step name>` +
            (rootName === 'item' || rootName === 'index' ? ' (item and index exist only inside a map)' : ''),
        );
        continue;
      }
      const stepName = name.replace(/(\[\d+\])+$/, '');
      if (scope.visible.has(stepName)) continue;
      const at = this.where.get(stepName);
      this.problem(
        path,
        at === undefined
          ? `{{ ${p} }} references step "${stepName}", which does not exist`
          : path.startsWith(`${at}/`)
            ? `{{ ${p} }} references step "${stepName}" (at ${at}), which is this step or contains it: its output comes later`
            : comesAfter(at, path)
              ? `{{ ${p} }} references step "${stepName}" (at ${at}), which comes later; a step can only read earlier steps`
              : `{{ ${p} }} references step "${stepName}" (at ${at}), which is inside another parallel, map or choice; read that node's output by its own name`,
      );
    }
  }
}

const CONDITION_TESTS = ['equals', 'not_equals', 'gt', 'gte', 'lt', 'lte', 'in', 'exists'] as const;

/** Whether JSON pointer `a` comes after `b` in document order (numeric segments compared as numbers). */
function comesAfter(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    const [m, n] = [Number(x[i]), Number(y[i])];
    return Number.isInteger(m) && Number.isInteger(n) ? m > n : x[i] > y[i];
  }
  return x.length > y.length;
}
