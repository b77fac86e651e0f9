import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { RuntimeError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { describeFolder, firstBlockedFolder } from './reach.js';
import type { ServerUser } from './server-user.js';

/** Where a default data dir goes when the server user cannot reach it (see prepareDataDir). */
// not /var/tmp: systemd-tmpfiles ages its files (30 days on Debian), a database there would lose them
export const FALLBACK_ROOT = '/var/lib/workflow-runtime';

export interface DataDirRequest {
  dataDir: string;
  explicit: boolean;
  user: ServerUser;
  log: Logger;
}

/**
 * Makes the data dir exist, owned by the server user, and returns where it is. As root the
 * server runs as another user, who must be able to enter every folder above the data dir: a
 * folder under /root or a default mkdtemp dir (0700) is a wall. A default data dir then moves
 * to FALLBACK_ROOT/<hash of the original>/postgres (the same place on every start, so the data
 * is found again) with a warning; one the user chose is never silently moved: that is an error
 * saying which folder blocks it.
 */
export async function prepareDataDir(r: DataDirRequest): Promise<string> {
  const wanted = resolve(r.dataDir);
  checkPathCharacters(wanted);
  if (!r.user.switched) {
    await mkdir(wanted, { recursive: true, mode: 0o700 });
    await checkInitialisable(wanted);
    return wanted;
  }
  const blocked = await firstBlockedFolder(wanted, r.user);
  if (!blocked) return claim(wanted, r.user);
  const why = `${blocked} (${await describeFolder(blocked)}) does not let the OS user "${r.user.name}" in`;
  if (r.explicit) {
    throw new RuntimeError(
      'E_CONFIG',
      `the embedded PostgreSQL data dir ${wanted} cannot be used: the runtime runs as root, so PostgreSQL runs as "${r.user.name}", ` +
        `and ${why}. Choose a data dir whose every parent folder "${r.user.name}" may enter (e.g. /var/lib/workflow-runtime/postgres), ` +
        `or let it in: chmod o+x ${blocked}`,
    );
  }
  const fallback = join(FALLBACK_ROOT, shortHash(wanted), 'postgres');
  r.log.warn(
    { wanted, dataDir: fallback, blocked },
    `embedded PostgreSQL keeps its data in ${fallback}, not in ${wanted}: it runs as "${r.user.name}" (the runtime runs as root) and ${why}`,
  );
  await makeSafeParents(dirname(fallback));
  const stillBlocked = await firstBlockedFolder(fallback, r.user);
  if (stillBlocked) {
    throw new RuntimeError(
      'E_CONFIG',
      `neither ${wanted} nor the fallback ${fallback} can hold the embedded PostgreSQL data: ${stillBlocked} (${await describeFolder(stillBlocked)}) ` +
        `does not let the OS user "${r.user.name}" in. Choose a data dir it can reach`,
    );
  }
  return claim(fallback, r.user);
}

/** The first 12 hex digits of sha1(text): a short, stable name for a path. */
export function shortHash(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 12);
}

/**
 * pg_ctl puts paths into a /bin/sh command line inside double quotes, where these characters
 * would be expanded or end the quote: refuse them rather than start a server somewhere else.
 */
function checkPathCharacters(path: string): void {
  if (/["$`\\\n]/.test(path)) {
    throw new RuntimeError(
      'E_CONFIG',
      `the embedded PostgreSQL data dir ${JSON.stringify(path)} contains one of " $ \` \\ or a newline: choose another path`,
    );
  }
}

/** Creates the missing folders above the data dir 0755 (chmod after mkdir: a umask of 077 would make each a wall). */
async function makeParents(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; !(await exists(d)); d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      await mkdir(d);
      await chmod(d, 0o755);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * The fallback lives in a world-writable /var/tmp: a folder there made first by another user
 * could be swapped for a symlink to somewhere we would then chown. Only root-owned folders
 * nobody else may write are used.
 */
export async function makeSafeParents(dir: string): Promise<void> {
  await makeParents(dir);
  for (let d = dir; d !== dirname(FALLBACK_ROOT); d = dirname(d)) {
    const s = await lstat(d);
    if (!s.isDirectory() || s.uid !== 0 || (s.mode & 0o022) !== 0) {
      throw new RuntimeError(
        'E_CONFIG',
        `refusing the embedded PostgreSQL fallback folder ${d}: it must be a directory owned by root that only root may write ` +
          `(it is ${s.isSymbolicLink() ? 'a symlink' : await describeFolder(d)}). Remove it, or choose a data dir explicitly`,
      );
    }
  }
}

/** The data dir exists, belongs to the server user and holds a cluster or nothing. */
async function claim(dataDir: string, user: ServerUser): Promise<string> {
  await makeParents(dirname(dataDir));
  await mkdir(dataDir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const s = await stat(dataDir);
  if (!s.isDirectory())
    throw new RuntimeError('E_CONFIG', `the embedded PostgreSQL data dir ${dataDir} is not a folder: choose another path`);
  await checkInitialisable(dataDir); // empty, or a cluster
  if (s.uid !== user.uid) {
    if ((await readdir(dataDir)).length > 0) {
      throw new RuntimeError(
        'E_CONFIG',
        `the embedded PostgreSQL cluster in ${dataDir} belongs to uid ${s.uid}, but PostgreSQL runs as "${user.name}" (uid ${user.uid}) ` +
          `because the runtime runs as root: chown -R ${user.name}: ${dataDir}, or run the runtime as uid ${s.uid}`,
      );
    }
    // an empty folder (made by us just now, or by the user for us)
    await chown(dataDir, user.uid, user.gid);
    await chmod(dataDir, 0o700);
  }
  return dataDir;
}

/** initdb wants an empty folder; say so up front (a volume's lost+found counts) rather than relay its error. */
async function checkInitialisable(dataDir: string): Promise<void> {
  if (await exists(join(dataDir, 'PG_VERSION'))) return;
  const entries = await readdir(dataDir);
  if (entries.length === 0) return;
  throw new RuntimeError(
    'E_CONFIG',
    `the embedded PostgreSQL data dir ${dataDir} holds no cluster (no PG_VERSION) and is not empty (${entries.slice(0, 5).join(', ')}): ` +
      `choose an empty or missing folder (e.g. a subfolder of a mounted volume)`,
  );
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
