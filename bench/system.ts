import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import postgres from 'postgres';
import { connect } from 'nats';
import { Redis } from 'ioredis';
import type { BenchMode, WorkflowKind } from './options.js';

/** The dedicated resources of the bench's own runtime, apart from the dev and test ones. */
export const BENCH_SETS = {
  database: 'wf_bench',
  stream: 'wf-bench',
  subjectPrefix: 'wf.bench',
  redisPrefix: 'wfbench:',
};

export const SERVICES = {
  pgAdminUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
  natsUrl: 'nats://127.0.0.1:4222',
  redis: { host: '127.0.0.1', port: 6379 },
};

export interface RuntimeChild {
  url: string;
  pid: number;
  /** where its records are: a URL, or (embedded mode) the socket folder of its own PostgreSQL */
  database: string | { host: string; port: number; username: string; database: string };
  logFile: string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code */
  stop(graceMs?: number): Promise<number | null>;
  exited: boolean;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Drops what a previous bench run left: the wf_bench database, the wf-bench stream and the
 * wfbench: Redis keys. Only ever these names, never the dev database.
 */
export async function resetBenchResources(): Promise<void> {
  const admin = postgres(SERVICES.pgAdminUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS "${BENCH_SETS.database}" WITH (FORCE)`);
  } finally {
    await admin.end({ timeout: 2 });
  }
  const nc = await connect({ servers: SERVICES.natsUrl, timeout: 5000 });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(BENCH_SETS.stream).catch(() => false);
  } finally {
    await nc.close();
  }
  const redis = new Redis({ ...SERVICES.redis, lazyConnect: true, maxRetriesPerRequest: 2 });
  try {
    await redis.connect();
    let cursor = '0';
    let rounds = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${BENCH_SETS.redisPrefix}*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0' && ++rounds < 100_000);
  } finally {
    redis.disconnect();
  }
}

/** The --set overrides of a mode (docs/configuration.md, "Modes"), and the embedded data folder to remove after. */
function modeSets(mode: BenchMode): { sets: string[]; dataDir: string | null } {
  // the services the harness resets, never the embedded fallback of mode=auto (another system)
  if (mode === 'services') return { sets: ['mode=services'], dataDir: null };
  if (mode === 'postgres') return { sets: ['mode=services', 'queue.driver=postgres', 'cache.driver=memory'], dataDir: null };
  // run as root, the embedded server runs as the postgres user: the folder must let it in
  const dataDir = mkdtempSync(join(tmpdir(), 'wf-bench-'));
  chmodSync(dataDir, 0o755);
  return { sets: ['mode=embedded', `embedded.data_dir=${dataDir}`], dataDir };
}

/** Starts `node dist/runtime/main.js --role all` on 127.0.0.1:<port>, with the bench's own resources. */
export async function startRuntime(o: {
  root: string;
  port: number;
  mode: BenchMode;
  extraSets: string[];
  logFile: string;
  readyTimeoutMs?: number;
}): Promise<RuntimeChild> {
  const main = join(o.root, 'dist/runtime/main.js');
  if (!existsSync(main)) throw new Error(`${main} does not exist: run "npm run build" first`);
  const mode = modeSets(o.mode);
  const sets = [
    ...mode.sets,
    `database.database=${BENCH_SETS.database}`,
    `nats.stream_name=${BENCH_SETS.stream}`,
    `nats.subject_prefix=${BENCH_SETS.subjectPrefix}`,
    `redis.key_prefix=${BENCH_SETS.redisPrefix}`,
    `api.address=127.0.0.1:${o.port}`,
    ...o.extraSets,
  ];
  // BENCH_RUNTIME_NODE_ARGS: node flags for the runtime only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  const nodeArgs = (process.env.BENCH_RUNTIME_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const args = [...nodeArgs, main, '--role', 'all', ...sets.flatMap((s) => ['--set', s])];
  const log: WriteStream = createWriteStream(o.logFile);
  await new Promise((r) => log.once('open', r));
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: o.root,
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', log, log],
    // its own process group: a Ctrl-C in the terminal reaches the bench only, which then
    // drains, reports and stops the runtime itself (it stays this process's child)
    detached: true,
  });
  let exitCode: number | null = null;
  let exited = false;
  const exitPromise = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      exitCode = code ?? (signal ? 128 : null);
      resolve(exitCode);
    });
  });
  // last resort: never leave the runtime behind if this process dies
  const killOnExit = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const url = `http://127.0.0.1:${o.port}`;
  const handle: RuntimeChild = {
    url,
    pid: child.pid!,
    // the embedded server's socket lives in its data folder (a short temporary path)
    database: mode.dataDir
      ? { host: join(mode.dataDir, 'postgres'), port: 5432, username: 'postgres', database: BENCH_SETS.database }
      : `postgres://postgres@127.0.0.1:5432/${BENCH_SETS.database}`,
    logFile: o.logFile,
    get exited() {
      return exited;
    },
    async stop(graceMs = 35_000) {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => !exited && child.kill('SIGKILL'), graceMs);
        await exitPromise;
        clearTimeout(t);
      }
      process.removeListener('exit', killOnExit);
      log.end();
      if (mode.dataDir) rmSync(mode.dataDir, { recursive: true, force: true });
      return exitCode;
    },
  };
  try {
    await waitReady(url, o.readyTimeoutMs ?? 60_000, () => exited);
  } catch (err) {
    await handle.stop(5000);
    const tail = readFileSync(o.logFile, 'utf8').split('\n').slice(-15).join('\n');
    throw new Error(`${(err as Error).message}\nlast lines of ${o.logFile}:\n${tail}`, { cause: err });
  }
  return handle;
}

