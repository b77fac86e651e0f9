import postgres, { type Sql } from 'postgres';
import { databaseUrl, type Config } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import { migrate } from './migrations.js';

export type { Sql };

/** Opens the pool; creates the database first when it is missing and `create_database` is on. */
export async function openPostgres(c: Config['database'], log: Logger): Promise<Sql> {
  const url = databaseUrl(c);
  let sql = connect(url, c);
  try {
    await sql`SELECT 1`;
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000' || !c.create_database) throw err;
    await sql.end({ timeout: 1 });
    const name = new URL(url).pathname.slice(1);
    const admin = connect(url.replace(/\/[^/?]*(\?|$)/, '/postgres$1'), { ...c, max_connections: 1 });
    try {
      await admin.unsafe(`CREATE DATABASE "${decodeURIComponent(name).replaceAll('"', '""')}"`);
      log.info({ database: name }, 'created database');
    } catch (e) {
      if ((e as { code?: string }).code !== '42P04') throw e; // created concurrently
    } finally {
      await admin.end({ timeout: 1 });
    }
    sql = connect(url, c);
  }
  const applied = await migrate(sql);
  if (applied.length) log.info({ applied }, 'applied migrations');
  return sql;
}

function connect(url: string, c: Config['database']): Sql {
  return postgres(url, {
    max: c.max_connections,
    idle_timeout: 60,
    connect_timeout: 10,
    onnotice: () => {},
    transform: { undefined: null },
    connection: { application_name: 'workflow-runtime' },
  });
}

/** Whether PostgreSQL answers (readiness). */
export async function pingPostgres(sql: Sql): Promise<boolean> {
  return (await sql`SELECT 1 AS ok`).length === 1;
}
