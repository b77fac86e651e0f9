import postgres, { type Sql } from 'postgres';
import { databaseUrl, type Config } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import { migrate } from './migrations.js';

export type { Sql };

/** Where to connect instead of `database.*`: the embedded server's Unix socket. */
export interface SocketTarget {
  /** the folder holding the socket (postgres.js connects to `<host>/.s.PGSQL.<port>`) */
  host: string;
  port: number;
  username: string;
  database: string;
}

/**
 * Opens the pool and applies the migrations. With `database.*` (or DATABASE_URL) it creates
 * the database first when it is missing and `create_database` is on; with a socket target
 * (the embedded server, which created its database) it connects there.
 */
export async function openPostgres(c: Config['database'], log: Logger, socket?: SocketTarget): Promise<Sql> {
  let sql: Sql;
  if (socket) {
    sql = postgres({ ...poolOptions(c), host: socket.host, port: socket.port, username: socket.username, database: socket.database });
  } else {
    sql = await connectCreating(databaseUrl(c), c, log);
  }
  const applied = await migrate(sql);
  if (applied.length) log.info({ applied }, 'applied migrations');
  return sql;
}

async function connectCreating(url: string, c: Config['database'], log: Logger): Promise<Sql> {
  const sql = postgres(url, poolOptions(c));
  try {
    await sql`SELECT 1`;
    return sql;
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000' || !c.create_database) {
      await sql.end({ timeout: 1 });
      throw err;
    }
  }
  await sql.end({ timeout: 1 });
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (await ensureDatabase(url.replace(/\/[^/?]*(\?|$)/, '/postgres$1'), name)) log.info({ database: name }, 'created database');
  return postgres(url, poolOptions(c));
}

/**
 * Creates `database` when it is missing, connected as `admin` (a URL or a socket target on the
 * `postgres` database); true when it created it. Also the embedded server's, before its pool.
 */
export async function ensureDatabase(admin: string | Omit<SocketTarget, 'database'>, database: string): Promise<boolean> {
  const o = { max: 1, connect_timeout: 10, onnotice: () => {} };
  const sql = typeof admin === 'string' ? postgres(admin, o) : postgres({ ...o, ...admin, database: 'postgres' });
  try {
    if ((await sql`SELECT 1 FROM pg_database WHERE datname = ${database}`).length > 0) return false;
    await sql`CREATE DATABASE ${sql(database)}`;
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '42P04') return false; // created concurrently
    throw err;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

function poolOptions(c: Config['database']) {
  return {
    max: c.max_connections,
    idle_timeout: 60,
    connect_timeout: 10,
    onnotice: () => {},
    transform: { undefined: null },
    connection: { application_name: 'workflow-runtime' },
  };
}

/** Whether PostgreSQL answers (readiness). */
export async function pingPostgres(sql: Sql): Promise<boolean> {
  return (await sql`SELECT 1 AS ok`).length === 1;
}
