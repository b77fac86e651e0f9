import { Type, type TSchema } from '@sinclair/typebox';
import { ErrorCodes, type ErrorCode } from '../errors/index.js';
import { CreateWorkflowBody, EventBody, ExecuteBody, ScheduleBody } from './body.js';
import type { Route } from './http-server.js';
import * as S from './schemas.js';

/** What the document says of one route: its request body is the schema the route validates with. */
interface RouteDoc {
  summary: string;
  tag: 'runs' | 'workflows' | 'functions' | 'events' | 'schedules' | 'operations';
  description?: string;
  body?: TSchema;
  query?: Record<string, { schema: TSchema; description: string }>;
  responses: Record<number, { description: string; schema?: TSchema; contentType?: string }>;
  /** error codes this route answers beyond the ones every route may (bad input, keys, overload) */
  errors?: ErrorCode[];
}

const str = (description: string, schema: TSchema = Type.String()) => ({ schema, description });
const LIMIT = str('page size', Type.Integer({ minimum: 1, maximum: 500, default: 50 }));

/**
 * Every route the front door serves, by `METHOD pattern`. A route missing here fails the
 * document's generation (and so the test that serves it): the document cannot leave one out.
 */
const DOCS: Record<string, RouteDoc> = {
  'get /health': { summary: 'Liveness', tag: 'operations', responses: { 200: { description: 'the process runs', schema: S.Health } } },
  'get /ready': {
    summary: 'Readiness: every dependency answers',
    tag: 'operations',
    responses: { 200: { description: 'ready', schema: S.Ready }, 503: { description: 'not ready, or draining', schema: S.Ready } },
  },
  'get /metrics': {
    summary: 'Prometheus metrics',
    tag: 'operations',
    responses: { 200: { description: 'text exposition format', contentType: 'text/plain' } },
  },
  'get /api/v1/openapi.json': {
    summary: 'This document',
    tag: 'operations',
    responses: { 200: { description: 'OpenAPI 3.1', schema: Type.Object({}) } },
  },
  'get /api-docs': {
    summary: 'This document, to read (Swagger UI, served from the runtime)',
    tag: 'operations',
    responses: { 200: { description: 'an HTML page', contentType: 'text/html' } },
  },
  'get /api-docs/:file': {
    summary: "The page's script and style (Swagger UI)",
    tag: 'operations',
    responses: { 200: { description: 'a static file', contentType: 'application/octet-stream' } },
    errors: ['E_NOT_FOUND'],
  },
  'get /': {
    summary: 'Redirects to the web console (/console)',
    tag: 'operations',
    responses: { 302: { description: 'to /console' } },
  },
  'get /console/': {
    summary: 'Redirects to /console',
    tag: 'operations',
    responses: { 302: { description: 'to /console' } },
  },
  'get /console': {
    summary: 'The web console (runs, a run live, workflows, functions, schedules, overview)',
    tag: 'operations',
    responses: { 200: { description: 'an HTML page', contentType: 'text/html' } },
    errors: ['E_NOT_FOUND'],
  },
  'get /console/assets/:file': {
    summary: "The console's scripts and styles (hashed names, cached as immutable)",
    tag: 'operations',
    responses: { 200: { description: 'a static file', contentType: 'application/octet-stream' } },
    errors: ['E_NOT_FOUND'],
  },
  'post /api/v1/workflows': {
    summary: 'Register a workflow (a new version of a name)',
    tag: 'workflows',
    body: CreateWorkflowBody,
    responses: { 201: { description: 'registered', schema: S.WorkflowView } },
    errors: ['E_WORKFLOW_INVALID', 'E_WORKFLOW_EXISTS'],
  },
  'get /api/v1/workflows': {
    summary: 'List workflow versions, newest first',
    tag: 'workflows',
    query: {
      name: str('only this name'),
      status: str('active or archived'),
      before: str('cursor: `next` of the previous page'),
      limit: LIMIT,
    },
    responses: { 200: { description: 'a page', schema: S.WorkflowList } },
  },
  'get /api/v1/workflows/:id': {
    summary: 'A workflow: by id, or by name (its latest active version)',
    tag: 'workflows',
    query: { version: str('a version of the name') },
    responses: { 200: { description: 'the workflow', schema: S.WorkflowView } },
    errors: ['E_WORKFLOW_NOT_FOUND'],
  },
  'delete /api/v1/workflows/:id': {
    summary: 'Archive a workflow version',
    tag: 'workflows',
    responses: { 200: { description: 'archived', schema: S.WorkflowView } },
    errors: ['E_WORKFLOW_NOT_FOUND'],
  },
  'get /api/v1/functions': {
    summary: 'The step types and functions the executors run, with their schemas',
    tag: 'functions',
    responses: { 200: { description: 'the catalogue', schema: S.FunctionList } },
  },
  'post /api/v1/execute': {
    summary: 'Start a run',
    tag: 'runs',
    description: 'Answers once the run is durably queued; with `wait` it waits for the result up to `wait_timeout` (202 when that passes).',
    body: ExecuteBody,
    query: { wait: str('true: wait for the result', Type.Boolean()) },
    responses: {
      200: { description: 'queued (or done, with wait; or deduplicated by its idempotency key)', schema: S.ExecuteAnswer },
      202: { description: 'waited `wait_timeout`; the run goes on', schema: S.ExecuteAnswer },
    },
    errors: ['E_WORKFLOW_NOT_FOUND', 'E_WORKFLOW_INACTIVE', 'E_IDEMPOTENCY_CONFLICT', 'E_QUEUE_UNAVAILABLE', 'E_STOPPING'],
  },
  'get /api/v1/executions': {
    summary: 'List runs, newest first',
    tag: 'runs',
    query: {
      status: str('queued, running, waiting, completed, failed or cancelled'),
      workflow_id: str('a workflow id (that version) or name (every version)'),
      from: str('accepted at or after: ISO 8601 or ms since the epoch'),
      to: str('accepted before'),
      before: str('cursor: `next` of the previous page'),
      limit: LIMIT,
    },
    responses: { 200: { description: 'a page', schema: S.RunList } },
  },
  'get /api/v1/executions/:run_id': {
    summary: 'A run with its steps',
    tag: 'runs',
    responses: { 200: { description: 'the run', schema: S.RunView } },
    errors: ['E_RUN_NOT_FOUND'],
  },
  'get /api/v1/executions/:run_id/events': {
    summary: "A run's live progress (Server-Sent Events)",
    tag: 'runs',
    description:
      'Events: `snapshot` (the run, as GET answers it) first, then `run` (the run without steps) and `step` (one step) on each change, then `end` (the final run with its steps), and the stream closes. A late listener gets the current state first; a comment every 5 s keeps the connection open.',
    responses: { 200: { description: 'an event stream', contentType: 'text/event-stream' } },
    errors: ['E_RUN_NOT_FOUND'],
  },
  'get /api/v1/overview': {
    summary: 'The cluster at a glance: runs over time, durations, runs now, the queue, the executors',
    tag: 'runs',
    description:
      'Read from PostgreSQL, the queue and the executor registry: the same answer from every API process. An answer serves every request for the same `minutes` for a second (longer when it took long to make: docs/api.md).',
    query: { minutes: str('the window', Type.Integer({ minimum: 1, maximum: 60, default: 15 })) },
    responses: { 200: { description: 'the overview', schema: S.Overview } },
  },
  'post /api/v1/executions/:run_id/cancel': {
    summary: 'Cancel a run (and its child runs)',
    tag: 'runs',
    responses: { 202: { description: 'cancelling (or cancelled)', schema: S.Accepted } },
    errors: ['E_RUN_NOT_FOUND', 'E_RUN_FINAL'],
  },
  'post /api/v1/executions/:run_id/retry': {
    summary: 'Redrive a failed or cancelled run from where it failed',
    tag: 'runs',
    responses: { 202: { description: 'queued again', schema: S.Accepted } },
    errors: ['E_RUN_NOT_FOUND', 'E_RUN_NOT_FAILED'],
  },
  'post /api/v1/executions/:run_id/signals/:name': {
    summary: 'Signal a run (a `wait_for_signal` step)',
    tag: 'runs',
    body: Type.Object({}, { description: 'any JSON object: the waiting step outputs it (or send no body)' }),
    responses: { 202: { description: 'stored', schema: S.SignalAnswer } },
    errors: ['E_RUN_NOT_FOUND', 'E_RUN_FINAL'],
  },
  'post /api/v1/events': {
    summary: 'Send an event (starts triggered workflows, ends matching `wait_for_event` steps)',
    tag: 'events',
    body: EventBody,
    responses: { 202: { description: 'stored', schema: S.EventAnswer } },
  },
  'post /api/v1/schedules': {
    summary: 'Create a cron schedule',
    tag: 'schedules',
    body: ScheduleBody,
    responses: { 201: { description: 'created', schema: S.ScheduleView } },
    errors: ['E_WORKFLOW_NOT_FOUND'],
  },
  'get /api/v1/schedules': {
    summary: 'List schedules',
    tag: 'schedules',
    query: { workflow_name: str('only this workflow'), limit: LIMIT },
    responses: { 200: { description: 'the schedules', schema: S.ScheduleList } },
  },
  'get /api/v1/schedules/:id': {
    summary: 'A schedule and its recent ticks',
    tag: 'schedules',
    responses: { 200: { description: 'the schedule', schema: S.ScheduleView } },
    errors: ['E_SCHEDULE_NOT_FOUND'],
  },
  'delete /api/v1/schedules/:id': {
    summary: 'Delete a schedule',
    tag: 'schedules',
    responses: { 200: { description: 'deleted', schema: S.Deleted } },
    errors: ['E_SCHEDULE_NOT_FOUND'],
  },
  'post /api/v1/schedules/:id/pause': {
    summary: 'Pause a schedule',
    tag: 'schedules',
    responses: { 200: { description: 'paused', schema: S.ScheduleView } },
    errors: ['E_SCHEDULE_NOT_FOUND'],
  },
  'post /api/v1/schedules/:id/resume': {
    summary: 'Resume a schedule from its next tick',
    tag: 'schedules',
    responses: { 200: { description: 'resumed', schema: S.ScheduleView } },
    errors: ['E_SCHEDULE_NOT_FOUND'],
  },
};

