import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { connect } from 'nats';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../dist/runtime/config/index.js';
import { has } from './services.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Names of the resources one test file owns: its own database, stream, subjects and Redis prefix. */
export function isolatedSettings(): { id: string; set: string[] } {
  const id = `t${randomBytes(4).toString('hex')}`;
  return {
    id,
    set: [
      `database.database=wf_${id}`,
      `nats.stream_name=wf_${id}`,
      `nats.subject_prefix=wf.${id}`,
      `redis.key_prefix=wf:${id}:`,
      'logging.level=warn',
      // the machine is shared and its two cores busy: a late event loop must not refuse a test's
      // requests (admission by load is tested where it is set on purpose)
      'admission.max_event_loop_delay=30s',
    ],
  };
}

export function testConfig(set: string[] = []): { id: string; config: Readonly<Config> } {
  const iso = isolatedSettings();
  const config = loadConfig({ file: `${ROOT}config/default.yaml`, set: [...iso.set, 'api.address=127.0.0.1:0', 'metrics.port=0', ...set] });
  return { id: iso.id, config };
}

/** Drops the database, the stream and the Redis keys of a test file (on the shared services that run here). */
export async function cleanup(config: Readonly<Config>): Promise<void> {
  if (has('postgres')) await dropDatabase(config);
  if (has('nats')) await deleteStream(config);
  if (has('redis')) await deleteKeys(config);
}

async function dropDatabase(config: Readonly<Config>): Promise<void> {
  const admin = postgres({
    host: config.database.host,
    port: config.database.port,
    user: config.database.username,
    database: 'postgres',
    onnotice: () => {},
  });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS "${config.database.database}" WITH (FORCE)`);
  } finally {
    await admin.end({ timeout: 2 });
  }
}

async function deleteStream(config: Readonly<Config>): Promise<void> {
  const nc = await connect({ servers: [...config.nats.urls] });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(config.nats.stream_name).catch(() => {});
  } finally {
    await nc.close();
  }
}

async function deleteKeys(config: Readonly<Config>): Promise<void> {
  const redis = new Redis({ host: config.redis.host, port: config.redis.port, db: config.redis.database });
  try {
    const keys = await redis.keys(`${config.redis.key_prefix}*`);
    if (keys.length) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

/** A postgres client on a test file's database, for assertions. */
export function testSql(config: Readonly<Config>) {
  return postgres({
    host: config.database.host,
    port: config.database.port,
    user: config.database.username,
    database: config.database.database,
    onnotice: () => {},
  });
}

export async function waitFor<T>(
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs: number,
  what: string,
  everyMs = 100,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
