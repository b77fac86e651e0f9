import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../dist/bench/system.js';
import { tcpProbe } from '../../dist/runtime/modes.js';

/**
 * Private PostgreSQL, NATS and Redis servers for the chaos suite: each on a free port of
 * 127.0.0.1 with its data in a folder of its own under /tmp, started and faulted here and
 * stopped in the suite's afterAll. The machine's shared servers (5432, 4222, 6379) are never
 * touched: every fault the suite injects is done to one of these.
 */
export interface PrivateServer {
  readonly name: string;
  readonly port: number;
  /** the fault: kill -9 (NATS, Redis) or an immediate stop (PostgreSQL, which crash-recovers at start) */
  crash(): Promise<void>;
  /** starts it again on the same port and data; resolves once it answers */
  start(): Promise<void>;
  /** stops it for good and removes its folder; safe to call twice, and after a failed start */
  dispose(): Promise<void>;
}

const run = promisify(execFile);

/** Every private server still up, stopped when the test process exits however it exits. */
const live = new Set<() => void>();
process.once('exit', () => {
  for (const stop of live) stop();
});

async function answering(port: number, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while ((await tcpProbe('127.0.0.1', port, 250)) !== null) {
    if (Date.now() > end) throw new Error(`${what} did not answer on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A server that is one child process of ours (NATS, Redis): crash is SIGKILL, start spawns it again. */
class ChildServer implements PrivateServer {
  private child: ChildProcess | null = null;
  private readonly killNow = () => this.child?.kill('SIGKILL');

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly dir: string,
    private readonly command: string,
    private readonly args: string[],
  ) {}

  async start(): Promise<void> {
    const child = spawn(this.command, this.args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => {
      if (/error|fatal/i.test(d.toString())) process.stderr.write(`[${this.name}] ${d.toString()}`);
    });
    this.child = child;
    live.add(this.killNow);
    await answering(this.port, 10_000, this.name);
  }

  async crash(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.crash();
    live.delete(this.killNow);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** NATS 2.9 with JetStream, its store in a folder of its own (kept across a crash: the runs in it must survive). */
export async function startNats(): Promise<PrivateServer> {
  const port = await freePort();
  const dir = mkdtempSync('/tmp/wf-chaos-nats-');
  const s = new ChildServer('nats', port, dir, '/usr/sbin/nats-server', [
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '-js',
    '-sd',
    join(dir, 'js'),
  ]);
  await startOrDispose(s);
  return s;
}

/** Redis as a cache only: no snapshots, no append-only file (a restart comes back empty). */
export async function startRedis(): Promise<PrivateServer> {
  const port = await freePort();
  const dir = mkdtempSync('/tmp/wf-chaos-redis-');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const s = new ChildServer('redis', port, dir, 'redis-server', args);
  await startOrDispose(s);
  return s;
}

/**
 * PostgreSQL 15 of the machine's packages, run as the postgres user (the suite runs as root) on
 * a data folder it owns; trust authentication, TCP on 127.0.0.1 only, its socket in the data folder.
 */
class PostgresServer implements PrivateServer {
  readonly name = 'postgres';
  private up = false;
  private readonly stopNow = () => {
    try {
      execFileSync('runuser', ['-u', 'postgres', '--', PG_CTL, '-D', this.data, '-m', 'immediate', 'stop'], { stdio: 'ignore' });
    } catch {
      /* already stopped */
    }
  };

  constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly data: string,
  ) {}

  async start(): Promise<void> {
    const opts = `-p ${this.port} -k ${this.data} -c listen_addresses=127.0.0.1`;
    live.add(this.stopNow);
    await run('runuser', ['-u', 'postgres', '--', PG_CTL, '-D', this.data, '-o', opts, '-l', join(this.data, 'log'), '-w', 'start'], {
      timeout: 30_000,
    });
    this.up = true;
    await answering(this.port, 10_000, this.name);
  }

  async crash(): Promise<void> {
    if (!this.up) return;
    await run('runuser', ['-u', 'postgres', '--', PG_CTL, '-D', this.data, '-m', 'immediate', '-w', 'stop'], { timeout: 30_000 });
    this.up = false;
  }

  async dispose(): Promise<void> {
    this.stopNow();
    this.up = false;
    live.delete(this.stopNow);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const PG_BIN = '/usr/lib/postgresql/15/bin';
const PG_CTL = `${PG_BIN}/pg_ctl`;

export async function startPostgres(): Promise<PrivateServer> {
  const port = await freePort();
  // the postgres user must reach the data folder: mkdtemp makes a 0700 folder of root's
  const dir = mkdtempSync('/tmp/wf-chaos-pg-');
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(data, uid, gid);
  const s = new PostgresServer(port, dir, data);
  try {
    await run('runuser', ['-u', 'postgres', '--', `${PG_BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], {
      timeout: 60_000,
    });
  } catch (err) {
    await s.dispose();
    throw err;
  }
  await startOrDispose(s);
  return s;
}

async function startOrDispose(s: PrivateServer): Promise<void> {
  try {
    await s.start();
  } catch (err) {
    await s.dispose();
    throw err;
  }
}
