import postgres from 'postgres';
import { createLogger, createMetrics } from '../../dist/runtime/observability/index.js';
import { startSystem, type Role, type System } from '../../dist/runtime/system.js';
import { cleanup, ROOT, testConfig } from './env.js';
import { defaultMode, modeSettings, type TestMode } from './modes.js';
import type { Config } from '../../dist/runtime/config/index.js';
import type { Logger } from '../../dist/runtime/observability/index.js';

export interface TestSystem {
  system: System;
  config: Readonly<Config>;
  url: string;
  /** a client on this system's database, whatever its mode (end it after use) */
  sql(): postgres.Sql;
  stop(): Promise<void>;
}

/**
 * Starts the runtime in this process on a free port, with its own database, stream and Redis
 * prefix, in `mode` (services where they run, else embedded; see helpers/modes.ts).
 */
export async function startTestSystem(
  opts: { role?: Role; set?: string[]; dev?: boolean; log?: Logger; mode?: TestMode } = {},
): Promise<TestSystem> {
  const mode = modeSettings(opts.mode ?? defaultMode());
  const { config } = testConfig([...mode.set, ...(opts.set ?? [])]);
  const log = opts.log ?? createLogger({ ...config.logging });
  let system: System;
  try {
    system = await startSystem({ role: opts.role ?? 'all', config, log, metrics: createMetrics(), root: ROOT, dev: opts.dev });
  } catch (err) {
    mode.dispose();
    throw err;
  }
  return {
    system,
    config,
    url: `http://127.0.0.1:${system.port}`,
    sql: () => {
      const db = system.database;
      return 'url' in db ? postgres(db.url, { onnotice: () => {} }) : postgres({ ...db, onnotice: () => {} });
    },
    async stop() {
      await system.stop();
      await cleanup(config);
      mode.dispose();
    },
  };
}

export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  raw?: string,
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(base + path, {
    method,
    headers: body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {},
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
