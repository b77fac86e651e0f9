import { isDeepStrictEqual } from 'node:util';
import type { Condition } from './definition.js';
import { readPath } from './template.js';

/**
 * Whether a `choice` condition holds for the run's data (the same roots as
 * templates: input, run, steps, item, index). No expressions: a path and one
 * test, or all / any / not of conditions.
 *
 * - `equals` / `not_equals`: deep equality of JSON values.
 * - `gt`, `gte`, `lt`, `lte`: numbers with numbers, strings with strings;
 *   anything else (a missing value, a string against a number) is false.
 * - `in`: the value equals one of the listed values.
 * - `exists`: the path reads something other than undefined (JSON null exists).
 */
export function evaluateCondition(c: Condition, root: Record<string, unknown>): boolean {
  if (c.all) return c.all.every((x) => evaluateCondition(x, root));
  if (c.any) return c.any.some((x) => evaluateCondition(x, root));
  if (c.not) return !evaluateCondition(c.not, root);
  const v = readPath(c.path!, root);
  if ('exists' in c && c.exists !== undefined) return (v !== undefined) === c.exists;
  if ('equals' in c) return isDeepStrictEqual(v, c.equals);
  if ('not_equals' in c) return !isDeepStrictEqual(v, c.not_equals);
  if (c.in) return c.in.some((x) => isDeepStrictEqual(v, x));
  if (c.gt !== undefined) return comparable(v, c.gt) && v > c.gt;
  if (c.gte !== undefined) return comparable(v, c.gte) && v >= c.gte;
  if (c.lt !== undefined) return comparable(v, c.lt) && v < c.lt;
  if (c.lte !== undefined) return comparable(v, c.lte) && v <= c.lte;
  return false;
}

/** Same type, so `<` compares numbers as numbers and strings as strings (never one coerced to the other). */
function comparable(v: unknown, bound: number | string): v is typeof bound {
  return typeof v === typeof bound && (typeof v !== 'number' || !Number.isNaN(v));
}
