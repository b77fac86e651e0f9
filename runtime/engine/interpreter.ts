import type { PlainError } from '../errors/index.js';
import { childName, MAX_MAP_ITEMS, type LeafStep, type StepDefinition, type WorkflowDefinition } from './definition.js';
import { renderTemplate } from './template.js';
import { evaluateCondition } from './conditions.js';
import { Limiter } from './limiter.js';

/** What templates and conditions read: `input`, `run.input`, `run.id`, `steps.<name>`, and `item`, `index` inside a map. */
/**
 * What a run's drive is cancelled through: the part of AbortSignal the interpreter and the step
 * pools use (an AbortSignal is one). The executor gives each run a light one (executor/
 * cancellations.ts): an AbortController per run had been 7 µs of every run's CPU.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface DataRoots {
  [root: string]: unknown;
  input: unknown;
  run: { input: unknown; id: string };
  /** outputs of the steps that have completed where this node runs, by name */
  steps: Record<string, unknown>;
}

/** One step attempt series to run: a leaf of the definition at its place in the run. */
export interface Unit {
  step: LeafStep;
  /** the name it is recorded under (unique in the run): `price`, `enrich/stock/reserve`, `resize[3]/thumb` */
  name: string;
  /** position of the top-level node it belongs to */
  index: number;
  input: unknown;
  roots: DataRoots;
  /** true once another part of the run has failed: finish the current attempt, do not retry */
  stopped: () => boolean;
  /** Waits `ms` (a retry's backoff), or less if the run fails meanwhile; true when it did. */
  sleepUnlessStopped: (ms: number) => Promise<boolean>;
  /** fires when the run is cancelled: abort the attempt in flight */
  cancelled?: CancelSignal;
}

/** `suspended`: the step waits durably (a sleep, a signal, ...) and the run is being put to sleep: stop without a result. */
export type UnitResult = { ok: true; output: unknown } | { ok: false; error: PlainError } | { ok: false; suspended: true };

/** A parallel, map or choice node starting or ending, for its own step record. */
export interface NodeEvent {
  name: string;
  index: number;
  /** parallel, map or choice; a step's type when its input template failed before it could run */
  kind: string;
  status: 'running' | 'completed' | 'failed';
  input: unknown;
  output: unknown;
  error: PlainError | null;
  startedAt: Date;
  /** what the node decided: the choice's branch, the map's item count */
  note: string | null;
}

export interface Runner {
  step(u: Unit): Promise<UnitResult>;
  node(e: NodeEvent): void;
  /** step types that wait durably: they hold none of the run's step slots while they wait */
  waits?(type: string): boolean;
}

export interface RunState {
  runId: string;
  input: unknown;
  /** outputs recorded as completed by an earlier delivery, by recorded name: these are not run again */
  done: ReadonlyMap<string, unknown>;
  /** errors recorded as failed by an earlier drive, by recorded name: a node with `catch` goes to its catch steps at once */
  failed?: ReadonlyMap<string, PlainError>;
  /** fires when the run is cancelled: it stops like a failure, with E_CANCELLED */
  cancelled?: CancelSignal;
}

/** `suspended`: every part of the run that could go on waits durably; it resumes in a later drive. */
export type RunOutcome =
  | { ok: true; output: unknown; suspended?: undefined }
  | { ok: false; error: PlainError; step: string; suspended?: undefined }
  | { ok: false; suspended: true };

