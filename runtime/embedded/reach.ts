import { stat } from 'node:fs/promises';
import { dirname, parse, sep } from 'node:path';
import { RuntimeError } from '../errors/index.js';
import { run } from './run.js';
import { currentUser, type ServerUser } from './server-user.js';

/**
 * The first existing folder on the way to `path` (itself included) that `user` may not enter,
 * or undefined when every existing one lets it in. Asked of the kernel as that user (one `sh`),
 * not worked out from mode bits, so ACLs, groups and mounts count as they will for the server.
 */
export async function firstBlockedFolder(path: string, user: ServerUser): Promise<string | undefined> {
  if (!user.switched) return undefined; // we made it or may use it ourselves
  const script = 'for d; do [ -e "$d" ] || exit 0; [ -x "$d" ] || { printf %s "$d"; exit 3; }; done';
  const r = await run(user, '/bin/sh', ['-c', script, 'sh', ...foldersTo(path)], 10_000);
  if (r.code === 0) return undefined;
  if (r.code === 3 && r.stdout) return r.stdout;
  throw new RuntimeError(
    'E_INTERNAL',
    `checking which folders the OS user "${user.name}" may enter failed: ${r.stderr.trim() || `exit ${r.code}`}`,
  );
}

/** "/a/b/c" → ["/", "/a", "/a/b", "/a/b/c"] */
function foldersTo(path: string): string[] {
  const root = parse(path).root;
  const out: string[] = [];
  for (let d = path; d !== root; d = dirname(d)) out.unshift(d);
  out.unshift(root || sep);
  return out;
}

/** "mode 0700, owner root": what a person needs to see to fix a blocked folder. */
export async function describeFolder(path: string): Promise<string> {
  try {
    const s = await stat(path);
    const name = await run(currentUser(), 'id', ['-nu', String(s.uid)], 5_000).catch(() => undefined);
    const owner = name?.code === 0 ? name.stdout.trim() : `uid ${s.uid}`;
    return `mode ${(s.mode & 0o7777).toString(8).padStart(4, '0')}, owner ${owner}`;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unreadable';
  }
}
