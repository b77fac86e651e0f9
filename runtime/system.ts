import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Admission,
  Authenticator,
  consoleRoutes,
  docRoutes,
  durableRoutes,
  RunEvents,
  executionRoutes,
  parseApiKeys,
  functionRoutes,
  opsRoutes,
  overviewRoutes,
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
import { DURABLE_STEP_TYPES, Resumer, startDeadLetterHandler, startDurableTimers, startRetention, startScheduler } from './engine/index.js';
import { loadCatalogue, startExecutor, type CatalogueEntry, type Executor } from './executor/index.js';
import type { Logger, Metrics } from './observability/index.js';
import { JetStreamQueue, PostgresQueue, type Queue } from './queue/index.js';
import { Registry } from './registry/index.js';
import {
  BatchWriter,
  CancelRecords,
  ExecutorRecords,
  openPostgres,
  OverviewRecords,
  pingPostgres,
  RunRecords,
  ScheduleRecords,
  WaitRecords,
  WorkflowRecords,
  type SocketTarget,
  type Sql,
} from './store/index.js';
import { startEmbeddedPostgres } from './embedded/index.js';
import { planServices, servicesOf, ServicesUnreachableError, unreachable, type Plan } from './modes.js';

/** the package's version (package.json), in the OpenAPI document */
const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

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
  /** the names of the API keys the front door takes; empty: the API is open */
  apiKeys: string[];
  /**
   * The graceful stop (SIGTERM, Ctrl-C): readiness answers 503 (draining), then after
   * shutdown.drain_delay the front door closes, callers waiting for results are answered,
   * executors take no more runs and finish theirs within shutdown.grace (what is left is handed
   * back to the queue), the writer flushes, the connections close. Resolves what it handed back.
   */
  stop(): Promise<{ handedBack: number }>;
}

/**
 * Starts the parts of the runtime a role needs, passing dependencies down
 * explicitly, so any combination can share one process.
 */
