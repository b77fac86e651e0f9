import { defineFunction } from '../runtime/sdk/index.js';

/**
 * `delay`: waits `config.ms` milliseconds (at most one hour), then passes its input on.
 *
 * ```json
 * { "name": "cool-down", "type": "delay", "config": { "ms": 1500 } }
 * ```
 * output: the step's input, unchanged. Stops early (and fails with E_STEP_TIMEOUT) when the
 * step's timeout fires first.
 */
export default defineFunction({
  name: 'delay',
  description: 'Waits config.ms milliseconds, then returns its input.',
  handler: async (input, ctx) => {
    const ms = Math.min(Math.max(Number(ctx.config.ms ?? 0), 0), 3_600_000);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      ctx.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          reject(ctx.signal.reason as Error);
        },
        { once: true },
      );
    });
    return input;
  },
});