/**
 * Runs a workflow definition to its end: a plain list runs in order, each
 * step's input the previous output; `parallel` runs its branches at once and
 * joins them into `{ <branch>: <last output> }`; `map` runs its steps for each
 * element of an array, at most `concurrency` at a time, into an array of
 * outputs; `choice` runs the first branch whose condition holds (or
 * `default`, or passes its input through).
 *
 * Every unit of work has a unique recorded name, and anything in
 * `state.done` is skipped: that is how a redelivered run resumes without
 * running completed steps, branches or items again. Conditions and map items
 * read only recorded data, so a resumed run takes the same path.
 *
 * The first failure stops the run: nothing new starts, units in flight finish
 * their attempt without retrying (a backoff in progress ends at once), and the
 * run fails with that first error. A node with `catch` bounds that: a failure
 * inside it (after its retries) stops only that node, its catch steps run
 * with `{{ error.code }}` and `{{ error.message }}`, and the run goes on after
 * the node with the catch steps' output. A cancel is never caught.
 *
 * A step that waits durably (sleep, signal, event, child run) answers
 * `suspended`: its list stops there, other branches and items go on, and once
 * everything has ended or parked the run stops without a result and without
 * recording its nodes as failed (`{ suspended: true }`).
 *
 * Bounds per run, whatever the nesting: at most MAX_RUN_STEPS_IN_FLIGHT steps
 * at once, and MAX_MAP_ITEMS map items in all.
 */
export function runDefinition(def: WorkflowDefinition, state: RunState, runner: Runner): Promise<RunOutcome> {
  return new Interpreter(state, runner).run(def);
}

type ListResult = { ok: true; output: unknown } | { ok: false };
const STOPPED: ListResult = { ok: false };
const DEFAULT_MAP_CONCURRENCY = 10;
/** Steps of one run that may run at once (parallel branches and map items, nested or not). */
export const MAX_RUN_STEPS_IN_FLIGHT = 100;

/**
 * Where a failure stops: the whole run, or a node with `catch` (a failure inside it stops that
 * node's units only). A scope is stopped when it or a scope around it has failed. A durable
 * wait stops only its own list: the run is put to sleep once every part has ended or parked.
 */
class Scope {
  failure: { error: PlainError; step: string } | null = null;
  /** wakes the backoffs of units waiting to retry when this scope stops */
  readonly onStop = new Set<() => void>();

  constructor(readonly parent: Scope | null) {}

  stopped(): boolean {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    for (let s: Scope | null = this; s; s = s.parent) if (s.failure) return true;
    return false;
  }

  /** Waits `ms`, or less if this scope stops meanwhile; true when it did. */
  sleepUnlessStopped(ms: number): Promise<boolean> {
    if (this.stopped()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const scopes: Scope[] = [];
      const wake = () => {
        clearTimeout(timer);
        for (const s of scopes) s.onStop.delete(wake);
        resolve(this.stopped());
      };
      const timer = setTimeout(wake, ms);
      // eslint-disable-next-line @typescript-eslint/no-this-alias
      for (let s: Scope | null = this; s; s = s.parent) {
        s.onStop.add(wake);
        scopes.push(s);
      }
    });
  }

  wakeAll(): void {
    for (const wake of [...this.onStop]) wake();
  }
}

class Interpreter {
  private readonly root: Scope;
  /** every scope, so that a cancel or a suspension wakes every backoff */
  private readonly scopes = new Set<Scope>();
  suspended = false;
  private readonly run_: { input: unknown; id: string };
  /** the run's steps in flight */
  private readonly slots = new Limiter(MAX_RUN_STEPS_IN_FLIGHT);
  /** map items of the run so far, across every map */
  private mapItems = 0;

  constructor(
    private readonly state: RunState,
    private readonly runner: Runner,
  ) {
    this.run_ = { input: state.input, id: state.runId };
    this.root = this.scope(null);
  }

  private scope(parent: Scope | null): Scope {
    const s = new Scope(parent);
    this.scopes.add(s);
    return s;
  }

  async run(def: WorkflowDefinition): Promise<RunOutcome> {
    const signal = this.state.cancelled;
    // a cancel stops the whole run, whatever catch is around the step in flight
    const onCancel = () => this.fail({ code: 'E_CANCELLED', message: 'the run was cancelled' }, '', this.root);
    if (signal?.aborted) onCancel();
    signal?.addEventListener('abort', onCancel, { once: true });
    try {
      const r = await this.list(def.steps, this.state.input, {}, '', null, {}, this.root);
      if (this.suspended && !this.root.failure) return { ok: false, suspended: true };
      if (r.ok && !this.root.failure) return { ok: true, output: r.output };
      return { ok: false, ...this.root.failure! };
    } finally {
      signal?.removeEventListener('abort', onCancel);
    }
  }

