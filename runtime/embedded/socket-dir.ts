import { chown, lstat, mkdir, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuntimeError } from '../errors/index.js';
import { shortHash } from './data-dir.js';
import { describeFolder, firstBlockedFolder } from './reach.js';
import { PORT } from './server.js';
import type { ServerUser } from './server-user.js';

/** A Unix socket path must fit sun_path (108 bytes on Linux, 104 on macOS, with its NUL). */
const MAX_SOCKET_PATH = process.platform === 'darwin' ? 103 : 107;

const fits = (dir: string): boolean => Buffer.byteLength(join(dir, `.s.PGSQL.${PORT}`)) <= MAX_SOCKET_PATH;

/**
 * Where the server's socket goes: the data dir itself (0700, the server user's: only it, and
 * root, may connect, which is what makes trust authentication safe), unless the socket path
 * would be too long there. Then a short folder of its own under the temp dir, named after the
 * data dir and just as private; `owned` says we made it and remove it at stop.
 */
export async function chooseSocketDir(dataDir: string, user: ServerUser): Promise<{ dir: string; owned: boolean }> {
  if (fits(dataDir)) return { dir: dataDir, owned: false };
  for (const base of [...new Set([tmpdir(), '/tmp'])]) {
    const dir = join(base, `wf-pg-${shortHash(dataDir)}`);
    if (!fits(dir) || (await firstBlockedFolder(base, user))) continue;
    await claimPrivateDir(dir, user);
    return { dir, owned: true };
  }
  throw new RuntimeError(
    'E_CONFIG',
    `no folder for the socket of the embedded PostgreSQL in ${dataDir}: its path is too long and so is the temp dir's (${tmpdir()})`,
  );
}

/** Removes the short socket folder (empty once the server is gone: it deletes its socket and lock file). */
export async function removeSocketDir(dir: string): Promise<void> {
  await rmdir(dir).catch(() => {});
}

/**
 * The temp dir is shared: a folder of that name made beforehand by someone else would let them
 * reach a server that trusts every local connection. Only our own 0700 folder will do.
 */
async function claimPrivateDir(dir: string, user: ServerUser): Promise<void> {
  const made = await mkdir(dir, { mode: 0o700 }).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return false;
      throw err;
    },
  );
  if (made && user.switched) await chown(dir, user.uid, user.gid);
  const s = await lstat(dir);
  if (!s.isDirectory() || s.uid !== user.uid || (s.mode & 0o077) !== 0) {
    throw new RuntimeError(
      'E_CONFIG',
      `refusing ${dir} as the socket folder of the embedded PostgreSQL: it must be a folder of "${user.name}" that only it may enter ` +
        `(it is ${s.isSymbolicLink() ? 'a symlink' : await describeFolder(dir)}). Remove it, or use a shorter data dir path`,
    );
  }
}
