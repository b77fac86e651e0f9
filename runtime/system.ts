import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  executionRoutes,
  functionRoutes,
  opsRoutes,
  serve,
  Waiters,
  workflowRoutes,
  type HttpServer,
  type ReadinessCheck,
  type Route,
} from './api/index.js';
import { parseAddress, type Config } from './config/index.js';
import { RuntimeError } from './errors/index.js';
import { MemoryCache, RedisCache, type Cache } from './cache/index.js';
import { startDeadLetterHandler } from './engine/index.js';
import { loadCatalogue, startExecutor, type CatalogueEntry, type Executor } from './executor/index.js';
import type { Logger, Metrics } from './observability/index.js';
import { JetStreamQueue, PostgresQueue, type Queue } from './queue/index.js';
import { Registry } from './registry/index.js';
import {
  BatchWriter,
  CancelRecords,
  openPostgres,
  pingPostgres,
  RunRecords,
  WorkflowRecords,
  type SocketTarget,
  type Sql,
} from './store/index.js';
import { startEmbeddedPostgres } from './embedded/index.js';
import { planServices, servicesOf, ServicesUnreachableError, unreachable, type Plan } from './modes.js';

export const ROLES = ['all', 'api', 'registry', 'engine', 'executor'] as const;
export type Role = (typeof ROLES)[number];

export interface SystemOptions {
  role: Role;
  config: Readonly<Config>;
  log: Logger;
  metrics: Metrics;
  /** project root (where steps/, functions/ and dist/ are) */
  root?: string;
  /** dev mode: the executor reloads the functions when their compiled files change */
  dev?: boolean;
}

export interface System {
  role: Role;
  /** which PostgreSQL, queue and cache this start uses, and why (runtime/modes.ts) */
  plan: Plan;
  /** where the records live: the database URL without its password, or the embedded data folder */
  dataLocation: string;
  /** how to reach this system's PostgreSQL (tools, tests): a URL, or the embedded server's socket */
  database: { url: string } | SocketTarget;
  /** the port of this process's HTTP server (api.address, or metrics.port for engine/executor) */
  port: number | null;
  stop(): Promise<void>;
}

/**
 * Starts the parts of the runtime a role needs, passing dependencies down
 * explicitly, so any combination can share one process.
 */
