import { json } from './body.js';
import type { Route } from './http-server.js';

/** What the API needs to know of a step type or function (kept free of the executor's types). */
export interface FunctionInfo {
  name: string;
  builtin: boolean;
  fn: {
    description?: string;
    input?: unknown;
    output?: unknown;
    config?: unknown;
    timeoutMs?: number;
    retry?: unknown;
    inline?: boolean;
    concurrency?: number;
    memoryMb?: number;
  };
}

/** `GET /api/v1/functions`: the step types and functions this host's executors can run, with their schemas. */
export function functionRoutes(catalogue: () => Iterable<FunctionInfo>): Route[] {
  return [
    {
      method: 'get',
      pattern: '/api/v1/functions',
      scope: 'read',
      handler: () => {
        const functions = [...catalogue()]
          .map((e) => ({
            name: e.name,
            kind: e.builtin ? 'builtin' : 'function',
            description: e.fn.description ?? null,
            input_schema: e.fn.input ?? null,
            output_schema: e.fn.output ?? null,
            config_schema: e.fn.config ?? null,
            timeout_ms: e.fn.timeoutMs ?? null,
            retry: e.fn.retry ?? null,
            concurrency: e.fn.concurrency ?? null,
            memory_mb: e.fn.memoryMb ?? null,
          }))
          .sort((a, b) => a.name.localeCompare(b.name));
        return json(200, { functions });
      },
    },
  ];
}
