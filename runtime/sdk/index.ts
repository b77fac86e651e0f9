import type { Static, TSchema } from '@sinclair/typebox';

export { Type } from '@sinclair/typebox';
export type { Static, TSchema } from '@sinclair/typebox';

/** What a step's handler receives besides its input. */
export interface StepContext<C = Record<string, unknown>> {
  /** The run (one execution of a workflow). */
  runId: string;
  workflowId: string;
  /**
   * The step's name as recorded in the run: its name in the definition, or its place when nested
   * (`checks/stock/reserve` in a parallel or choice branch, `pack[3]/label` in a map item).
   */
  stepName: string;
  /** 1 on the first attempt, 2 on the first retry, ... */
  attempt: number;
  /** The step's `config` from the workflow definition, templates filled in (checked against the function's `config` schema). */
  config: C;
  /** The run's input (`input_data` of execute). */
  runInput: unknown;
  /** Outputs of the steps before this one in its list and the lists around it, by step name (docs/workflows.md). */
  steps: Record<string, unknown>;
  /** Fires when the step times out or the run is cancelled: stop work and return. */
  signal: AbortSignal;
  /** Log lines land in the step's record (and the executor's log). */
  log: StepLogger;
}

export interface StepLogger {
  info(msg: string, data?: unknown): void;
  warn(msg: string, data?: unknown): void;
  error(msg: string, data?: unknown): void;
}

export interface RetryOptions {
  /**
   * Retries after the first attempt: 3 means up to 4 attempts in all. The same count as a
   * workflow step's `retry.max_retries` and the config's `executor.max_retries`.
   */
  maxRetries?: number;
  /** Delay before the first retry, in ms; doubles each retry (`backoff: 'exponential'`). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  backoff?: 'exponential' | 'fixed';
  /** Error codes (`err.code`) that fail the step at once. */
  nonRetryable?: string[];
}

/** The type of `ctx.config`: the `config` schema's, or a plain record without one. */
export type ConfigOf<C extends TSchema | undefined> = C extends TSchema ? Static<C> : Record<string, unknown>;

export interface FunctionDefinition<I extends TSchema = TSchema, O extends TSchema = TSchema, C extends TSchema | undefined = undefined> {
  /** Defaults to the module's file name without extension. */
  name?: string;
  description?: string;
  input?: I;
  output?: O;
  /**
   * The schema of the step's `config` in workflow definitions. Checked when a
   * workflow is registered (400 with the path, for configs without templates)
   * and again after templates are filled in, before each attempt
   * (`E_STEP_CONFIG`, not retried). Also types `ctx.config`.
   */
  config?: C;
  timeoutMs?: number;
  retry?: RetryOptions;
  /**
   * Run on the executor's main thread instead of a worker thread, saving the
   * thread hop. Honoured only for the runtime's built-in steps in `steps/`,
   * which are pure, synchronous and trusted; ignored for user functions, which
   * always run isolated on worker threads.
   */
  inline?: boolean;
  /**
   * At most this many attempts of this function run at once on one executor
   * host; further attempts wait (first come, first served) for a slot without
   * holding back other functions. The step timeout starts when the attempt
   * starts, not while it waits. Unlimited when unset.
   */
  concurrency?: number;
  /**
   * The JS heap limit of the worker threads that run this function, in MB
   * (V8's old generation, where long-lived objects go; at least 16). A step
   * that goes over it fails with `E_WORKER_CRASHED` naming the limit; the
   * executor host stays up and the thread is replaced. Buffers and typed
   * arrays live outside the JS heap and are not counted. Defaults to
   * `executor.worker_max_old_generation_mb`.
   */
  memoryMb?: number;
  handler: (input: Static<I>, ctx: StepContext<ConfigOf<C>>) => Static<O> | Promise<Static<O>>;
}

export interface DefinedFunction<
  I extends TSchema = TSchema,
  O extends TSchema = TSchema,
  C extends TSchema | undefined = TSchema | undefined,
> extends FunctionDefinition<I, O, C> {
  readonly kind: 'workflow-function';
}

/** Below this a worker thread cannot load the runtime and the functions. */
const MIN_MEMORY_MB = 16;

/**
 * Declares a step function. Default-export the result from a module in
 * `functions/`; the step's `type` in a workflow is the function's name.
 *
 * @example
 * ```ts
 * import { defineFunction, Type } from '../runtime/sdk/index.js';
 *
 * export default defineFunction({
 *   name: 'greet',
 *   input: Type.Object({ name: Type.String() }),
 *   output: Type.Object({ greeting: Type.String() }),
 *   timeoutMs: 5_000,
 *   concurrency: 4,   // at most 4 at once per executor host (optional)
 *   memoryMb: 128,    // worker heap limit for this function (optional)
 *   handler: async (input) => ({ greeting: `Hello, ${input.name}` }),
 * });
 * ```
 */
export function defineFunction<I extends TSchema, O extends TSchema, C extends TSchema | undefined = undefined>(
  def: FunctionDefinition<I, O, C>,
): DefinedFunction<I, O, C> {
  if (typeof def?.handler !== 'function') throw new TypeError('defineFunction: handler must be a function');
  const where = def.name ? `defineFunction (${def.name})` : 'defineFunction';
  if (def.concurrency !== undefined && !(Number.isInteger(def.concurrency) && def.concurrency >= 1)) {
    throw new TypeError(`${where}: concurrency must be a positive integer, got ${String(def.concurrency)}`);
  }
  if ((def.retry as { maxAttempts?: unknown } | undefined)?.maxAttempts !== undefined) {
    throw new TypeError(
      `${where}: retry.maxAttempts is now retry.maxRetries, the retries after the first attempt (maxAttempts 3 = maxRetries 2)`,
    );
  }
  if (def.retry?.maxRetries !== undefined && !(Number.isInteger(def.retry.maxRetries) && def.retry.maxRetries >= 0)) {
    throw new TypeError(`${where}: retry.maxRetries must be an integer of at least 0, got ${String(def.retry.maxRetries)}`);
  }
  if (def.memoryMb !== undefined && !(Number.isInteger(def.memoryMb) && def.memoryMb >= MIN_MEMORY_MB)) {
    throw new TypeError(`${where}: memoryMb must be an integer of at least ${MIN_MEMORY_MB}, got ${String(def.memoryMb)}`);
  }
  return Object.freeze({ ...def, kind: 'workflow-function' as const });
}

/** An error with a code of the function's own and whether a retry may help (the base of the two below). */
export class CodedError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Throw to fail a step without retrying it.
 *
 * @example
 * ```ts
 * if (!input.sku) throw new NonRetryableError('E_NO_SKU', 'order has no sku');
 * ```
 */
export class NonRetryableError extends CodedError {
  constructor(code: string, message: string) {
    super(code, message, false);
  }
}

/**
 * Throw to fail an attempt with a code of your own and have it retried per the step's
 * retry policy (a plain `Error` with a `code` does the same; this one says so).
 *
 * @example
 * ```ts
 * if (res.status === 503) throw new RetryableError('E_UPSTREAM_BUSY', 'the stock service is busy');
 * ```
 */
export class RetryableError extends CodedError {
  constructor(code: string, message: string) {
    super(code, message, true);
  }
}

/** Whether a module's default export was made by `defineFunction` (the runtime's catalogue uses it). */
export function isDefinedFunction(v: unknown): v is DefinedFunction {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'workflow-function';
}