/** A route's key in DOCS; the metrics path may be configured, it is documented as /metrics. */
const keyOf = (r: Pick<Route, 'method' | 'pattern' | 'name'>, metricsPath: string) =>
  `${r.method} ${r.pattern === metricsPath ? '/metrics' : r.pattern}`;

/**
 * The OpenAPI 3.1 document of the routes this process serves. Throws when a route has no entry
 * in DOCS (a route added without its documentation).
 */
export function openApiDocument(
  routes: Pick<Route, 'method' | 'pattern' | 'scope' | 'name'>[],
  o: { version: string; metricsPath: string },
) {
  const paths: Record<string, Record<string, unknown>> = {};
  const missing: string[] = [];
  for (const r of routes) {
    const key = keyOf(r, o.metricsPath);
    const doc = DOCS[key];
    if (!doc) {
      missing.push(key);
      continue;
    }
    const path = r.pattern.replace(/:(\w+)/g, '{$1}');
    const params = [...r.pattern.matchAll(/:(\w+)/g)].map(([, name]) => ({
      name,
      in: 'path',
      required: true,
      schema:
        name === 'name'
          ? { type: 'string' }
          : name === 'id' && r.pattern.startsWith('/api/v1/workflows')
            ? { type: 'string', description: 'an id, or a name' }
            : { type: 'string', format: 'uuid' },
    }));
    for (const [name, q] of Object.entries(doc.query ?? {}))
      params.push({ name, in: 'query', required: false, schema: plain(q.schema) as never, ...{ description: q.description } });
    const responses: Record<string, unknown> = {};
    for (const [status, res] of Object.entries(doc.responses)) {
      responses[status] = {
        description: res.description,
        ...(res.schema || res.contentType
          ? { content: { [res.contentType ?? 'application/json']: { schema: res.schema ? ref(res.schema) : { type: 'string' } } } }
          : {}),
      };
    }
    for (const [status, codes] of errorStatuses(r, doc)) {
      responses[status] ??= {
        description: `error: ${codes.join(', ')}`,
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    const scoped = r.scope && r.scope !== 'public';
    (paths[path] ??= {})[r.method] = {
      operationId: operationId(key),
      summary: doc.summary,
      ...(doc.description ? { description: doc.description } : {}),
      tags: [doc.tag],
      ...(params.length ? { parameters: params } : {}),
      ...(doc.body
        ? {
            requestBody: {
              required: r.pattern.includes('/signals/') ? false : true,
              content: { 'application/json': { schema: ref(doc.body) } },
            },
          }
        : {}),
      responses,
      security: scoped ? [{ apiKey: [] }] : [],
      ...(scoped ? { 'x-scope': r.scope } : {}),
    };
  }
  if (missing.length) throw new Error(`routes without documentation in runtime/api/openapi.ts: ${missing.join(', ')}`);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Workflow runtime API',
      version: o.version,
      description:
        'Durable multi-step workflows over HTTP. Errors are `{"error": {"code", "message", "details"?}}`; the codes are listed in docs/api.md.',
    },
    servers: [{ url: '/' }],
    tags: ['runs', 'workflows', 'functions', 'events', 'schedules', 'operations'].map((name) => ({ name })),
    paths,
    components: {
      schemas: Object.fromEntries(S.SCHEMAS.map((s) => [s.$id!, plain(s, true)])),
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'an API key from API_KEYS (docs/api.md "Authentication"), with the scope the route needs (`x-scope`)',
        },
      },
    },
  };
}

