import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ErrorCodes, isErrorCode, RuntimeError, toPlain } from '../errors/index.js';
import { Duration } from '../engine/index.js';
import { compiled } from '../schema/index.js';
import { findUnstorable } from '../store/index.js';
import type { Reply, Request } from './http-server.js';

const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;
export const CreateWorkflowBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 255 }),
    description: Type.Optional(Type.String({ maxLength: 10_000 })),
    // shape checked in detail by the registry, which reports paths inside it
    definition: Type.Unknown(),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
    created_by: Type.Optional(Type.String({ maxLength: 255 })),
  },
  { additionalProperties: false },
);

export const ExecuteBody = Type.Object(
  {
    workflow_id: Type.String({ minLength: 1, maxLength: 255 }),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
    input_data: Type.Optional(Type.Unknown()),
    wait: Type.Optional(Type.Boolean()),
    wait_timeout: Type.Optional(Duration),
    idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  },
  { additionalProperties: false },
);

export const SignalBody = Type.Unknown();

export const EventBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 255 }),
    data: Type.Optional(Type.Unknown()),
    id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  },
  { additionalProperties: false },
);

export const ScheduleBody = Type.Object(
  {
    workflow_id: Type.String({ minLength: 1, maxLength: 255 }),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
    cron: Type.String({ minLength: 1, maxLength: 255 }),
    timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    input_data: Type.Optional(Type.Unknown()),
    overlap: Type.Optional(Type.Union([Type.Literal('skip'), Type.Literal('allow')])),
    catchup: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('latest'), Type.Literal('all')])),
  },
  { additionalProperties: false },
);

/** Parses a JSON body and checks it against a schema; errors name the offending path. */
export function parseBody<T extends TSchema>(req: Request, schema: T): Static<T> {
  if (!req.body || req.body.length === 0) throw new RuntimeError('E_VALIDATION', 'request body is empty; send a JSON object');
  let value: unknown;
  const text = req.body.toString('utf8');
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new RuntimeError('E_BAD_JSON', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RuntimeError('E_VALIDATION', 'request body must be a JSON object');
  }
  // PostgreSQL cannot store NUL or a lone surrogate in JSON: refuse them here rather than fail
  // later (both can only arrive as \u escapes; the cheap test on the raw text skips the walk)
  if (text.includes('\\u') && (text.includes('u0000') || ESCAPED_SURROGATE.test(text))) {
    const found = findUnstorable(value);
    if (found !== null)
      throw new RuntimeError('E_VALIDATION', `invalid request body: ${found.path || '/'} contains ${found.what}, which cannot be stored`);
  }
  const c = compiled(schema);
  if (!c.Check(value)) {
    const errors = [...c.Errors(value)].slice(0, 5).map((e) => ({ path: e.path || '/', message: e.message }));
    const first = errors[0];
    const message = first.message.startsWith('Unexpected property') ? `unknown field ${first.path}` : `${first.path}: ${first.message}`;
    throw new RuntimeError('E_VALIDATION', `invalid request body: ${message}`, { problems: errors });
  }
  return value;
}

/** A query parameter as a bounded integer. */
export function intParam(req: Request, name: string, dflt: number, min: number, max: number): number {
  const raw = req.query.get(name);
  if (raw === null || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RuntimeError('E_VALIDATION', `query parameter "${name}" must be an integer from ${min} to ${max}`);
  }
  return n;
}

export function json(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return { status, body: JSON.stringify(body), headers };
}

/** Headers that go with an error: how to authenticate, when to come back. */
const REPLY_HEADERS: Record<string, Record<string, string>> = {
  E_UNAUTHENTICATED: { 'www-authenticate': 'Bearer realm="workflow-runtime"' },
  E_OVERLOADED: { 'retry-after': '1' },
  E_STOPPING: { 'retry-after': '1' },
  E_QUEUE_UNAVAILABLE: { 'retry-after': '1' },
  E_STORE_UNAVAILABLE: { 'retry-after': '1' },
};

/** The one error shape: `{ error: { code, message, details? } }`. */
export function errorReply(err: unknown): Reply {
  const plain = unavailable(err) ? { code: 'E_STORE_UNAVAILABLE', message: 'the database is not reachable; retry shortly' } : toPlain(err);
  const status = isErrorCode(plain.code) ? ErrorCodes[plain.code].status : 500;
  if (status >= 500 && plain.code === 'E_INTERNAL') plain.message = 'internal error; the server log has the details';
  return json(status, { error: plain }, REPLY_HEADERS[plain.code]);
}

/** Connection-level failures of Postgres (or another store): the caller should retry, not report a bug. */
function unavailable(err: unknown): boolean {
  if (err instanceof RuntimeError) return false;
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string') return false;
  return /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|CONNECTION_\w+|CONNECT_TIMEOUT|57P0[1-3]|08\w{3})$/.test(code);
}
