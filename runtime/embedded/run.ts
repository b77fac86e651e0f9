import { execFile, spawn, type ChildProcess } from 'node:child_process';
import type { ServerUser } from './server-user.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment of every PostgreSQL tool we start. Deliberately not ours: PGPORT, PGDATA,
 * PGHOST or PGOPTIONS in the runtime's environment would silently change which socket the
 * server opens or which cluster pg_ctl acts on. TZ is kept so initdb picks the user's zone.
 */
export function toolEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' };
  if (process.env.TZ) env.TZ = process.env.TZ;
  return env;
}

/**
 * Runs a command to completion as `user` and resolves its exit code and output (never rejects
 * on a non-zero exit: callers turn that into an error a person can act on). cwd is `/` because
 * the server user may not be allowed into ours (initdb and pg_ctl fail in an unreadable cwd).
 */
export function run(user: ServerUser, file: string, args: string[], timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: '/', env: toolEnv(), timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, ...ids(user) },
      (err, stdout, stderr) => {
        if (!err) resolve({ code: 0, stdout, stderr });
        else if (typeof err.code === 'number') resolve({ code: err.code, stdout, stderr });
        else if (typeof err.code === 'string')
          reject(new Error(`could not run ${file}: ${err.message}`)); // ENOENT, EACCES
        else
          resolve({ code: -1, stdout, stderr: `${stderr}\n(${err.killed ? `killed after ${timeoutMs} ms` : `ended by ${err.signal}`})` });
      },
    );
  });
}

/** Starts a long-lived process in a session of its own (no terminal signal reaches it) and lets ours exit without it. */
export function spawnDetached(user: ServerUser, file: string, args: string[]): ChildProcess {
  const child = spawn(file, args, { cwd: '/', env: toolEnv(), detached: true, stdio: 'ignore', ...ids(user) });
  child.unref();
  return child;
}

function ids(user: ServerUser): { uid?: number; gid?: number } {
  return user.switched ? { uid: user.uid, gid: user.gid } : {};
}