  private fail(error: PlainError, step: string, scope: Scope): ListResult {
    if (!scope.failure) {
      scope.failure = { error, step };
      // this scope and everything inside it stops: wake their backoffs
      for (const s of this.scopes) if (s.stopped()) s.wakeAll();
    }
    return STOPPED;
  }

  /** A step waits durably: its list stops there; the rest of the run (other branches, other items) goes on. */
  private suspend(): ListResult {
    this.suspended = true;
    return STOPPED;
  }

  /** Runs one step within the run's limit of steps at once (a step that waits durably holds no slot). */
  private step(u: Unit): Promise<UnitResult> {
    if (this.runner.waits?.(u.step.type)) return this.runner.step(u);
    return this.slots.run(() => this.runner.step(u));
  }

  /** A list of nodes in order; `visible` holds the outputs visible to its first node. */
  private async list(
    nodes: StepDefinition[],
    input: unknown,
    visible: Record<string, unknown>,
    prefix: string,
    top: number | null,
    extra: Record<string, unknown>,
    scope: Scope,
  ): Promise<ListResult> {
    let prev = input;
    let seen = visible;
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i];
      const name = prefix + node.name;
      let out: unknown;
      if (this.state.done.has(name)) {
        out = this.state.done.get(name);
      } else {
        if (scope.stopped()) return STOPPED;
        const r = await this.caught(node, name, top ?? i, prev, seen, extra, scope);
        if (!r.ok) return r;
        out = r.output;
      }
      prev = out;
      seen = { ...seen, [node.name]: out };
    }
    return { ok: true, output: prev };
  }

  /**
   * A node, and its catch steps when it fails and has them: the failure (after its retries)
   * then stops only this node, and the catch steps' output stands for the node's.
   */
  private async caught(
    node: StepDefinition,
    name: string,
    index: number,
    input: unknown,
    steps: Record<string, unknown>,
    extra: Record<string, unknown>,
    scope: Scope,
  ): Promise<ListResult> {
    if (!node.catch?.length) return this.node(node, name, index, input, steps, extra, scope);
    // recorded as failed by an earlier drive: straight to the catch steps
    let error = this.state.failed?.get(name);
    if (!error) {
      const inner = this.scope(scope);
      const r = await this.node(node, name, index, input, steps, extra, inner);
      this.scopes.delete(inner);
      if (r.ok || this.suspended || scope.stopped()) return r;
      error = inner.failure?.error;
      if (!error) return r;
      if (error.code === 'E_CANCELLED') return this.fail(error, inner.failure!.step, this.root);
    }
    const roots = { ...extra, error: { code: error.code, message: error.message, details: error.details ?? null } };
    return this.list(node.catch, input, steps, childName.caught(name, ''), index, roots, scope);
  }

  private async node(
    node: StepDefinition,
    name: string,
    index: number,
    input: unknown,
    steps: Record<string, unknown>,
    extra: Record<string, unknown>,
    scope: Scope,
  ): Promise<ListResult> {
    const roots: DataRoots = { ...extra, input, run: this.run_, steps };
    if (node.input !== undefined) {
      // the node picks its own input from the run's data instead of the previous output
      try {
        input = roots.input = renderTemplate(node.input, roots);
      } catch (err) {
        const error = { code: 'E_STEP_CONFIG', message: `step "${name}": input: ${(err as Error).message}` };
        // recorded, so the run's record shows the step its error names
        const kind = node.type ?? (node.parallel ? 'parallel' : node.map ? 'map' : 'choice');
        this.runner.node({ name, index, kind, status: 'failed', input, output: null, error, startedAt: new Date(), note: null });
        return this.fail(error, name, scope);
      }
    }
    if (node.type !== undefined) {
      const r = await this.step({
        step: node as LeafStep,
        name,
        index,
        input,
        roots,
        stopped: () => scope.stopped(),
        sleepUnlessStopped: (ms) => scope.sleepUnlessStopped(ms),
        cancelled: this.state.cancelled,
      });
      if (r.ok) return r;
      if ('suspended' in r) return this.suspend();
      return this.fail(r.error, name, scope);
    }
    const kind = node.parallel ? 'parallel' : node.map ? 'map' : 'choice';
    const startedAt = new Date();
    const event = (status: NodeEvent['status'], output: unknown, note: string | null, error: PlainError | null = null): void => {
      // a suspended run is not over: its nodes stay as they are until it resumes
      if (this.suspended && status !== 'running') return;
      this.runner.node({ name, index, kind, status, input, output, error, startedAt, note });
    };
    const failedWith = () => scope.failure?.error ?? null;

    let r: ListResult;
    let note: string | null = null;
    if (node.parallel) {
      event('running', null, null);
      const branches = node.parallel.branches;
      const results = await Promise.all(
        branches.map((b) => this.list(b.steps, input, steps, childName.branch(name, b.name, ''), index, extra, scope)),
      );
      r = results.every((x) => x.ok)
        ? { ok: true, output: Object.fromEntries(branches.map((b, i) => [b.name, (results[i] as { output: unknown }).output])) }
        : STOPPED;
    } else if (node.map) {
      let items: unknown;
      try {
        items = renderTemplate(node.map.items, roots);
      } catch (err) {
        items = err;
      }
      if (Array.isArray(items)) this.mapItems += items.length;
      if (!Array.isArray(items) || this.mapItems > MAX_MAP_ITEMS) {
        const why =
          items instanceof Error
            ? items.message
            : Array.isArray(items)
              ? `${items.length} items make ${this.mapItems} in this run's maps; a run's maps take at most ${MAX_MAP_ITEMS} items in all`
              : `items must be an array, got ${items === null ? 'null' : typeof items}`;
        this.fail({ code: 'E_STEP_CONFIG', message: `map "${name}": ${why}` }, name, scope);
        event('failed', null, null, failedWith());
        return STOPPED;
      }
      note = `${items.length} item${items.length === 1 ? '' : 's'}`;
      event('running', null, note);
      r = await this.map(node.map.steps, items, node.map.concurrency ?? DEFAULT_MAP_CONCURRENCY, name, index, steps, extra, scope);
    } else {
      const c = node.choice!;
      let chosen: { name: string; steps: StepDefinition[] } | undefined;
      try {
        chosen =
          c.branches.find((b) => evaluateCondition(b.when, roots)) ?? (c.default ? { name: 'default', steps: c.default } : undefined);
      } catch (err) {
        this.fail({ code: 'E_STEP_CONFIG', message: `choice "${name}": ${(err as Error).message}` }, name, scope);
        event('failed', null, null, failedWith());
        return STOPPED;
      }
      note = chosen ? `branch "${chosen.name}"` : 'no branch matched and there is no default: input passed through';
      event('running', null, note);
      r = chosen
        ? await this.list(chosen.steps, input, steps, childName.branch(name, chosen.name, ''), index, extra, scope)
        : { ok: true, output: input };
    }
    if (r.ok && scope.stopped()) r = STOPPED;
    event(r.ok ? 'completed' : 'failed', r.ok ? r.output : null, note, r.ok ? null : failedWith());
    return r;
  }

  private async map(
    nodes: StepDefinition[],
    items: unknown[],
    concurrency: number,
    name: string,
    index: number,
    steps: Record<string, unknown>,
    extra: Record<string, unknown>,
    scope: Scope,
  ): Promise<ListResult> {
    const outputs = new Array<unknown>(items.length);
    let next = 0;
    let ok = true;
    const lane = async (): Promise<void> => {
      while (next < items.length && !scope.stopped()) {
        const i = next++;
        const r = await this.list(
          nodes,
          items[i],
          steps,
          childName.item(name, i, ''),
          index,
          { ...extra, item: items[i], index: i },
          scope,
        );
        if (!r.ok) {
          ok = false;
          // an item that waits durably parks; the lane goes on with the next item (all of a map's
          // waits begin in one drive, not one wave per drive)
          if (this.suspended && !scope.stopped()) continue;
          return;
        }
        outputs[i] = r.output;
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
    return ok && !scope.stopped() ? { ok: true, output: outputs } : STOPPED;
  }
}
