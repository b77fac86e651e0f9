import { defineFunction, NonRetryableError } from '../runtime/sdk/index.js';

/**
 * `transform`: builds its output from the run's data with a template (see
 * runtime/engine/template.ts): any JSON whose strings may hold `{{ path }}`,
 * read from `input` (the step's input), `run.input` (the run's input) and
 * `steps.<name>` (earlier steps' outputs), `item` and `index` inside a map
 * (docs/workflows.md). No expressions, no eval.
 *
 * ```json
 * { "name": "summary", "type": "transform", "config": { "template": {
 *     "order": "{{ run.input.order_id }}",
 *     "total": "{{ steps.price.total_cents }}",
 *     "label": "Order {{ run.input.order_id }}: {{ input.currency | default: \"EUR\" }}"
 * } } }
 * ```
 */
export default defineFunction({
  name: 'transform',
  description: 'Builds an object from the run data with a {{ path }} template (config.template).',
  inline: true,
  handler: (_input, ctx) => {
    if (!('template' in ctx.config)) throw new NonRetryableError('E_STEP_CONFIG', 'transform needs config.template');
    return ctx.config.template; // the engine has rendered every {{ }} in the step's config
  },
});
