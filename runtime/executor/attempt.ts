import { MAX_LOG_LINES } from '../engine/index.js';
import { toPlain } from '../errors/index.js';
import { schemaProblem } from '../schema/index.js';
import type { CatalogueEntry } from './catalogue.js';
import { cancelledError, type StepLogLine, type StepOutcome, type StepTask } from './protocol.js';

/**
 * One step attempt: checks the input against the function's schema, runs the
 * handler with a cooperative timeout (ctx.signal), checks the output. Errors
 * are returned as data, never thrown. Used by worker threads, and on the
 * executor's main thread for trusted inline built-ins.
 */
export async function attempt(
  catalogue: ReadonlyMap<string, CatalogueEntry>,
  t: Omit<StepTask, 'seq' | 'deadline'>,
  logs: StepLogLine[],
  /**
   * `enter`/`leave` around the synchronous part of the handler (the worker marks which task is
   * in user code); `onCancel` receives the function that cancels this attempt.
   */
  hooks?: { enter(): void; leave(): void; onCancel?(cancel: () => void): void },
): Promise<StepOutcome> {
  const entry = catalogue.get(t.type);
  if (!entry) {
    return {
      ok: false,
      error: { code: 'E_STEP_UNKNOWN', message: `no step type or function named "${t.type}" on this executor host` },
      logs,
    };
  }
  const fn = entry.fn;
  const bad = schemaProblem(fn.input, t.input);
  if (bad) return { ok: false, error: { code: 'E_INPUT_INVALID', message: `input of "${t.type}" is invalid at ${bad}` }, logs };
  const badConfig = schemaProblem(fn.config, t.config);
  if (badConfig)
    return {
      ok: false,
      error: { code: 'E_STEP_CONFIG', message: `config of "${t.type}" is invalid at ${badConfig}` },
      logs,
    };

  // created only when the handler reads ctx.signal: most steps never do
  let ac: AbortController | null = null;
  let timer: NodeJS.Timeout | undefined;
  const log = (level: StepLogLine['level']) => (msg: string, data?: unknown) => {
    if (logs.length < MAX_LOG_LINES)
      logs.push(data === undefined ? { t: Date.now(), level, msg: String(msg) } : { t: Date.now(), level, msg: String(msg), data });
  };
  const startedAt = Date.now();
  try {
    let output: unknown;
    let returned: unknown;
    hooks?.enter();
    try {
      returned = fn.handler(t.input, {
        runId: t.runId,
        workflowId: t.workflowId,
        stepName: t.stepName,
        attempt: t.attempt,
        config: t.config,
        runInput: t.runInput,
        steps: t.steps,
        get signal() {
          return (ac ??= new AbortController()).signal;
        },
        log: { info: log('info'), warn: log('warn'), error: log('error') },
      });
    } finally {
      hooks?.leave();
    }
    if (!isThenable(returned)) {
      // answered synchronously: no timeout or cancel could have come in between (most built-ins)
      output = returned;
    } else {
      // the timeout counts from the start of the handler, its synchronous part included
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => {
            const e = Object.assign(
              new Error(`step "${t.stepName}" timed out after ${t.timeoutMs} ms${t.timeoutHint ? ` (${t.timeoutHint})` : ''}`),
              { code: 'E_STEP_TIMEOUT' },
            );
            ac?.abort(e);
            reject(e);
          },
          Math.max(0, t.timeoutMs - (Date.now() - startedAt)),
        );
      });
      // the run was cancelled: the signal fires, and the attempt ends now whether or not the handler listens
      const cancelled = new Promise<never>((_, reject) => {
        hooks?.onCancel?.(() => {
          const { code, message } = cancelledError(t.stepName);
          const e = Object.assign(new Error(message), { code });
          ac?.abort(e);
          reject(e);
        });
      });
      cancelled.catch(() => {});
      output = await Promise.race([returned, timedOut, cancelled]);
    }
    const badOut = schemaProblem(fn.output, output);
    if (badOut)
      return {
        ok: false,
        error: { code: 'E_OUTPUT_INVALID', message: `output of "${t.type}" is invalid at ${badOut}` },
        logs,
      };
    return { ok: true, output: output === undefined ? null : output, logs };
  } catch (err) {
    const plain = toPlain(err, 'E_STEP_FAILED');
    const e = err as { code?: unknown; retryable?: unknown };
    // a function's own error codes are kept as they are (the catalogue knows only the runtime's)
    if (typeof e?.code === 'string' && plain.code === 'E_STEP_FAILED') plain.code = e.code;
    const stack = userStack(err);
    if (stack) plain.stack = stack;
    // whether it is retried is the policy's to decide (engine/policy.ts); the error only says when it must not be
    return { ok: false, error: e?.retryable === false ? { ...plain, retryable: false } : plain, logs };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The stack of an error a function threw, for its step record: source-mapped (the worker turns
 * source maps on, so frames name the .ts file and line), without the runtime's own frames and
 * Node's internals, at most 20 lines.
 */
function userStack(err: unknown): string | undefined {
  if (!(err instanceof Error) || typeof err.stack !== 'string') return undefined;
  const lines = err.stack.split('\n');
  const frames = lines.slice(1).filter((l) => !/node:internal|\/runtime\/executor\/|node_modules\/piscina/.test(l));
  return frames.length ? [lines[0], ...frames].slice(0, 20).join('\n') : undefined; // none: the runtime's own error
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