export async function startSystem(o: SystemOptions): Promise<System> {
  const { role, config: c, log, metrics } = o;
  const root = o.root ?? fileURLToPath(new URL('../../', import.meta.url));
  const has = (r: Role) => role === 'all' || role === r;
  const stops: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        log.warn({ err }, 'error while stopping');
      }
    }
  };

  try {
    const plan = await planServices(c);
    const down = await unreachable(servicesOf(plan, c));
    if (down.length) throw new ServicesUnreachableError(plan, down, 'Start them, or point the runtime at where they run.');
    if (plan.mode === 'embedded' && role !== 'all') {
      // the embedded database is this process's: an api without executors, or executors without an api, strand runs
      throw new RuntimeError('E_CONFIG', `the embedded mode runs every role in one process: start it with --role all, not --role ${role}`);
    }
    if (plan.mode === 'services' && c.mode === 'auto' && existsSync(join(root, '.data', 'postgres', 'PG_VERSION'))) {
      log.warn(
        { data: join(root, '.data') },
        `services mode (${plan.reason}); the runs of the embedded mode stay in .data/ (npm start -- --embedded to see them)`,
      );
    }
    const name = `workflow-${role}-${process.pid}`;

    let sql: Sql;
    let dataLocation: string;
    let database: System['database'];
    if (plan.database.kind === 'embedded') {
      const pg = await startEmbeddedPostgres({
        dataDir: c.embedded.data_dir ? resolve(root, c.embedded.data_dir, 'postgres') : join(root, '.data', 'postgres'),
        explicit: c.embedded.data_dir !== '',
        database: c.database.database,
        log,
      });
      stops.push(() => pg.stop());
      sql = await openPostgres(c.database, log, pg.connection);
      dataLocation = pg.dataDir;
      database = pg.connection;
    } else {
      sql = await openPostgres(c.database, log);
      dataLocation = withoutPassword(plan.database.url);
      database = { url: plan.database.url };
    }
    stops.push(() => sql.end({ timeout: 5 }));
    const runs = new RunRecords(sql);
    const cancels = new CancelRecords(sql);
    const cache: Cache = plan.cache === 'redis' ? new RedisCache(c.redis, log) : new MemoryCache(c.registry.cache_ttl);
    stops.push(() => cache.close());
    let queue: Queue;
    if (plan.queue === 'nats') {
      queue = await JetStreamQueue.connect(c.nats, c.queue, log, name);
    } else {
      const pq = new PostgresQueue(sql, {
        queue: c.queue,
        pollIntervalMs: c.executor.queue_poll_interval,
        // unique per start, so a later process with the same pid never renews these leases
        owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
        log,
      });
      // the embedded database is this process's: runs leased by a runtime that was killed resume now
      // (elsewhere a process of another container may share the host name and pid numbers: leases end on their own)
      if (plan.database.kind === 'embedded') {
        const released = await pq.releaseDeadLeases();
        if (released) log.info({ runs: released }, 'resuming runs that were in flight when the runtime stopped');
      }
      queue = pq;
    }
    stops.push(() => queue.close());

    const loaded: Map<string, CatalogueEntry> = await loadCatalogue(root, c.executor.function_dirs);
    let executor: Executor | null = null;
    // in dev mode the executor reloads the functions: the registry and GET /functions follow it
    const catalogue = (): ReadonlyMap<string, CatalogueEntry> => executor?.catalogue() ?? loaded;
    const registry = new Registry({
      workflows: new WorkflowRecords(sql),
      cache,
      log,
      cacheTtlMs: c.registry.cache_ttl,
      knownTypes: () => (catalogue().size ? new Map([...catalogue().values()].map((e) => [e.name, { config: e.fn.config }])) : null),
      broadcast: (ch) => queue.publishWorkflowChange(ch),
    });
    stops.push(queue.onWorkflowChange((ch) => registry.invalidate(ch)));

    let writer: BatchWriter | null = null;
    if (has('executor') || has('engine')) {
      const w = c.database.writer;
      writer = new BatchWriter(sql, { batchSize: w.batch_size, flushIntervalMs: w.flush_interval, shards: w.shards }, log, metrics);
      const wr = writer;
      stops.push(() => wr.close());
    }
    if (has('engine')) stops.push(startDeadLetterHandler(queue, writer!, log, metrics));

    if (has('executor')) {
      executor = await startExecutor({
        config: c,
        root,
        runs,
        cancels,
        queue,
        registry,
        writer: writer!,
        catalogue: loaded,
        dev: o.dev,
        log,
        metrics,
      });
      const ex = executor;
      stops.push(() => ex.stop());
    }

    const checks: Record<string, ReadinessCheck> = {
      postgres: () => pingPostgres(sql),
      ...(plan.cache === 'redis' ? { redis: () => cache.ping() } : {}),
      ...(plan.queue === 'nats' ? { nats: () => queue.ready() } : {}),
    };
    const routes: Route[] = opsRoutes(role, checks, metrics, c.metrics.path);
    if (has('registry') || has('api')) routes.push(...workflowRoutes(registry), ...functionRoutes(() => catalogue().values()));
    if (has('api')) {
      const waiters = new Waiters();
      const resultAddress = queue.resultAddress(randomUUID());
      stops.push(queue.onResults(resultAddress, (r) => waiters.deliver(r)));
      routes.push(
        ...executionRoutes({
          registry,
          queue,
          runs,
          cancels,
          cache,
          waiters,
          resultAddress,
          metrics,
          waitTimeoutMs: c.api.wait_timeout,
          maxWaitTimeoutMs: c.api.max_wait_timeout,
          idempotencyTtlMs: c.api.idempotency_ttl,
        }),
      );
    }

    let server: HttpServer | null = null;
    const front = has('api') || has('registry');
    const addr = front ? parseAddress(c.api.address) : { host: '0.0.0.0', port: c.metrics.enabled ? c.metrics.port : -1 };
    if (addr.port >= 0) {
      server = await serve({ ...addr, maxBodyBytes: c.api.max_body_bytes, readTimeoutMs: c.api.read_timeout, routes, log, metrics });
      const srv = server;
      // stopped first (stops run in reverse): no new requests while the rest shuts down
      stops.push(() => srv.close());
      log.info({ port: server.port }, front ? 'http front door listening' : 'ops endpoints listening');
    }
    return { role, plan, dataLocation, database, port: server?.port ?? null, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A URL fit for a log line or a banner: the password, if any, replaced. */
function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