/** The statuses of the errors a route may answer, with their codes. */
function errorStatuses(r: Pick<Route, 'method' | 'scope'>, doc: RouteDoc): [string, string[]][] {
  const codes: ErrorCode[] = [...(doc.errors ?? [])];
  if (doc.body || doc.query || r.method !== 'get') codes.push('E_VALIDATION');
  if (doc.body) codes.push('E_BAD_JSON', 'E_BODY_TOO_LARGE', 'E_READ_TIMEOUT');
  if (r.scope && r.scope !== 'public') codes.push('E_UNAUTHENTICATED', 'E_FORBIDDEN');
  if (r.method !== 'get') codes.push('E_OVERLOADED', 'E_STORE_UNAVAILABLE');
  const byStatus = new Map<string, string[]>();
  for (const c of new Set(codes)) {
    const s = String(ErrorCodes[c].status);
    byStatus.set(s, [...(byStatus.get(s) ?? []), c]);
  }
  return [...byStatus];
}

function operationId(key: string): string {
  const [method, path] = key.split(' ');
  const words = path
    .replace(/^\/api\/v1\//, '')
    .split(/[/.-]/)
    .filter(Boolean)
    .map((w) => (w.startsWith(':') ? `by_${w.slice(1)}` : w));
  return [method, ...words].join('_');
}

/** A named schema as a reference to its component; others inline. */
function ref(s: TSchema): unknown {
  return s.$id ? { $ref: `#/components/schemas/${s.$id}` } : plain(s);
}

/** A schema as plain JSON (TypeBox's symbols dropped), nested named schemas as references. */
function plain(s: unknown, top = false): unknown {
  if (Array.isArray(s)) return s.map((x) => plain(x));
  if (!s || typeof s !== 'object') return s;
  const o = s as Record<string, unknown>;
  if (!top && typeof o.$id === 'string') return { $ref: `#/components/schemas/${o.$id}` };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (k !== '$id') out[k] = plain(v);
  return out;
}
