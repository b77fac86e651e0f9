export { loadConfig, type LoadOptions } from './load.js';
export { type Config } from './schema.js';
export { DEFAULTS } from './defaults.js';

import type { Config } from './schema.js';

/** "host:port" split from the seed's `api.address` (":8080" listens on all interfaces). */
export function parseAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i) || '0.0.0.0', port: Number(address.slice(i + 1)) };
}

/** The Postgres connection string: DATABASE_URL when given, else built from the parts. */
export function databaseUrl(c: Config['database']): string {
  if (c.url) return withPassword(c.url, c.password);
  const auth = c.password ? `${encodeURIComponent(c.username)}:${encodeURIComponent(c.password)}` : encodeURIComponent(c.username);
  return `postgres://${auth}@${c.host}:${c.port}/${encodeURIComponent(c.database)}?sslmode=${c.ssl_mode}`;
}

/** The Redis connection string: REDIS_URL when given, else built from the parts. */
export function redisUrl(c: Config['redis']): string {
  if (c.url) return withPassword(c.url, c.password);
  const auth = c.password ? `:${encodeURIComponent(c.password)}@` : '';
  return `redis://${auth}${c.host}:${c.port}/${c.database}`;
}

/** Puts a password from the environment (DATABASE_PASSWORD, REDIS_PASSWORD) into a URL that has none. */
function withPassword(url: string, password: string): string {
  if (!password) return url;
  try {
    const u = new URL(url);
    if (u.password) return url;
    u.password = password;
    return u.toString();
  } catch {
    return url;
  }
}
