import { Type, type Static } from '@sinclair/typebox';

/**
 * The configuration schema. Section and key names follow the seed plan
 * (section 5.1); keys marked "ours" extend it. Durations are strings such as
 * "100ms", "30s", "5m" (or plain milliseconds) and are converted to numbers of
 * milliseconds by the loader before this schema is checked.
 */
const Ms = Type.Integer({ minimum: 0, description: 'milliseconds' });
const PositiveInt = Type.Integer({ minimum: 1 });

export const ConfigSchema = Type.Object({
  mode: Type.Union([Type.Literal('auto'), Type.Literal('embedded'), Type.Literal('services')]), // ours
  api: Type.Object({
    address: Type.String({ pattern: '^[^:]*:[0-9]{1,5}$' }),
    debug: Type.Boolean(),
    read_timeout: Ms,
    write_timeout: Ms,
    idle_timeout: Ms,
    max_body_bytes: PositiveInt, // ours
    wait_timeout: Ms, // ours: default bound for execute with wait=true
    max_wait_timeout: Ms, // ours: upper bound a client may ask for
    idempotency_ttl: Ms, // ours: how long an idempotency key names its run
  }),
  database: Type.Object({
    type: Type.Literal('postgres'),
    url: Type.String(), // ours; DATABASE_URL. Empty = built from host/port/...
    host: Type.String(),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    database: Type.String({ minLength: 1 }),
    username: Type.String(),
    password: Type.String(),
    ssl_mode: Type.Union([Type.Literal('disable'), Type.Literal('require'), Type.Literal('prefer'), Type.Literal('verify-full')]),
    max_connections: PositiveInt,
    max_idle_connections: Type.Integer({ minimum: 0 }),
    create_database: Type.Boolean(), // ours: create the database at start if missing
    writer: Type.Object({
      // ours: the batched writer
      batch_size: PositiveInt,
      flush_interval: Ms,
      shards: PositiveInt,
    }),
  }),
  redis: Type.Object({
    url: Type.String(), // ours; REDIS_URL
    host: Type.String(),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    database: Type.Integer({ minimum: 0, maximum: 15 }),
    password: Type.String(),
    pool_size: PositiveInt,
    ttl: Ms,
    key_prefix: Type.String(), // ours
    command_timeout: Ms, // ours
  }),
  nats: Type.Object({
    urls: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    stream_name: Type.String({ pattern: '^[A-Za-z0-9_-]+$' }),
    subject_prefix: Type.String({ pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$' }),
    max_reconnects: Type.Integer({ minimum: -1 }),
    reconnect_wait: Ms,
    connect_timeout: Ms,
    consumer_name: Type.String({ pattern: '^[A-Za-z0-9_-]+$' }), // ours
  }),
  // ours: the run queue, whichever driver carries it
  queue: Type.Object({
    driver: Type.Union([Type.Literal('auto'), Type.Literal('nats'), Type.Literal('postgres')]),
    ack_wait: Ms,
    max_deliver: Type.Integer({ minimum: -1 }),
    duplicate_window: Ms,
    max_pending_publishes: PositiveInt, // publishes in flight per API process
    publish_linger: Ms, // JetStream: the publish tick under load (0: off)
    max_messages: PositiveInt, // JetStream stream limits (discard new)
    max_bytes: PositiveInt,
  }),
  cache: Type.Object({ driver: Type.Union([Type.Literal('auto'), Type.Literal('redis'), Type.Literal('memory')]) }), // ours
  embedded: Type.Object({ data_dir: Type.String() }), // ours
  registry: Type.Object({
    endpoint: Type.String(),
    cache_ttl: Ms,
  }),
  executor: Type.Object({
    worker_count: PositiveInt,
    max_concurrent_workflows: PositiveInt,
    queue_poll_interval: Ms,
    max_retries: Type.Integer({ minimum: 0 }),
    retry_delay: Ms,
    max_retry_delay: Ms, // ours: cap on exponential backoff
    step_timeout: Ms, // ours: default per-step timeout
    function_dirs: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }), // ours
    worker_max_old_generation_mb: PositiveInt, // ours: worker heap limit
  }),
  logging: Type.Object({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
    format: Type.Union([Type.Literal('json'), Type.Literal('pretty')]),
    output: Type.Union([Type.Literal('stdout'), Type.Literal('stderr')]),
  }),
  // ours: API keys (see runtime/api/auth.ts)
  auth: Type.Object({
    api_keys: Type.String(),
    required: Type.Boolean(),
    metrics: Type.Union([Type.Literal('open'), Type.Literal('key')]),
  }),
  // ours: when execute refuses at once (503 E_OVERLOADED) instead of queueing without bound
  admission: Type.Object({
    max_queued: PositiveInt,
    max_waiters: PositiveInt,
    max_event_loop_delay: Ms,
  }),
  // ours: how long final runs are kept (0: forever)
  retention: Type.Object({
    completed: Ms,
    failed: Ms,
    cancelled: Ms,
    batch_size: PositiveInt,
    interval: Ms,
  }),
  // ours: graceful stop
  shutdown: Type.Object({ grace: Ms, drain_delay: Ms }),
  // ours: settings of built-in steps
  steps: Type.Object({
    http: Type.Object({
      allow_hosts: Type.Array(Type.String({ minLength: 1 })),
      allow_private: Type.Boolean(),
    }),
  }),
  metrics: Type.Object({
    enabled: Type.Boolean(),
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    path: Type.String({ pattern: '^/' }),
  }),
});

export type Config = Static<typeof ConfigSchema>;

/** Keys whose values are durations: converted from "30s" style strings to ms. */
export const DURATION_KEYS = new Set([
  'api.read_timeout',
  'api.write_timeout',
  'api.idle_timeout',
  'api.wait_timeout',
  'api.max_wait_timeout',
  'api.idempotency_ttl',
  'database.writer.flush_interval',
  'redis.ttl',
  'redis.command_timeout',
  'nats.reconnect_wait',
  'nats.connect_timeout',
  'queue.ack_wait',
  'queue.duplicate_window',
  'queue.publish_linger',
  'registry.cache_ttl',
  'executor.queue_poll_interval',
  'executor.retry_delay',
  'executor.max_retry_delay',
  'executor.step_timeout',
  'admission.max_event_loop_delay',
  'retention.completed',
  'retention.failed',
  'retention.cancelled',
  'retention.interval',
  'shutdown.grace',
  'shutdown.drain_delay',
]);
