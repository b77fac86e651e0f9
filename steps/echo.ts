import { defineFunction, Type } from '../runtime/sdk/index.js';

/**
 * `echo`: returns its config's `message` and the input it was given.
 *
 * ```json
 * { "name": "say-hello", "type": "echo", "config": { "message": "Hello POC" } }
 * ```
 * output: `{ "message": "Hello POC", "input": <the step's input> }`
 */
export default defineFunction({
  name: 'echo',
  description: 'Returns config.message and the step input unchanged.',
  output: Type.Object({ message: Type.Unknown(), input: Type.Unknown() }),
  inline: true,
  handler: (input, ctx) => ({ message: ctx.config.message ?? null, input }),
});
