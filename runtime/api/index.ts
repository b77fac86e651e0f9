import { RuntimeError } from '../errors/index.js';
import { labelled, type Logger, type Metrics } from '../observability/index.js';
import { errorReply, json } from './body.js';
import type { Authenticator } from './auth.js';
import { startHttpServer, type HttpServer, type Route } from './http-server.js';

export { workflowRoutes } from './routes-workflows.js';
export { executionRoutes, type ExecutionDeps } from './routes-executions.js';
export { opsRoutes, type ReadinessCheck } from './routes-ops.js';
export { durableRoutes, type DurableRouteDeps } from './routes-durable.js';
export { docRoutes } from './routes-docs.js';
export { consoleRoutes } from './routes-console.js';
export { RunEvents, type RunEvent } from './run-events.js';
export { openApiDocument } from './openapi.js';
export { functionRoutes, type FunctionInfo } from './routes-functions.js';
export { overviewRoutes, type OverviewDeps } from './routes-overview.js';
export { Waiters } from './waiters.js';
export { Admission, type AdmissionOptions } from './admission.js';
export { Authenticator, parseApiKeys, SCOPES, type ApiKey, type Scope } from './auth.js';
export type { HttpServer, Route } from './http-server.js';

export interface ServeOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  readTimeoutMs: number;
  routes: Route[];
  /** API keys: every route's scope is checked before its body is read */
  auth: Authenticator;
  log: Logger;
  metrics: Metrics;
}

/**
 * Starts the HTTP front door with the given routes, API keys, the error shape and request
 * metrics. Every /api/v1 route must say what scope it needs: a route added without one is a
 * start-up error, never an open door.
 */
export function serve(o: ServeOptions): Promise<HttpServer> {
  const routes = o.routes.map((r): Route => {
    if (r.pattern.startsWith('/api/') && (!r.scope || (r.scope === 'public' && !r.openOnPurpose))) {
      throw new Error(`route ${r.method.toUpperCase()} ${r.pattern} has no scope: every /api/v1 route needs one`);
    }
    const scope = r.scope;
    if (!scope || scope === 'public' || o.auth.open) return r;
    const own = r.guard;
    return {
      ...r,
      guard: (req) => {
        o.auth.authorize(req.header('authorization'), scope);
        own?.(req);
      },
    };
  });
  return startHttpServer({
    host: o.host,
    port: o.port,
    maxBodyBytes: o.maxBodyBytes,
    readTimeoutMs: o.readTimeoutMs,
    routes,
    notFound: (req, allowed) =>
      allowed.length
        ? json(
            405,
            {
              error: {
                code: 'E_METHOD_NOT_ALLOWED',
                message: `${req.method} is not allowed on ${req.path}; allowed: ${allowed.join(', ')}`,
              },
            },
            { allow: allowed.join(', ') },
          )
        : json(404, { error: { code: 'E_NOT_FOUND', message: `no route ${req.method} ${req.path}; see docs/api.md` } }),
    onError: (err) => {
      const reply = errorReply(err);
      if (reply.status >= 500 && !(err instanceof RuntimeError && err.code !== 'E_INTERNAL')) o.log.error({ err }, 'request failed');
      return reply;
    },
    observe: (route, method, status, seconds) => {
      const labels = { route, method, status: String(status) };
      labelled(o.metrics.httpRequests, labels).inc();
      labelled(o.metrics.httpDuration, labels).observe(seconds);
    },
  });
}
