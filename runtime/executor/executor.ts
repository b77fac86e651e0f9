import type { Config } from '../config/index.js';
import type { Logger, Metrics } from '../observability/index.js';
import type { Queue } from '../queue/index.js';
import { Cancellations } from './cancellations.js';
import type { Registry } from '../registry/index.js';
import {
  EXECUTOR_BEAT_MS,
  type BatchWriter,
  type CancelRecords,
  type ExecutorRecords,
  type RunRecords,
  type WaitRecords,
} from '../store/index.js';
import type { Resumer } from '../engine/index.js';
import type { CatalogueEntry } from './catalogue.js';
import { Generations } from './generations.js';
import { watchFunctionDirs } from './hot-reload.js';
import { registerExecutor } from './registration.js';
import { driveRun } from './run-driver.js';
import { createStepRunner } from './step-runner.js';

export interface ExecutorDeps {
  config: Readonly<Config>;
  root: string;
  runs: RunRecords;
  waits: WaitRecords;
  resumer: Resumer;
  cancels: CancelRecords;
  /** the executor registry: this host's row, kept fresh (GET /api/v1/overview lists them) */
  executors: ExecutorRecords;
  queue: Queue;
  registry: Registry;
  writer: BatchWriter;
  catalogue: ReadonlyMap<string, CatalogueEntry>;
  /** dev mode: reload the functions when their compiled files change (see hot-reload.ts) */
  dev?: boolean;
  log: Logger;
  metrics: Metrics;
}

export interface Executor {
  /** The functions new runs use (changes on a dev-mode reload). */
  catalogue(): ReadonlyMap<string, CatalogueEntry>;
  /** Takes no more runs; waits up to `graceMs` for those in flight, then hands the rest back. */
  stop(graceMs?: number): Promise<{ handedBack: number }>;
}

/**
 * An executor host: pulls runs from the shared durable consumer (any number of
 * hosts share it) and drives up to `executor.max_concurrent_workflows` at once,
 * with steps on a Piscina pool of `executor.worker_count` threads (plus a
 * small pool per distinct `memoryMb`, see step-runner.ts).
 */
export async function startExecutor(d: ExecutorDeps): Promise<Executor> {
  const x = d.config.executor;
  const runnerFor = (catalogue: ReadonlyMap<string, CatalogueEntry>, version?: number) =>
    createStepRunner(catalogue, {
      root: d.root,
      dirs: [...x.function_dirs],
      threads: x.worker_count,
      defaultMemoryMb: x.worker_max_old_generation_mb,
      version,
      outbound: { allowHosts: d.config.steps.http.allow_hosts, allowPrivate: d.config.steps.http.allow_private },
      log: d.log,
    });
  const gens = new Generations(runnerFor(d.catalogue), d.log);
  const cancellations = new Cancellations();
  // cancels sent before this host started (the broadcast below only brings the ones from now on)
  const readCancels = async () => {
    for (const id of await d.cancels.recent()) cancellations.cancel(id);
  };
  await readCancels();
  // a broadcast missed while the queue's connection was down is read from PostgreSQL again
  const stopHearingCancels = d.queue.onCancel(
    (runId) => cancellations.cancel(runId),
    () => void readCancels().catch((err: Error) => d.log.warn({ err: err.message }, 'cancels not read again after a reconnect')),
  );
  let inFlight = 0;
  const stopConsuming = await d.queue.consumeRuns(x.max_concurrent_workflows, async (delivery) => {
    // a run keeps the functions it started with to its end, even if dev mode reloads them meanwhile
    const g = gens.enter();
    inFlight++;
    try {
      await driveRun(delivery, {
        runs: d.runs,
        waits: d.waits,
        resumer: d.resumer,
        cancels: d.cancels,
        registry: d.registry,
        writer: d.writer,
        runAttempt: g.runner.runAttempt,
        cancellations,
        isInline: g.runner.isInline,
        publishResult: (s, r) => d.queue.publishResult(s, r),
        catalogue: () => g.runner.catalogue,
        defaults: x,
        ackWaitMs: d.config.queue.ack_wait,
        log: d.log,
        metrics: d.metrics,
      });
    } finally {
      inFlight--;
      gens.leave(g);
    }
  });
  const stopWatching = d.dev
    ? watchFunctionDirs({
        root: d.root,
        dirs: x.function_dirs,
        debounceMs: 300,
        log: d.log,
        swap: (catalogue, version) => {
          const before = gens.catalogue;
          gens.swap(runnerFor(catalogue, version), version);
          d.log.info(
            {
              generation: version,
              functions: [...catalogue.keys()],
              added: [...catalogue.keys()].filter((n) => !before.has(n)),
              removed: [...before.keys()].filter((n) => !catalogue.has(n)),
            },
            'functions reloaded; new runs use them',
          );
        },
      })
    : () => {};
  const gauges = setInterval(() => {
    d.metrics.poolUtilization.reset();
    d.metrics.poolQueue.reset();
    for (const [name, p] of gens.runner.pools) {
      d.metrics.poolUtilization.set({ pool: name }, p.utilization);
      d.metrics.poolQueue.set({ pool: name }, p.queueSize);
    }
    d.queue.consumerPending().then(
      (p) => d.metrics.queuePending.set(p.pending),
      () => {},
    );
  }, 5000);
  gauges.unref();
  const registration = await registerExecutor({
    records: d.executors,
    slots: x.max_concurrent_workflows,
    load: () => {
      let threads = 0;
      let busy = 0;
      let elapsed = 0;
      for (const p of gens.runner.pools.values()) {
        const l = p.load();
        threads += l.threads;
        busy += l.busyMs;
        elapsed += l.elapsedMs;
      }
      return { inFlight, threads, utilization: elapsed > 0 ? busy / elapsed : 0 };
    },
    intervalMs: EXECUTOR_BEAT_MS,
    log: d.log,
  });
  const inline = [...d.catalogue.keys()].filter(gens.runner.isInline);
  d.log.info(
    {
      threads: x.worker_count,
      max_concurrent: x.max_concurrent_workflows,
      functions: [...d.catalogue.keys()],
      inline,
      pools: [...gens.runner.pools.keys()],
      dev: !!d.dev,
    },
    'executor started',
  );
  return {
    catalogue: () => gens.catalogue,
    async stop(graceMs = Infinity) {
      clearInterval(gauges);
      stopWatching();
      stopHearingCancels();
      const { handedBack } = await stopConsuming(graceMs);
      if (handedBack) {
        d.log.warn(
          { runs: handedBack, grace_ms: graceMs },
          `${handedBack} run(s) still in flight after shutdown.grace: handed back to the queue, another executor resumes them from their recorded steps`,
        );
      }
      await gens.close();
      // after the runs: while it finishes them it is still an executor, and listed
      await registration.stop();
      return { handedBack };
    },
  };
}
