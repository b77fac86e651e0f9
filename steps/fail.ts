import { defineFunction, NonRetryableError, RetryableError } from '../runtime/sdk/index.js';

/**
 * `fail`: fails on purpose, for testing retries and error handling.
 *
 * ```json
 * { "name": "flaky", "type": "fail", "config": { "times": 2, "code": "E_FLAKY", "message": "try again" },
 *   "retry": { "max_retries": 3, "retry_delay": "100ms" } }
 * ```
 * config: `times` — attempts that fail before one succeeds (default: every attempt fails);
 * `code` (default `E_STEP_FAILED`), `message`; `retryable: false` fails at once without retries.
 * On success the output is `{ "attempt": n, "input": <the step's input> }`.
 */
export default defineFunction({
  name: 'fail',
  description: 'Fails the first `times` attempts (all when unset), then succeeds.',
  inline: true,
  handler: (input, ctx) => {
    const times = typeof ctx.config.times === 'number' ? ctx.config.times : Infinity;
    if (ctx.attempt > times) return { attempt: ctx.attempt, input };
    const code = typeof ctx.config.code === 'string' ? ctx.config.code : 'E_STEP_FAILED';
    const message = typeof ctx.config.message === 'string' ? ctx.config.message : `failing on purpose (attempt ${ctx.attempt})`;
    if (ctx.config.retryable === false) throw new NonRetryableError(code, message);
    throw new RetryableError(code, message);
  },
});
