import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../errors/index.js';
import type { Binaries } from './binaries.js';
import { exited, isAlive, processCommand } from './processes.js';
import { run } from './run.js';
import type { ServerUser } from './server-user.js';

/** One cluster: a data dir and how its server is run. */
export interface Cluster {
  bin: Binaries;
  user: ServerUser;
  dataDir: string;
  socketDir: string;
  /** the server's log (pg_ctl -l), inside the data dir, never rotated */
  logFile: string;
}

/** Only names the socket file (.s.PGSQL.5432): there is no TCP listener, so it cannot collide with another server. */
export const PORT = 5432;

/**
 * Settings given on the command line, so they win over postgresql.conf: these are what make
 * the embedded server safe to run with trust authentication. No TCP at all, and a socket only
 * its owner may open, in a folder (the data dir or a 0700 one) only its owner may enter.
 * fsync stays on (the default): runs must survive a crash of the machine, not only of us.
 */
function settings(c: Cluster): string[] {
  return [
    'listen_addresses=',
    `unix_socket_directories="${c.socketDir}"`,
    'unix_socket_permissions=0700',
    'cluster_name=workflow-runtime', // names the server's processes in ps
    'shared_buffers=128MB',
    'max_connections=100',
  ];
}

/** Creates the cluster when the data dir holds none; true when it did. */
export async function initCluster(c: Cluster): Promise<boolean> {
  if (await hasCluster(c.dataDir)) return false;
  // the builtin C.UTF-8 locale (PostgreSQL 17) is the same on every OS; libc's C.UTF-8 is missing on some macOS versions
  const args = ['-D', c.dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=reject', '-E', 'UTF8'];
  args.push('--locale-provider=builtin', '--builtin-locale=C.UTF-8', '--locale=C', '--no-instructions');
  const r = await run(c.user, c.bin.initdb, args);
  if (r.code !== 0) {
    throw new RuntimeError(
      'E_STORE_UNAVAILABLE',
      `initdb of the embedded PostgreSQL in ${c.dataDir} failed: ${lastLines(r.stderr || r.stdout)}`,
    );
  }
  return true;
}

export async function hasCluster(dataDir: string): Promise<boolean> {
  return stat(join(dataDir, 'PG_VERSION')).then(
    () => true,
    () => false,
  );
}

/**
 * Starts the server and waits until it accepts connections; resolves its pid. pg_ctl starts it
 * in a session of its own, so a Ctrl-C in our terminal does not reach it: the runtime flushes
 * its writes and then stops the database itself.
 */
export async function startServer(c: Cluster): Promise<number> {
  const options = settings(c)
    .map((s) => `-c ${shellQuote(s)}`)
    .join(' ');
  const r = await run(c.user, c.bin.pg_ctl, ['-D', c.dataDir, '-l', c.logFile, '-o', options, '-w', '-t', '60', 'start']);
  const pid = r.code === 0 ? await livePostmaster(c.dataDir) : undefined;
  if (pid === undefined) {
    throw new RuntimeError(
      'E_STORE_UNAVAILABLE',
      `the embedded PostgreSQL in ${c.dataDir} did not start (${lastLines(r.stderr || r.stdout)}); its log ${c.logFile} ends with: ${await logTail(c.logFile)}`,
    );
  }
  return pid;
}

/**
 * pg_ctl stop in `mode`; true when no server is left running. pg_ctl -w returns once
 * postmaster.pid is gone, a moment before the process has exited: that is waited for too.
 */
export async function stopServer(c: Cluster, mode: 'fast' | 'immediate'): Promise<boolean> {
  const pid = await livePostmaster(c.dataDir);
  if (pid === undefined) return true;
  await run(c.user, c.bin.pg_ctl, ['-D', c.dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
  return (await exited(pid, 5_000)) && (await livePostmaster(c.dataDir)) === undefined;
}

/**
 * The pid of a server running on this data dir, from postmaster.pid. The pid must still be a
 * postgres: after a crash the file stays behind and its pid may since belong to anything.
 */
export async function livePostmaster(dataDir: string): Promise<number | undefined> {
  const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(text.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  return /(^|\/)postgres(\s|$)/.test(await processCommand(pid)) ? pid : undefined;
}

/** The last lines of the server's log, for errors (the log is ours to read, not on our stdout). */
export async function logTail(logFile: string, bytes = 2048): Promise<string> {
  try {
    const f = await open(logFile, 'r');
    try {
      const { size } = await f.stat();
      const buf = Buffer.alloc(Math.min(bytes, size));
      await f.read(buf, 0, buf.length, size - buf.length);
      return lastLines(buf.toString('utf8')) || '(empty)';
    } finally {
      await f.close();
    }
  } catch (err) {
    return `(unreadable: ${(err as Error).message})`;
  }
}

function lastLines(text: string, n = 6): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

/** pg_ctl hands -o to /bin/sh: each setting goes in single quotes. */
function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
