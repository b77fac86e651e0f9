import { existsSync } from 'node:fs';
import { cp, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { RuntimeError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { findBinaries, type Binaries } from './binaries.js';
import { ensureDatabase } from '../store/index.js';
import { FALLBACK_ROOT, makeSafeParents, prepareDataDir } from './data-dir.js';
import { endGuard, findGuard, startGuard, type Guard } from './guard.js';
import { describeFolder, firstBlockedFolder } from './reach.js';
import { isAlive } from './processes.js';
import { initCluster, livePostmaster, PORT, startServer, stopServer, type Cluster } from './server.js';
import { resolveServerUser, type ServerUser } from './server-user.js';
import { chooseSocketDir, removeSocketDir } from './socket-dir.js';

export interface EmbeddedPostgresOptions {
  /** where the cluster lives (created and initialised if missing) */
  dataDir: string;
  /** whether dataDir was chosen by the user: then it is never silently moved (see prepareDataDir) */
  explicit: boolean;
  /** a database to create if missing (e.g. "workflow") */
  database: string;
  log: Logger;
}

export interface EmbeddedPostgres {
  /** options for postgres.js (`postgres({ host, port, username, database })`): host is the socket's folder, there is no TCP */
  connection: { host: string; port: number; username: string; database: string };
  /** for people: `psql 'postgresql:///workflow?host=/path&user=postgres'` */
  url: string;
  /** where the data really lives (differs from the option after the root fallback) */
  dataDir: string;
  /** e.g. "17.10" */
  version: string;
  /** the server's log (inside dataDir, never rotated) */
  logFile: string;
  /** fast shutdown, waiting until the server has exited, and the guard ends; idempotent. Close your pools first. */
  stop(): Promise<void>;
}

/**
 * Starts a PostgreSQL from the binaries in our optional dependencies, with its data in a
 * folder: the "zero setup" mode. Initialises the cluster on first start, takes over from a
 * runtime that was killed (its server is stopped and started again; PostgreSQL itself
 * recovers from a crash), leaves a guard process that stops the server soon after this
 * process dies without calling stop(), and creates `database` if missing.
 */
export async function startEmbeddedPostgres(o: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const began = performance.now();
  const user = await resolveServerUser(o.log);
  const bin = await reachableBinaries(await findBinaries(), user, o.log);
  const dataDir = await prepareDataDir({ dataDir: o.dataDir, explicit: o.explicit, user, log: o.log });
  const socket = await chooseSocketDir(dataDir, user);
  const c: Cluster = { bin, user, dataDir, socketDir: socket.dir, logFile: join(dataDir, 'server.log') };

  const initialised = await initCluster(c);
  if (initialised) o.log.info({ dataDir, ms: Math.round(performance.now() - began) }, 'initialised the embedded PostgreSQL cluster');
  else await takeOver(c, o.log);

  const guard = await startGuard(c);
  try {
    await startServer(c);
    if (await ensureDatabase({ host: c.socketDir, port: PORT, username: 'postgres' }, o.database))
      o.log.info({ database: o.database }, 'created database');
  } catch (err) {
    await shutDown(c, guard, o.log).catch(() => {});
    if (socket.owned) await removeSocketDir(socket.dir);
    throw err;
  }

  const url = `postgresql:///${encodeURIComponent(o.database)}?host=${encodeURIComponent(c.socketDir).replaceAll('%2F', '/')}&user=postgres`;
  o.log.info(
    { dataDir, version: bin.version, url, logFile: c.logFile, user: user.name, ms: Math.round(performance.now() - began) },
    'embedded PostgreSQL ready',
  );
  let stopping: Promise<void> | undefined;
  return {
    connection: { host: c.socketDir, port: PORT, username: 'postgres', database: o.database },
    url,
    dataDir,
    version: bin.version,
    logFile: c.logFile,
    stop: () =>
      (stopping ??= (async () => {
        await shutDown(c, guard, o.log);
        if (socket.owned) await removeSocketDir(socket.dir);
        o.log.info({ dataDir }, 'embedded PostgreSQL stopped');
      })()),
  };
}

/**
 * Before starting: a server already running on this data dir either belongs to a live runtime
 * (its guard watches it: refuse, stopping it would pull the database from under that runtime)
 * or was left by one that died (killed before its guard acted, or with its guard): stop it and
 * start afresh. A guard still watching a dead runtime is ended first; it would otherwise stop
 * the server we are about to start.
 */
async function takeOver(c: Cluster, log: Logger): Promise<void> {
  const guard = await findGuard(c.dataDir);
  if (guard?.runtimeAlive) {
    throw new RuntimeError(
      'E_DATA_DIR_IN_USE',
      `the embedded PostgreSQL data dir ${c.dataDir} is in use by the runtime with pid ${guard.runtimePid}: stop that runtime first, or choose another data dir`,
    );
  }
  if (guard) await endGuard(guard);
  const pid = await livePostmaster(c.dataDir);
  if (pid === undefined) {
    // a postmaster.pid of a dead server is PostgreSQL's to handle (crash recovery), unless its pid
    // has since been given to another live process (in a container, small pids come round again):
    // PostgreSQL would then refuse to start ("lock file already exists")
    await removeReusedPidFile(c.dataDir, log);
    return;
  }
  log.warn({ dataDir: c.dataDir, pid }, 'stopping an embedded PostgreSQL left running by a runtime that ended without stopping it');
  await shutDown(c, undefined, log);
}

/** Removes postmaster.pid when the pid it names is alive but no postgres (see takeOver). */
async function removeReusedPidFile(dataDir: string, log: Logger): Promise<void> {
  const file = join(dataDir, 'postmaster.pid');
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  log.warn({ dataDir, pid }, 'the embedded PostgreSQL lock file names a process that is not a postgres (its pid was reused): removing it');
  await rm(file, { force: true });
}

/** Fast shutdown (sessions ended, a checkpoint), immediate if that does not finish (crash recovery at next start). */
async function shutDown(c: Cluster, guard: Guard | undefined, log: Logger): Promise<void> {
  if (!(await stopServer(c, 'fast'))) {
    log.warn(
      { dataDir: c.dataDir, logFile: c.logFile },
      'the embedded PostgreSQL did not stop in fast mode; stopping it in immediate mode',
    );
    if (!(await stopServer(c, 'immediate'))) {
      throw new RuntimeError(
        'E_STORE_UNAVAILABLE',
        `the embedded PostgreSQL in ${c.dataDir} does not stop (pg_ctl stop -m immediate); see ${c.logFile}`,
      );
    }
  }
  await guard?.stop();
}

/**
 * The server user must be able to run the binaries. A project under a 0700 folder (/root, a
 * default mkdtemp dir: a fresh clone often is) is out of its reach: the binaries, with the
 * libraries and share/ files they find relative to themselves, are then copied once to
 * FALLBACK_ROOT/bin-<version>-<os>-<cpu> (root-owned, world-readable) and run from there.
 */
async function reachableBinaries(bin: Binaries, user: ServerUser, log: Logger): Promise<Binaries> {
  const blocked = await firstBlockedFolder(bin.postgres, user);
  if (!blocked) return bin;
  const native = dirname(dirname(bin.postgres)); // <package>/native: bin/, lib/, share/
  const pkg = JSON.parse(await readFile(join(native, '..', 'package.json'), 'utf8')) as { name: string; version: string };
  const home = join(FALLBACK_ROOT, `bin-${pkg.name.replace(/[^A-Za-z0-9.-]+/g, '-')}-${pkg.version}`);
  const copied = join(home, 'native');
  if (!existsSync(copied)) {
    // copied aside, then renamed into place: `copied` exists only complete, and is never removed
    // (another runtime may run from it); when two starts copy at once, the first rename wins
    await makeSafeParents(home);
    const partial = `${copied}.${process.pid}`;
    await rm(partial, { recursive: true, force: true });
    await cp(native, partial, { recursive: true, verbatimSymlinks: true });
    try {
      await rename(partial, copied);
    } catch (err) {
      if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      await rm(partial, { recursive: true, force: true });
    }
  }
  log.warn(
    { from: native, to: copied, blocked },
    `the embedded PostgreSQL runs as "${user.name}" (the runtime runs as root), which cannot enter ${blocked} (${await describeFolder(blocked)}): running its binaries from ${copied}`,
  );
  const moved = (p: string) => join(copied, relative(native, p));
  const out = { ...bin, postgres: moved(bin.postgres), initdb: moved(bin.initdb), pg_ctl: moved(bin.pg_ctl) };
  const still = await firstBlockedFolder(out.postgres, user);
  if (still) {
    throw new RuntimeError(
      'E_CONFIG',
      `the embedded PostgreSQL runs as the OS user "${user.name}", which can reach neither its binaries in ${bin.postgres} nor a copy in ${copied}: ` +
        `${still} (${await describeFolder(still)}) does not let it in. Install the project in a folder every user may enter (e.g. /opt or /srv)`,
    );
  }
  return out;
}
