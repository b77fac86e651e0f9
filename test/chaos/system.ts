import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { connect } from 'nats';
import { freePort } from '../../dist/bench/system.js';
import { PORT as EMBEDDED_PG_PORT } from '../../dist/runtime/embedded/server.js';
import { modeSettings } from '../helpers/modes.js';
import { startRuntimeProcess, type RuntimeProcess } from '../helpers/processes.js';
import { startNats, startPostgres, startRedis, type PrivateServer } from './services.js';

/** The workflow every scenario runs: two steps on the executors' worker threads, 100 ms each. */
export const WORKFLOW = {
  name: 'chaos',
  definition: { steps: ['one', 'two'].map((name) => ({ name, type: 'count-invocations', config: { sleep_ms: 100 } })) },
};

const COMMON = [
  'api.address=127.0.0.1:0',
  'metrics.port=0',
  'queue.ack_wait=5s',
  'executor.function_dirs=[steps, functions, test/fixtures/functions]',
  'shutdown.grace=2s',
];

/** Runtime processes of a test, each logging its step invocations ("<run_id> <step>") to a file of its own. */
class Processes {
  readonly all: RuntimeProcess[] = [];
  private folder: string | null = null;
  private n = 0;

  /** made at the first start: a system that never starts leaves nothing behind */
  private get dir(): string {
    return (this.folder ??= mkdtempSync(join(tmpdir(), 'wf-chaos-counts-')));
  }

  start(role: string, set: string[]): RuntimeProcess {
    const name = `${role}-${++this.n}`;
    const p = startRuntimeProcess(role, set, { COUNTER_FILE: join(this.dir, `${name}.log`) });
    if (process.env.CHAOS_LOGS) {
      mkdirSync(process.env.CHAOS_LOGS, { recursive: true });
      p.child.stdout!.pipe(createWriteStream(join(process.env.CHAOS_LOGS, `${name}-${p.child.pid}.jsonl`)));
    }
    this.all.push(p);
    return p;
  }

  /** Every invocation line logged by every process so far. */
  invocations(): string[] {
    if (!this.folder) return [];
    return readdirSync(this.folder).flatMap((f) => readFileSync(join(this.dir, f), 'utf8').split('\n').filter(Boolean));
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((p) => p.kill('SIGKILL')));
    if (this.folder) rmSync(this.folder, { recursive: true, force: true });
  }
}

