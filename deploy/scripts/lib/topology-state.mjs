#!/usr/bin/env node
/**
 * Helper of deploy/scripts/topology-local.sh: resolves the connection settings
 * the runtime processes will use (same layers as dist/runtime/main.js: .env,
 * environment, config file, --set) and resets the topology's own resources.
 *
 *   node topology-state.mjs env   --set k=v ...   prints `export DATABASE_URL=...` when the
 *                                                 effective config has a database URL (the
 *                                                 URL wins over database.database, so its
 *                                                 database name is rewritten)
 *   node topology-state.mjs reset --set k=v ...   drops the database, the JetStream stream
 *                                                 and the Redis keys under the key prefix
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const { positionals, values } = parseArgs({ allowPositionals: true, options: { set: { type: 'string', multiple: true } } });
const cmd = positionals[0];
const set = values.set ?? [];

// the runtime loads .env from its cwd or the repository root; existing variables win
for (const f of ['.env', `${ROOT}.env`]) {
  if (existsSync(f)) {
    process.loadEnvFile(f);
    break;
  }
}
const { loadConfig, databaseUrl, redisUrl } = await import(pathToFileURL(`${ROOT}dist/runtime/config/index.js`).href);
const config = loadConfig({ file: process.env.CONFIG_FILE ?? `${ROOT}config/default.yaml`, set });

function dbUrlFor(name) {
  const u = new URL(databaseUrl(config.database));
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.toString();
}

if (cmd === 'env') {
  if (config.database.url) {
    const q = (s) => `'${s.replaceAll("'", "'\\''")}'`;
    console.log(`export DATABASE_URL=${q(dbUrlFor(config.database.database))}`);
  }
} else if (cmd === 'reset') {
  const { default: postgres } = await import('postgres');
  const { connect } = await import('nats');
  const { Redis } = await import('ioredis');
  const db = config.database.url ? decodeURIComponent(new URL(config.database.url).pathname.slice(1)) : config.database.database;
  if (!/^wf_[a-z0-9_]+$/.test(db)) throw new Error(`refusing to drop database "${db}": not a topology database (wf_*)`);
  const admin = postgres(dbUrlFor('postgres'), { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
  } finally {
    await admin.end({ timeout: 2 });
  }
  const nc = await connect({ servers: [...config.nats.urls], timeout: 5000 });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(config.nats.stream_name).catch(() => {});
  } finally {
    await nc.close();
  }
  const redis = new Redis(redisUrl(config.redis), { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    let cursor = '0';
    let n = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.redis.key_prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) n += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  console.log(`reset: database ${db}, stream ${config.nats.stream_name}, redis keys ${config.redis.key_prefix}*`);
} else {
  console.error('usage: topology-state.mjs env|reset [--set key=value ...]');
  process.exit(2);
}
