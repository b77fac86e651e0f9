import postgres from 'postgres';
import { PORT } from './server.js';

/**
 * Creates `database` on the embedded server when it is missing. This folder is the adapter of
 * the PostgreSQL server process, so it is the one place beside store/ that uses the client
 * (postgres.js), for this one statement before the store's pool exists; the store opens its
 * own pool afterwards and applies the migrations.
 */
export async function ensureDatabase(socketDir: string, database: string): Promise<boolean> {
  const sql = postgres({
    host: socketDir,
    port: PORT,
    username: 'postgres',
    database: 'postgres',
    max: 1,
    connect_timeout: 10,
    onnotice: () => {},
  });
  try {
    const found = await sql`SELECT 1 FROM pg_database WHERE datname = ${database}`;
    if (found.length > 0) return false;
    try {
      await sql`CREATE DATABASE ${sql(database)}`;
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === '42P04') return false; // created concurrently
      throw err;
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
}