async function register(base: string): Promise<string> {
  const res = await fetch(`${base}/api/v1/workflows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(WORKFLOW),
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 201 || !body.id) throw new Error(`registering the chaos workflow answered ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}

/**
 * Services mode on private servers: PostgreSQL, NATS JetStream and Redis of the suite's own,
 * two API processes and two executor processes.
 */
export class ServicesSystem {
  apis: RuntimeProcess[] = [];
  apiBases: string[] = [];
  private apiPorts: number[] = [];
  executors: RuntimeProcess[] = [];
  workflowId = '';
  readonly procs = new Processes();
  private sqlClient: postgres.Sql | null = null;

  private constructor(
    readonly pg: PrivateServer,
    readonly nats: PrivateServer,
    readonly redis: PrivateServer,
  ) {}

  /** Starts the servers (each disposed again if a later one fails), then the processes. */
  static async start(): Promise<ServicesSystem> {
    const servers: PrivateServer[] = [];
    try {
      servers.push(await startPostgres());
      servers.push(await startNats());
      servers.push(await startRedis());
    } catch (err) {
      await Promise.all(servers.map((s) => s.dispose()));
      throw err;
    }
    const s = new ServicesSystem(servers[0], servers[1], servers[2]);
    try {
      // fixed ports: an API process started again answers where the clients send
      s.apiPorts = [await freePort(), await freePort()];
      s.apiBases = s.apiPorts.map((p) => `http://127.0.0.1:${p}`);
      // one process migrates first: the others would only wait for its advisory lock
      const first = s.startApi(0);
      await first.port;
      const rest = [s.startApi(1), s.procs.start('executor', s.set), s.procs.start('executor', s.set)];
      await Promise.all(rest.map((p) => p.port));
      s.apis = [first, rest[0]];
      s.executors = [rest[1], rest[2]];
      s.workflowId = await register(s.apiBases[0]);
    } catch (err) {
      await s.stop();
      throw err;
    }
    return s;
  }

  /** Starts API process `i` (again) on its port; resolves once it listens. */
  async restartApi(i: number): Promise<void> {
    const p = this.startApi(i);
    await p.port;
    this.apis[i] = p;
  }

  private startApi(i: number): RuntimeProcess {
    return this.procs.start('api', [...this.set, `api.address=127.0.0.1:${this.apiPorts[i]}`]);
  }

  get set(): string[] {
    return [
      ...modeSettings('services').set,
      ...COMMON,
      'database.host=127.0.0.1',
      `database.port=${this.pg.port}`,
      'database.username=postgres',
      'database.database=wf_chaos',
      `nats.urls=[nats://127.0.0.1:${this.nats.port}]`,
      'redis.host=127.0.0.1',
      `redis.port=${this.redis.port}`,
    ];
  }

  sql(): postgres.Sql {
    return (this.sqlClient ??= postgres({
      host: '127.0.0.1',
      port: this.pg.port,
      user: 'postgres',
      database: 'wf_chaos',
      max: 2,
      onnotice: () => {},
    }));
  }

  /** Runs waiting in the stream or delivered and not acked. */
  async backlog(): Promise<number> {
    const nc = await connect({ servers: `nats://127.0.0.1:${this.nats.port}`, timeout: 2000, reconnect: false });
    try {
      const ci = await (await nc.jetstreamManager()).consumers.info('workflow-events', 'executors');
      return ci.num_pending + ci.num_ack_pending;
    } finally {
      await nc.close();
    }
  }

  async stop(): Promise<void> {
    await this.sqlClient?.end({ timeout: 2 }).catch(() => {});
    await this.procs.stop();
    await Promise.all([this.pg.dispose(), this.nats.dispose(), this.redis.dispose()]);
  }
}

/**
 * Embedded mode: one process with every role and a PostgreSQL it starts itself, its data in a
 * temporary folder the postgres user can reach; on a fixed port, so that a restart answers at
 * the address the clients use.
 */
export class EmbeddedSystem {
  runtime: RuntimeProcess | null = null;
  base = '';
  workflowId = '';
  readonly procs = new Processes();
  /** made at the first start (a data folder in the temp dir) */
  private mode: ReturnType<typeof modeSettings> | null = null;
  private port = 0;
  private url = '';
  private sqlClient: postgres.Sql | null = null;

  async start(): Promise<void> {
    this.port ||= await freePort();
    this.mode ??= modeSettings('embedded');
    const p = this.procs.start('all', [...this.mode.set, ...COMMON, 'database.database=wf_chaos', `api.address=127.0.0.1:${this.port}`]);
    // the banner of its PostgreSQL names the socket folder: the suite reads the records there
    const url = new Promise<string>((resolve) => {
      createInterface({ input: p.child.stdout! }).on('line', (line) => {
        if (line.includes('embedded PostgreSQL ready')) resolve((JSON.parse(line) as { url: string }).url);
      });
    });
    await p.port;
    this.url = await url;
    this.runtime = p;
    this.base = `http://127.0.0.1:${this.port}`;
    this.workflowId ||= await register(this.base);
  }

  /** kill -9 of the whole runtime (its guard then stops the PostgreSQL it started). */
  async kill(): Promise<void> {
    await this.runtime?.kill('SIGKILL');
    await this.sqlClient?.end({ timeout: 1 }).catch(() => {});
    this.sqlClient = null;
  }

  /** Over the server's Unix socket (it has no TCP): the folder and database its banner's URL names. */
  sql(): postgres.Sql {
    const url = new URL(this.url);
    const host = url.searchParams.get('host');
    if (!host?.startsWith('/')) throw new Error(`the embedded PostgreSQL's URL names no socket folder: ${this.url}`);
    return (this.sqlClient ??= postgres({
      host,
      port: EMBEDDED_PG_PORT, // names the socket file in that folder
      user: 'postgres',
      database: decodeURIComponent(url.pathname.slice(1)),
      max: 2,
      onnotice: () => {},
    }));
  }

  /** Runs in the postgres queue (waiting or leased). */
  async backlog(): Promise<number> {
    const [{ n }] = await this.sql()`SELECT count(*)::int AS n FROM run_queue`;
    return n as number;
  }

  async stop(): Promise<void> {
    await this.sqlClient?.end({ timeout: 2 }).catch(() => {});
    await this.procs.stop();
    if (!this.mode) return;
    // the guard stops the server of a killed runtime; give it a moment before its folder goes
    const pid = join(this.mode.dataDir!, 'postgres', 'postmaster.pid');
    for (let i = 0; i < 50 && existsSync(pid); i++) await new Promise((r) => setTimeout(r, 100));
    this.mode.dispose();
  }
}
