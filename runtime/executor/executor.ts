import type { Config } from '../config/index.js';
import type { Logger, Metrics } from '../observability/index.js';
import type { Queue } from '../queue/index.js';
import type { Registry } from '../registry/index.js';
import type { BatchWriter, Sql } from '../store/index.js';
import type { CatalogueEntry } from './catalogue.js';
import { attempt } from './attempt.js';
import { StepPool } from './pool.js';
import type { StepOutcome, StepTask } from './protocol.js';
import { driveRun } from './run-driver.js';

export interface ExecutorDeps {
  config: Readonly<Config>;
  root: string;
  sql: Sql;
  queue: Queue;
  registry: Registry;
  writer: BatchWriter;
  catalogue: ReadonlyMap<string, CatalogueEntry>;
  log: Logger;
  metrics: Metrics;
}

export interface Executor {
  pool: StepPool;
  stop(): Promise<void>;
}

/**
 * An executor host: pulls runs from the shared durable consumer (any number of
 * hosts share it) and drives up to `executor.max_concurrent_workflows` at once,
 * with steps on a Piscina pool of `executor.worker_count` threads.
 */
export async function startExecutor(d: ExecutorDeps): Promise<Executor> {
  const x = d.config.executor;
  const pool = new StepPool({
    root: d.root,
    dirs: [...x.function_dirs],
    threads: x.worker_count,
    tasksPerThread: 64,
    maxOldGenerationMb: x.worker_max_old_generation_mb,
    hardKillGraceMs: 500,
    log: d.log,
  });
  const inline = new Set([...d.catalogue.values()].filter((e) => e.builtin && e.fn.inline).map((e) => e.name));
  const runAttempt = (task: Omit<StepTask, 'seq' | 'deadline'>): Promise<StepOutcome> =>
    inline.has(task.type) ? attempt(d.catalogue, task, []) : pool.run(task);
  const stopConsuming = await d.queue.consumeRuns(x.max_concurrent_workflows, (delivery) =>
    driveRun(delivery, {
      sql: d.sql,
      registry: d.registry,
      writer: d.writer,
      runAttempt,
      isInline: (type) => inline.has(type),
      publishResult: (s, r) => d.queue.publishResult(s, r),
      catalogue: () => d.catalogue,
      defaults: x,
      ackWaitMs: d.config.nats.ack_wait,
      log: d.log,
      metrics: d.metrics,
    }),
  );
  const gauges = setInterval(() => {
    d.metrics.poolUtilization.set(pool.utilization);
    d.metrics.poolQueue.set(pool.queueSize);
    d.queue.consumerPending().then((p) => d.metrics.consumerPending.set(p.pending), () => {});
  }, 5000);
  gauges.unref();
  d.log.info({ threads: x.worker_count, max_concurrent: x.max_concurrent_workflows, functions: [...d.catalogue.keys()], inline: [...inline] }, 'executor started');
  return {
    pool,
    async stop() {
      clearInterval(gauges);
      await stopConsuming();
      await pool.close();
    },
  };
}
