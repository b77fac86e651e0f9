import type { Config } from '../config/index.js';
import type { Logger, Metrics } from '../observability/index.js';
import type { Queue } from '../queue/index.js';
import type { Registry } from '../registry/index.js';
import type { BatchWriter, Sql } from '../store/index.js';
import type { CatalogueEntry } from './catalogue.js';
import { driveRun } from './run-driver.js';
import { createStepRunner, type StepRunner } from './step-runner.js';

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
  runner: StepRunner;
  stop(): Promise<void>;
}

/**
 * An executor host: pulls runs from the shared durable consumer (any number of
 * hosts share it) and drives up to `executor.max_concurrent_workflows` at once,
 * with steps on a Piscina pool of `executor.worker_count` threads (plus a
 * small pool per distinct `memoryMb`, see step-runner.ts).
 */
export async function startExecutor(d: ExecutorDeps): Promise<Executor> {
  const x = d.config.executor;
  const runner = createStepRunner(d.catalogue, {
    root: d.root,
    dirs: [...x.function_dirs],
    threads: x.worker_count,
    defaultMemoryMb: x.worker_max_old_generation_mb,
    log: d.log,
  });
  const stopConsuming = await d.queue.consumeRuns(x.max_concurrent_workflows, (delivery) =>
    driveRun(delivery, {
      sql: d.sql,
      registry: d.registry,
      writer: d.writer,
      runAttempt: runner.runAttempt,
      isInline: runner.isInline,
      publishResult: (s, r) => d.queue.publishResult(s, r),
      catalogue: () => d.catalogue,
      defaults: x,
      ackWaitMs: d.config.nats.ack_wait,
      log: d.log,
      metrics: d.metrics,
    }),
  );
  const gauges = setInterval(() => {
    d.metrics.poolUtilization.reset();
    d.metrics.poolQueue.reset();
    for (const [name, p] of runner.pools) {
      d.metrics.poolUtilization.set({ pool: name }, p.utilization);
      d.metrics.poolQueue.set({ pool: name }, p.queueSize);
    }
    d.queue.consumerPending().then((p) => d.metrics.consumerPending.set(p.pending), () => {});
  }, 5000);
  gauges.unref();
  const inline = [...d.catalogue.keys()].filter(runner.isInline);
  d.log.info({ threads: x.worker_count, max_concurrent: x.max_concurrent_workflows, functions: [...d.catalogue.keys()], inline, pools: [...runner.pools.keys()] }, 'executor started');
  return {
    runner,
    async stop() {
      clearInterval(gauges);
      await stopConsuming();
      await runner.close();
    },
  };
}
