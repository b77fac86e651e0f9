import { userInfo } from 'node:os';
import { RuntimeError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { run } from './run.js';

/** The OS user the PostgreSQL processes run as. */
export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
  /** true when we are root and start every PostgreSQL process as `name` instead */
  switched: boolean;
}

/** The user this process runs as: what PostgreSQL runs as unless we are root. */
export function currentUser(): ServerUser {
  const u = userInfo();
  return { name: u.username, uid: u.uid, gid: u.gid, switched: false };
}

const SERVER_USER = 'postgres';

/**
 * PostgreSQL refuses to run as root (a server bug would own the machine), so as root every
 * initdb, pg_ctl and postgres runs as the `postgres` OS user, created when missing (a slim
 * container image has none). Not root: the current user, nothing to switch.
 */
export async function resolveServerUser(log: Logger): Promise<ServerUser> {
  if (process.getuid?.() !== 0) return currentUser();
  const found = await lookUp(SERVER_USER);
  if (found) return found;
  if (process.platform !== 'linux') {
    throw new RuntimeError(
      'E_CONFIG',
      `embedded PostgreSQL cannot run as root and there is no "${SERVER_USER}" OS user to run it as: ` +
        `start the runtime as a normal user, or create a "${SERVER_USER}" user`,
    );
  }
  await createUser(SERVER_USER);
  const created = await lookUp(SERVER_USER);
  if (!created) throw new RuntimeError('E_CONFIG', `created the OS user "${SERVER_USER}" but cannot find it (id -u ${SERVER_USER})`);
  log.warn(
    { user: SERVER_USER, uid: created.uid, gid: created.gid },
    `running as root: created the system user "${SERVER_USER}" to run the embedded PostgreSQL (it refuses to run as root)`,
  );
  return created;
}

async function lookUp(name: string): Promise<ServerUser | undefined> {
  const me = currentUser();
  const uid = await run(me, 'id', ['-u', name], 5_000);
  const gid = await run(me, 'id', ['-g', name], 5_000);
  if (uid.code !== 0 || gid.code !== 0) return undefined;
  return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), switched: true };
}

/** useradd making the group too (Debian, Fedora), else groupadd then useradd into it; a concurrent creation is fine. */
async function createUser(name: string): Promise<void> {
  const problems: string[] = [];
  const attempt = async (cmd: string, args: string[]): Promise<void> => {
    const r = await run(currentUser(), cmd, args, 30_000).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
    if (r.code !== 0) problems.push(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  };
  await attempt('useradd', ['--system', '--user-group', '--no-create-home', name]);
  if (await lookUp(name)) return;
  // --user-group fails when a group of that name exists already; groupadd then fails harmlessly
  await attempt('groupadd', ['--system', name]);
  await attempt('useradd', ['--system', '--gid', name, '--no-create-home', name]);
  if (await lookUp(name)) return;
  throw new RuntimeError(
    'E_CONFIG',
    `embedded PostgreSQL cannot run as root and creating the OS user "${name}" failed (${problems.join('; ')}): ` +
      `create it yourself (useradd --system --user-group --no-create-home ${name}) or start the runtime as a normal user`,
  );
}
