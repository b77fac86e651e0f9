import { uuidv7 } from '../ids.js';
import { RuntimeError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { TtlCache, type Cache } from '../cache/index.js';
import type { WorkflowRecords, WorkflowRow } from '../store/index.js';
import { validateDefinition, type KnownTypes, type WorkflowDefinition } from '../engine/index.js';
import type { WorkflowChange } from '../queue/index.js';

/** A workflow version as the runtime uses it. Definitions of a version never change. */
export interface Workflow {
  id: string;
  name: string;
  version: string;
  status: string;
  description: string | null;
  definition: WorkflowDefinition;
  created_at: string;
  updated_at: string;
  created_by: string | null;
  updated_by: string | null;
}

export interface NewWorkflowInput {
  name: string;
  description?: string;
  definition: unknown;
  version?: string;
  created_by?: string;
}

export interface RegistryDeps {
  workflows: WorkflowRecords;
  cache: Cache;
  log: Logger;
  cacheTtlMs: number;
  /** step types executors can run; null skips that check */
  knownTypes: () => KnownTypes | null;
  /** tells other processes that a name's latest version or a status changed */
  broadcast?: (c: WorkflowChange) => void;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string is a UUID (workflow and run ids are UUIDv7). */
export const isUuid = (s: string): boolean => UUID_RE.test(s);

/**
 * Workflow definitions: registration, versions and lookup. Lookups go
 * in-process cache, then Redis, then Postgres (the only durable copy).
 */
export class Registry {
  private readonly byId: TtlCache<Workflow>;
  private readonly byName: TtlCache<string>;

  constructor(private readonly d: RegistryDeps) {
    this.byId = new TtlCache(d.cacheTtlMs);
    this.byName = new TtlCache(d.cacheTtlMs);
  }

  async create(input: NewWorkflowInput): Promise<Workflow> {
    const problems = validateDefinition(input.definition, this.d.knownTypes());
    if (problems.length) {
      throw new RuntimeError('E_WORKFLOW_INVALID', `workflow definition is invalid: ${problems[0].path}: ${problems[0].message}`, {
        problems,
      });
    }
    const version = input.version ?? '1.0.0';
    const row = await this.d.workflows.insert({
      id: uuidv7(),
      name: input.name,
      description: input.description ?? null,
      definition: input.definition,
      version,
      created_by: input.created_by ?? null,
    });
    if (!row) {
      throw new RuntimeError('E_WORKFLOW_EXISTS', `workflow "${input.name}" version "${version}" already exists; register a new version`, {
        name: input.name,
        version,
      });
    }
    const wf = toWorkflow(row);
    this.changed({ id: wf.id, name: wf.name });
    return wf;
  }

  async list(q: { limit: number; name?: string; status?: string; before?: string }): Promise<Workflow[]> {
    if (q.before && !UUID_RE.test(q.before)) throw new RuntimeError('E_VALIDATION', '"before" must be a workflow id from a previous page');
    return (await this.d.workflows.list(q)).map(toWorkflow);
  }

  /**
   * Resolves a workflow by id, or by name (its latest active version, or the
   * given version). Throws E_WORKFLOW_NOT_FOUND.
   */
  async resolve(idOrName: string, version?: string): Promise<Workflow> {
    const wf = await this.find(idOrName, version);
    if (!wf) {
      const what = version ? `"${idOrName}" version "${version}"` : `"${idOrName}"`;
      throw new RuntimeError(
        'E_WORKFLOW_NOT_FOUND',
        `no workflow ${what}; register it with POST /api/v1/workflows or list them with GET /api/v1/workflows`,
      );
    }
    return wf;
  }

  async find(idOrName: string, version?: string): Promise<Workflow | null> {
    if (UUID_RE.test(idOrName) && !version) return this.getById(idOrName.toLowerCase());
    if (version) {
      const row = await this.d.workflows.byNameVersion(idOrName, version);
      return row ? this.remember(toWorkflow(row)) : null;
    }
    const cachedId = this.byName.get(idOrName) ?? (await this.d.cache.cachedWorkflowId(idOrName));
    if (cachedId) {
      const wf = await this.getById(cachedId);
      if (wf && wf.status === 'active') {
        this.byName.set(idOrName, wf.id);
        return wf;
      }
    }
    const row = await this.d.workflows.latestByName(idOrName);
    if (!row) return null;
    const wf = this.remember(toWorkflow(row));
    this.byName.set(idOrName, wf.id);
    await this.d.cache.cacheWorkflowId(idOrName, wf.id, this.d.cacheTtlMs);
    return wf;
  }

  async getById(id: string): Promise<Workflow | null> {
    const hit = this.byId.get(id);
    if (hit) return hit;
    const cached = await this.d.cache.cachedWorkflow<Workflow>(id);
    if (cached) {
      this.byId.set(id, cached);
      return cached;
    }
    const row = await this.d.workflows.byId(id);
    if (!row) return null;
    const wf = toWorkflow(row);
    this.byId.set(id, wf);
    await this.d.cache.cacheWorkflow(id, wf, this.d.cacheTtlMs);
    return wf;
  }

  /** Archives a version: it can no longer be started; runs in flight finish. */
  async setStatus(id: string, status: 'active' | 'archived', by?: string): Promise<Workflow> {
    if (!UUID_RE.test(id)) throw new RuntimeError('E_VALIDATION', 'workflow id must be a UUID');
    const row = await this.d.workflows.setStatus(id, status, by ?? null);
    if (!row) throw new RuntimeError('E_WORKFLOW_NOT_FOUND', `no workflow with id ${id}`);
    const wf = toWorkflow(row);
    this.changed({ id: wf.id, name: wf.name });
    return wf;
  }

  /** Drops cached entries after a change here or in another process. */
  invalidate(c: WorkflowChange): void {
    this.byId.delete(c.id);
    this.byName.delete(c.name);
  }

  private changed(c: WorkflowChange): void {
    this.invalidate(c);
    void this.d.cache.forgetWorkflow(c.id, c.name);
    this.d.broadcast?.(c);
  }

  private remember(wf: Workflow): Workflow {
    this.byId.set(wf.id, wf);
    return wf;
  }
}

function toWorkflow(r: WorkflowRow): Workflow {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    status: r.status,
    description: r.description,
    definition: r.definition as WorkflowDefinition,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    created_by: r.created_by,
    updated_by: r.updated_by,
  };
}
