import client from 'prom-client';

/**
 * Every metric the runtime exports, in one registry per process. Passed down
 * as a parameter so that several roles in one process share it.
 */
export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const ms = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000].map((v) => v / 1000);
  return {
    registry,
    httpRequests: new client.Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    httpDuration: new client.Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route and status',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.0005, ...ms],
      registers: [registry],
    }),
    runsStarted: new client.Counter({
      name: 'workflow_runs_started_total',
      help: 'Runs accepted by the API (published to JetStream)',
      registers: [registry],
    }),
    runsCompleted: new client.Counter({ name: 'workflow_runs_completed_total', help: 'Runs finished successfully', registers: [registry] }),
    runsFailed: new client.Counter({ name: 'workflow_runs_failed_total', help: 'Runs finished in failure', registers: [registry] }),
    runDuration: new client.Histogram({
      name: 'workflow_run_duration_seconds',
      help: 'Accepted to completed, per run',
      labelNames: ['status'],
      buckets: ms,
      registers: [registry],
    }),
    stepDuration: new client.Histogram({
      name: 'workflow_step_duration_seconds',
      help: 'Step attempt duration by step type and outcome',
      labelNames: ['type', 'status'],
      buckets: [0.0005, ...ms],
      registers: [registry],
    }),
    stepRetries: new client.Counter({
      name: 'workflow_step_retries_total',
      help: 'Step attempts that were retried',
      labelNames: ['type'],
      registers: [registry],
    }),
    publishDuration: new client.Histogram({
      name: 'queue_publish_duration_seconds',
      help: 'Publish of a run until the queue stored it (JetStream PubAck, or the postgres queue commit)',
      buckets: [0.0005, ...ms],
      registers: [registry],
    }),
    publishErrors: new client.Counter({
      name: 'queue_publish_errors_total',
      help: 'Runs the queue did not store (execute answered 503)',
      registers: [registry],
    }),
    retentionDeleted: new client.Counter({
      name: 'retention_deleted_runs_total',
      help: 'Final runs deleted (with their steps) by retention, by status',
      labelNames: ['status'],
      registers: [registry],
    }),
    admissionRefused: new client.Counter({
      name: 'admission_refused_total',
      help: 'Executes refused at once with 503 E_OVERLOADED, by reason (backlog, cpu, waiters, publishes)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    eventLoopDelay: new client.Gauge({
      name: 'api_event_loop_delay_seconds',
      help: 'p99 event-loop delay of the API process over the last quarter second (admission control sheds above admission.max_event_loop_delay)',
      registers: [registry],
    }),
    queuePending: new client.Gauge({
      name: 'queue_pending',
      help: 'Runs waiting for an executor (last poll)',
      registers: [registry],
    }),
    admissionBacklog: new client.Gauge({
      name: 'admission_backlog',
      help: 'Runs accepted and not finished (queued or held by an executor), as admission control last read it',
      registers: [registry],
    }),
    runsInFlight: new client.Gauge({
      name: 'executor_runs_in_flight',
      help: 'Runs being executed by this executor host',
      registers: [registry],
    }),
    redeliveries: new client.Counter({
      name: 'executor_redeliveries_total',
      help: 'Run messages received more than once (resumed runs)',
      registers: [registry],
    }),
    runsSuspended: new client.Counter({
      name: 'executor_runs_suspended_total',
      help: 'Drives that ended with the run asleep on a durable wait (sleep, signal, event, child run)',
      registers: [registry],
    }),
    waitsWoken: new client.Counter({
      name: 'engine_waits_woken_total',
      help: 'Runs queued again because a sleep ended or a wait timed out',
      registers: [registry],
    }),
    schedulesFired: new client.Counter({
      name: 'engine_schedule_ticks_total',
      help: 'Schedule ticks, by outcome (started, skipped)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    poolUtilization: new client.Gauge({
      name: 'executor_pool_utilization',
      help: 'Piscina pool utilization (0..1), by pool (default, or a memory class such as 64mb)',
      labelNames: ['pool'],
      registers: [registry],
    }),
    poolQueue: new client.Gauge({
      name: 'executor_pool_queue_size',
      help: 'Tasks waiting for a worker thread, by pool',
      labelNames: ['pool'],
      registers: [registry],
    }),
    batchSize: new client.Histogram({
      name: 'store_batch_rows',
      help: 'Rows per batched Postgres flush',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [registry],
    }),
    flushDuration: new client.Histogram({
      name: 'store_flush_duration_seconds',
      help: 'Batched Postgres flush latency',
      buckets: [0.0005, ...ms],
      registers: [registry],
    }),
    flushErrors: new client.Counter({ name: 'store_flush_errors_total', help: 'Failed batched flushes (retried)', registers: [registry] }),
    deadLetters: new client.Counter({
      name: 'engine_dead_letters_total',
      help: 'Runs that exhausted queue.max_deliver, recorded failed by the engine',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** each labelled metric's children, by their label values joined */
const children = new WeakMap<object, Map<string, unknown>>();

/**
 * A labelled metric's child for these label values, made once: prom-client hashes the label
 * object (its keys sorted) on every `observe(labels, v)` / `inc(labels)`, which on the accept path
 * was a few µs per request. Callers give a metric's labels in the same order each time.
 */
export function labelled<C>(metric: { labels(labels: Record<string, string>): C }, labels: Record<string, string>): C {
  let byValues = children.get(metric) as Map<string, C> | undefined;
  if (!byValues) children.set(metric, (byValues = new Map<string, C>()));
  const key = Object.values(labels).join('\u0000');
  let c = byValues.get(key);
  if (c === undefined) {
    c = metric.labels(labels);
    if (byValues.size < 10_000) byValues.set(key, c);
  }
  return c;
}
