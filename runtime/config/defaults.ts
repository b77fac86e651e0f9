const SECOND = 1000;
const MINUTE = 60 * SECOND;

/**
 * Built-in defaults, the bottom layer under config/*.yaml, env vars and --set.
 * Tuned for one small machine running every role; the seed's own values are in
 * config/poc.yaml.
 */
export const DEFAULTS = {
  /**
   * auto: services when their addresses answer (or a service URL is set), embedded when none
   * does; embedded: PostgreSQL in-process from .data/, the postgres queue, the in-process
   * cache; services: every configured service must answer (see runtime/modes.ts).
   */
  mode: 'services',
  api: {
    address: ':8080',
    debug: false,
    read_timeout: 30 * SECOND,
    write_timeout: 30 * SECOND,
    idle_timeout: 120 * SECOND,
    max_body_bytes: 1024 * 1024,
    wait_timeout: 30 * SECOND,
    max_wait_timeout: 5 * MINUTE,
    idempotency_ttl: 24 * 60 * MINUTE,
  },
  database: {
    type: 'postgres',
    url: '',
    host: '127.0.0.1',
    port: 5432,
    database: 'workflow',
    username: 'postgres',
    password: '',
    ssl_mode: 'disable',
    max_connections: 20,
    max_idle_connections: 10,
    create_database: true,
    writer: { batch_size: 500, flush_interval: 10, shards: 1 },
  },
  redis: {
    url: '',
    host: '127.0.0.1',
    port: 6379,
    database: 0,
    password: '',
    pool_size: 4,
    ttl: 30 * MINUTE,
    key_prefix: 'wf:',
    command_timeout: 250,
  },
  nats: {
    urls: ['nats://127.0.0.1:4222'],
    stream_name: 'workflow-events',
    subject_prefix: 'workflow',
    max_reconnects: -1,
    reconnect_wait: 1 * SECOND,
    connect_timeout: 5 * SECOND,
    consumer_name: 'executors',
  },
  queue: {
    /** nats (JetStream) or postgres; auto: nats in services mode, postgres in embedded mode */
    driver: 'auto',
    ack_wait: 30 * SECOND,
    max_deliver: 20,
    duplicate_window: 2 * MINUTE,
    max_pending_publishes: 4096,
    /** JetStream: under load, how long a publish may wait to share a write with others (0: never; see jetstream-publisher.ts) */
    publish_linger: 5,
    /** JetStream: the stream holds at most this many runs and bytes (waiting or unacked); past it a publish is refused */
    max_messages: 1_000_000,
    max_bytes: 1024 * 1024 * 1024,
  },
  cache: {
    /** redis or memory (in-process); auto: redis in services mode, memory in embedded mode */
    driver: 'auto',
  },
  embedded: {
    /** where the embedded PostgreSQL keeps its data; empty: .data/ in the project root */
    data_dir: '',
  },
  registry: {
    endpoint: '',
    cache_ttl: 5 * MINUTE,
  },
  executor: {
    worker_count: 2,
    max_concurrent_workflows: 512,
    queue_poll_interval: 100,
    max_retries: 3,
    retry_delay: 1 * SECOND,
    max_retry_delay: 5 * MINUTE,
    step_timeout: 30 * SECOND,
    function_dirs: ['steps', 'functions'],
    worker_max_old_generation_mb: 256,
  },
  logging: { level: 'info', format: 'json', output: 'stdout' },
  metrics: { enabled: true, port: 9090, path: '/metrics' },
  auth: {
    /**
     * API keys (API_KEYS): comma-separated `[name=]key[:scope+scope]`, scopes admin, execute,
     * read (all three without a list). Empty: the API is open (the banner says so).
     */
    api_keys: '',
    /** refuse to start a front door (api, registry) without keys: set by config/poc.yaml for a deployment */
    required: false,
    /** whether GET /metrics needs a key with the read scope (open: for a scraper inside the network) */
    metrics: 'open',
  },
  admission: {
    /** runs accepted and not yet finished (queued or held by an executor), beyond which execute answers 503 E_OVERLOADED */
    max_queued: 20_000,
    /** executes waiting for their result (wait=true) per API process */
    max_waiters: 10_000,
    /** the API process's event-loop delay (p99 over the last half second) beyond which execute sheds load */
    max_event_loop_delay: 100,
  },
  retention: {
    /** how long final runs (and their steps) are kept, by acceptance time; 0 or "off": forever */
    completed: 7 * 24 * 60 * MINUTE,
    failed: 30 * 24 * 60 * MINUTE,
    cancelled: 30 * 24 * 60 * MINUTE,
    /** runs deleted per statement, and the pause between statements (the hot path goes first) */
    batch_size: 500,
    interval: 1 * SECOND,
  },
  shutdown: {
    /** SIGTERM/SIGINT: how long runs in flight may take to finish before they are handed back */
    grace: 25 * SECOND,
    /** how long readiness answers 503 before the front door stops accepting (a load balancer notices) */
    drain_delay: 0,
  },
  steps: {
    http: {
      /** hosts (names or addresses, `*.example.com` matches subdomains) the http step may reach even at private addresses */
      allow_hosts: [] as string[],
      /** let the http step reach loopback, private, link-local and metadata addresses */
      allow_private: false,
    },
  },
};
