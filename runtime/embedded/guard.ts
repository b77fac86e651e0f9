import type { ChildProcess } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../errors/index.js';
import { exited, isAlive, processCommand, sleep } from './processes.js';
import { spawnDetached } from './run.js';
import type { Cluster } from './server.js';

/** Names the guard in ps, and is how a later start recognises one (a pid alone may have been reused). */
const MARKER = 'workflow-runtime-guard';

/** In the data dir: line 1 the runtime's pid, line 2 its guard's pid. */
const OWNER_FILE = 'workflow-runtime.pid';

/**
 * The guard: a tiny shell, in a session of its own, that outlives a runtime killed with -9 (no
 * handler of ours runs then) and stops the server within about a second. It polls instead of
 * waiting on a pipe so it holds nothing of ours. It stops the server only while the owner file
 * still names it: a runtime started meanwhile on the same data dir owns the server now.
 * A zombie counts as gone; /proc is read with builtins so the loop forks nothing but sleep.
 */
const SCRIPT = `
rpid=$1 data=$2 pg_ctl=$3 log=$4
alive() {
  if [ -r /proc/self/stat ]; then
    { read -r st < "/proc/$1/stat"; } 2>/dev/null || return 1
    st=\${st##*) }; [ "\${st%% *}" != Z ]
  else
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1;; esac
  fi
}
while alive "$rpid"; do sleep 1; done
{ read -r _; read -r owner; } < "$data/${OWNER_FILE}" 2>/dev/null
[ "$owner" = "$$" ] || exit 0
echo "${MARKER}: runtime pid $rpid is gone, stopping the server" >> "$log"
exec "$pg_ctl" -D "$data" -m fast -w stop >> "$log" 2>&1
`;

export interface Guard {
  /** ends the guard (and its sleep) and waits until it is gone */
  stop(): Promise<void>;
}

/** Starts the guard of `c` for this process and records both in the owner file. Not on Windows (no /bin/sh). */
export async function startGuard(c: Cluster): Promise<Guard | undefined> {
  if (process.platform === 'win32') return undefined;
  const child = spawnDetached(c.user, '/bin/sh', ['-c', SCRIPT, MARKER, String(process.pid), c.dataDir, c.bin.pg_ctl, c.logFile]);
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  if (child.pid === undefined)
    throw new RuntimeError('E_STORE_UNAVAILABLE', 'could not start the guard of the embedded PostgreSQL: /bin/sh did not run');
  await writeFile(join(c.dataDir, OWNER_FILE), `${process.pid}\n${child.pid}\n`, { mode: 0o644 });
  return { stop: () => stopGuard(child, gone, c.dataDir) };
}

async function stopGuard(child: ChildProcess, gone: Promise<void>, dataDir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    endGroup(child.pid);
    await Promise.race([gone, sleep(3_000)]);
  }
  await rm(join(dataDir, OWNER_FILE), { force: true });
}

/** The guard found on a data dir, and whether the runtime it watches is still alive. */
export interface FoundGuard {
  pid: number;
  runtimePid: number;
  runtimeAlive: boolean;
}

/**
 * The live guard named by the data dir's owner file, if any (its command line must be a guard's
 * for this data dir: a pid alone may have been reused). A live guard of a live runtime means the
 * server there is in use; one whose runtime is dead is about to stop that server.
 */
export async function findGuard(dataDir: string): Promise<FoundGuard | undefined> {
  const [runtimePid, pid] = (await readFile(join(dataDir, OWNER_FILE), 'utf8').catch(() => '')).split('\n').map((l) => Number(l));
  if (!Number.isInteger(runtimePid) || !Number.isInteger(pid) || runtimePid <= 0 || pid <= 0 || !isAlive(pid)) return undefined;
  const command = await processCommand(pid);
  if (!command.includes(MARKER) || !command.includes(dataDir)) return undefined;
  return { pid, runtimePid, runtimeAlive: isAlive(runtimePid) };
}

/** Ends a guard (one of a dead runtime, before we stop and restart its server ourselves, so it cannot stop the new one). */
export async function endGuard(g: FoundGuard): Promise<void> {
  endGroup(g.pid);
  await exited(g.pid, 3_000);
}

function endGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGTERM'); // the guard leads its process group: the shell and its sleep
  } catch {
    // gone already
  }
}
