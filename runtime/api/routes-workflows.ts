import type { Registry, Workflow } from '../registry/index.js';
import { CreateWorkflowBody, intParam, json, parseBody } from './body.js';
import type { Route } from './http-server.js';

/** Registry endpoints: register, list, get and archive workflow versions. */
export function workflowRoutes(registry: Registry): Route[] {
  return [
    {
      method: 'post',
      pattern: '/api/v1/workflows',
      scope: 'admin',
      handler: async (req) => {
        const body = parseBody(req, CreateWorkflowBody);
        const wf = await registry.create(body);
        return json(201, wf, { location: `/api/v1/workflows/${wf.id}` });
      },
    },
    {
      method: 'get',
      pattern: '/api/v1/workflows',
      scope: 'read',
      handler: async (req) => {
        const limit = intParam(req, 'limit', 50, 1, 500);
        const workflows = await registry.list({
          limit,
          name: req.query.get('name') || undefined,
          status: req.query.get('status') || undefined,
          before: req.query.get('before') || undefined,
        });
        return json(200, { workflows, next: workflows.length === limit ? workflows.at(-1)!.id : null });
      },
    },
    {
      method: 'get',
      pattern: '/api/v1/workflows/:id',
      scope: 'read',
      handler: async (req) => json(200, await registry.resolve(req.params.id, req.query.get('version') || undefined)),
    },
    {
      method: 'delete',
      pattern: '/api/v1/workflows/:id',
      scope: 'admin',
      handler: async (req) => {
        const wf: Workflow = await registry.resolve(req.params.id);
        return json(200, await registry.setStatus(wf.id, 'archived'));
      },
    },
  ];
}