export async function waitReady(url: string, timeoutMs: number, gaveUp: () => boolean = () => false): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < end) {
    if (gaveUp()) throw new Error('the runtime exited before it was ready');
    try {
      const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(3000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status} ${(await res.text()).slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`${url}/ready did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

export interface BenchWorkflow {
  kind: WorkflowKind;
  id: string;
  name: string;
  steps: number;
}

/**
 * Registers the bench workflows under names unique to this run: one echo step, three echo steps,
 * and `flow` (a parallel of two branches, a map over four items at concurrency 2, a choice: seven
 * echo steps and three control-flow nodes, so ten step rows per run).
 */
export async function registerWorkflows(url: string, tag: string): Promise<Record<WorkflowKind, BenchWorkflow>> {
  const suffix = `${tag}-${randomBytes(3).toString('hex')}`;
  const defs = {
    one: [{ name: 'echo-step', type: 'echo', config: { message: 'Hello POC' } }],
    three: [
      { name: 'first', type: 'echo', config: { message: 'one' } },
      { name: 'second', type: 'echo', config: { message: 'two' } },
      { name: 'third', type: 'echo', config: { message: 'three' } },
    ],
    thread: [{ name: 'wait', type: 'delay', config: { ms: 1 } }],
    flow: [
      {
        name: 'fan',
        parallel: {
          branches: [
            { name: 'a', steps: [{ name: 'left', type: 'echo', config: { message: 'a' } }] },
            { name: 'b', steps: [{ name: 'right', type: 'echo', config: { message: 'b' } }] },
          ],
        },
      },
      {
        name: 'each',
        map: { items: [1, 2, 3, 4], concurrency: 2, steps: [{ name: 'item', type: 'echo', config: { message: '{{ item }}' } }] },
      },
      {
        name: 'pick',
        choice: {
          branches: [
            {
              name: 'four',
              when: { path: 'steps.each.length', equals: 4 },
              steps: [{ name: 'done', type: 'echo', config: { message: 'four' } }],
            },
          ],
          default: [{ name: 'other', type: 'echo', config: { message: 'other' } }],
        },
      },
    ],
  };
  const rows: Record<WorkflowKind, number> = { one: 1, three: 3, flow: 10, thread: 1 };
  const out = {} as Record<WorkflowKind, BenchWorkflow>;
  for (const kind of ['one', 'three', 'flow', 'thread'] as const) {
    const name = `bench-${kind}-step-${suffix}`;
    const res = await fetch(`${url}/api/v1/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, description: `bench ${kind} echo workflow`, definition: { steps: defs[kind] }, version: '1.0.0' }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`registering ${name}: HTTP ${res.status} ${text.slice(0, 500)}`);
    const body = JSON.parse(text) as { id: string };
    out[kind] = { kind, id: body.id, name, steps: rows[kind] };
  }
  return out;
}

/** Registers the hostile workflow of `--neighbour` (needs test/fixtures/functions loaded by the runtime). */
export async function registerNeighbour(url: string, mode: string, tag: string): Promise<string> {
  const res = await fetch(`${url}/api/v1/workflows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name: `bench-neighbour-${mode}-${tag}-${randomBytes(3).toString('hex')}`,
      definition: { steps: [{ name: mode, type: 'hostile', config: { mode }, timeout: '400ms', retry: { max_retries: 0 } }] },
    }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 201)
    throw new Error(`registering the neighbour: HTTP ${res.status} ${text.slice(0, 300)} (does the runtime load test/fixtures/functions?)`);
  return (JSON.parse(text) as { id: string }).id;
}

/** Starts `rate` runs per second of the neighbour until stopped; returns the stop function and the run count. */
export function startNeighbour(url: string, workflowId: string, rate: number): { stop(): number } {
  let started = 0;
  const timer = setInterval(() => {
    started++;
    fetch(`${url}/api/v1/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow_id: workflowId, input_data: {} }),
      signal: AbortSignal.timeout(10_000),
    }).then(
      (r) => r.arrayBuffer(),
      () => {},
    );
  }, 1000 / rate);
  return {
    stop() {
      clearInterval(timer);
      return started;
    },
  };
}

/** A few runs through the real path before the clock starts (JIT, connections, caches); returns their run_ids. */
export async function warmUp(url: string, workflowIds: string[], count = 20): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${url}/api/v1/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow_id: workflowIds[i % workflowIds.length], input_data: { warmup: i } }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`warm-up execute: HTTP ${res.status} ${text.slice(0, 300)}`);
    ids.push((JSON.parse(text) as { run_id: string }).run_id.toLowerCase());
  }
  return ids;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
