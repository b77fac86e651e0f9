import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { run } from './run.js';
import { currentUser } from './server-user.js';

/**
 * Whether a process with this pid is running (one of another user counts). A zombie does not:
 * an exited server stays one until its parent, init, gets round to reaping it.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until `pid` has exited; false when it still runs after `timeoutMs`. */
export async function exited(pid: number, timeoutMs: number): Promise<boolean> {
  for (const until = Date.now() + timeoutMs; isAlive(pid); await sleep(20)) if (Date.now() > until) return false;
  return true;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The command line of a live process ('' when gone), to tell our processes from a reused pid. */
export async function processCommand(pid: number): Promise<string> {
  if (process.platform === 'linux') {
    try {
      return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
    } catch {
      return '';
    }
  }
  const ps = await run(currentUser(), 'ps', ['-o', 'command=', '-p', String(pid)], 5_000);
  return ps.code === 0 ? ps.stdout.trim() : '';
}