export async function startSystem(o: SystemOptions): Promise<System> {
  const { role, config: c, log, metrics } = o;
  const root = o.root ?? fileURLToPath(new URL('../../', import.meta.url));
  const has = (r: Role) => role === 'all' || role === r;
  const stops: (() => Promise<unknown> | void)[] = [];
  let draining = false;
  let handedBack = 0;
  const stop = async () => {
    if (!draining) {
      draining = true;
      if (c.shutdown.drain_delay > 0) await new Promise((r) => setTimeout(r, c.shutdown.drain_delay));
    }
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        log.warn({ err }, 'error while stopping');
      }
    }
    return { handedBack };
  };
  const auth = new Authenticator(parseApiKeys(c.auth.api_keys));
  if (auth.open && c.auth.required && (role === 'all' || role === 'api' || role === 'registry')) {
    throw new RuntimeError(
      'E_CONFIG',
      'auth.required is set and no API keys are configured: set API_KEYS (e.g. API_KEYS=ops=$(openssl rand -hex 32))',
    );
  }

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
    const waits = new WaitRecords(sql);
    const schedules = new ScheduleRecords(sql);
    const executors = new ExecutorRecords(sql);
    const cache: Cache = plan.cache === 'redis' ? new RedisCache(c.redis, log) : new MemoryCache(c.registry.cache_ttl);
    if (!(await cache.ready(2000))) log.warn('Redis is not ready after 2 s; starting without it (it is a cache: PostgreSQL answers)');
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
    const resumer = new Resumer(queue, waits, log);

    const loaded: Map<string, CatalogueEntry> = await loadCatalogue(root, c.executor.function_dirs);
    let executor: Executor | null = null;
    // in dev mode the executor reloads the functions: the registry and GET /functions follow it
    const catalogue = (): ReadonlyMap<string, CatalogueEntry> => executor?.catalogue() ?? loaded;
    const registry = new Registry({
      workflows: new WorkflowRecords(sql),
      cache,
      log,
      cacheTtlMs: c.registry.cache_ttl,
      // the functions, and the durable step types the executor itself runs (sleep, signals, events, child runs)
      knownTypes: () =>
        catalogue().size
          ? new Map([
              ...[...catalogue().values()].map((e) => [e.name, { config: e.fn.config }] as const),
              ...[...DURABLE_STEP_TYPES].map(([name, t]) => [name, { config: t.config }] as const),
            ])
          : null,
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
    if (has('engine')) {
      stops.push(startDeadLetterHandler(queue, writer!, log, metrics));
      stops.push(startDurableTimers(waits, resumer, { tickMs: 200, sweepMs: 5000 }, log, metrics));
      stops.push(
        startScheduler({
          schedules,
          resumer,
          workflowFor: async (s) => {
            const wf = s.follow_latest ? await registry.find(s.workflow_name) : await registry.getById(s.workflow_id);
            return wf && wf.status === 'active' ? wf : null;
          },
          tickMs: 250,
          log,
          metrics,
        }),
      );
      const r = c.retention;
      stops.push(
        startRetention(
          sql,
          { keep: { completed: r.completed, failed: r.failed, cancelled: r.cancelled }, batchSize: r.batch_size, intervalMs: r.interval },
          log,
          metrics,
        ),
      );
    }

    if (has('executor')) {
      executor = await startExecutor({
        config: c,
        root,
        runs,
        waits,
        resumer,
        cancels,
        executors,
        queue,
        registry,
        writer: writer!,
        catalogue: loaded,
        dev: o.dev,
        log,
        metrics,
      });
      const ex = executor;
      stops.push(async () => {
        handedBack = (await ex.stop(c.shutdown.grace)).handedBack;
      });
    }

    const checks: Record<string, ReadinessCheck> = {
      postgres: () => pingPostgres(sql),
      ...(plan.cache === 'redis' ? { redis: () => cache.ping() } : {}),
      ...(plan.queue === 'nats' ? { nats: () => queue.ready() } : {}),
    };
    const routes: Route[] = opsRoutes(role, checks, metrics, {
      metricsPath: c.metrics.path,
      metricsScope: c.auth.metrics === 'key' ? 'read' : 'public',
      draining: () => draining,
    });
    if (has('registry') || has('api')) routes.push(...workflowRoutes(registry), ...functionRoutes(() => catalogue().values()));
    if (has('api')) {
      const waiters = new Waiters();
      const resultAddress = queue.resultAddress(randomUUID());
      stops.push(queue.onResults(resultAddress, (r) => waiters.deliver(r)));
      // stopping: callers waiting for results get their run id now (202), the runs go on
      stops.push(() => waiters.releaseAll());
      const admission = new Admission({
        maxQueued: c.admission.max_queued,
        maxWaiters: c.admission.max_waiters,
        maxEventLoopDelayMs: c.admission.max_event_loop_delay,
        // accepted and not finished: waiting in the queue, or delivered and held by an executor (a
        // JetStream consumer pulls ahead of what it runs, so "pending" alone stays near 0)
        backlog: async () => {
          const p = await queue.consumerPending();
          return p.pending + p.ackPending;
        },
        isStopping: () => draining,
        metrics,
      });
      stops.push(admission.start());
      routes.push(
        ...executionRoutes({
          registry,
          queue,
          runs,
          events: new RunEvents(runs, log),
          waits,
          resumer,
          cache,
          waiters,
          resultAddress,
          admission,
          metrics,
          waitTimeoutMs: c.api.wait_timeout,
          maxWaitTimeoutMs: c.api.max_wait_timeout,
          idempotencyTtlMs: c.api.idempotency_ttl,
        }),
        ...durableRoutes({
          registry,
          waits,
          schedules,
          resumer,
          accepted: async (id) => !!(await cache.runStatus(id)) || !!(await queue.queuedRun(id)),
        }),
        ...overviewRoutes({ overview: new OverviewRecords(sql), executors, queue, queueDriver: plan.queue, cacheMs: 1000 }),
      );
    }

    let server: HttpServer | null = null;
    const front = has('api') || has('registry');
    // the API's description, of exactly the routes this process serves (these included)
    if (front) routes.push(...consoleRoutes(), ...docRoutes(() => routes, { version: VERSION, metricsPath: c.metrics.path }));
    const addr = front ? parseAddress(c.api.address) : { host: '0.0.0.0', port: c.metrics.enabled ? c.metrics.port : -1 };
    if (addr.port >= 0) {
      server = await serve({ ...addr, maxBodyBytes: c.api.max_body_bytes, readTimeoutMs: c.api.read_timeout, routes, auth, log, metrics });
      const srv = server;
      // stopped first (stops run in reverse): no new requests while the rest shuts down
      stops.push(() => srv.close());
      log.info({ port: server.port }, front ? 'http front door listening' : 'ops endpoints listening');
    }
    return { role, plan, dataLocation, database, port: server?.port ?? null, apiKeys: auth.names, stop };
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
