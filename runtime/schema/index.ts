import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';

const compiledSchemas = new WeakMap<TSchema, TypeCheck<TSchema>>();

/**
 * A TypeBox schema compiled once (request bodies, definitions, function input, output and
 * config schemas): compiling is far slower than checking, and schemas never change.
 */
export function compiled<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiledSchemas.get(schema);
  if (!c) compiledSchemas.set(schema, (c = TypeCompiler.Compile(schema)));
  return c as TypeCheck<T>;
}

/** The first way `value` does not match `schema`, as "path: message", or null when it matches. */
export function schemaProblem(schema: TSchema | undefined, value: unknown): string | null {
  if (!schema) return null;
  const c = compiled(schema);
  if (c.Check(value)) return null;
  const e = c.Errors(value).First();
  return e ? `${e.path || '/'}: ${e.message}` : 'does not match the schema';
}
