import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../dist/runtime/config/index.js';
import { startEmbeddedPostgres } from '../../dist/runtime/embedded/index.js';
import { createLogger } from '../../dist/runtime/observability/index.js';
import { openPostgres, type Sql } from '../../dist/runtime/store/index.js';
import { has } from './services.js';

/**
 * The modes the execution-path suites run in (docs/configuration.md, "Modes"):
 * - services: PostgreSQL, NATS JetStream and Redis, the machine's shared servers;
 * - postgres: the shared PostgreSQL as the only service (queue.driver postgres, in-process cache);
 * - embedded: a PostgreSQL of the test's own, started by the runtime from .data-like folder.
 * WF_TEST_MODES=services,embedded narrows the list (all three by default).
 */
export type TestMode = 'services' | 'postgres' | 'embedded';

const ALL: TestMode[] = ['services', 'postgres', 'embedded'];

/** The modes to run a suite in: those asked for (WF_TEST_MODES) whose services answer here. */
export function testModes(only: TestMode[] = ALL): TestMode[] {
  const wanted = process.env.WF_TEST_MODES ? (process.env.WF_TEST_MODES.split(',') as TestMode[]) : ALL;
  return only.filter((m) => wanted.includes(m) && available(m));
}

/** The mode of a suite that runs once: services where they run, else embedded (a machine with nothing but Node). */
export function defaultMode(): TestMode {
  return available('services') ? 'services' : 'embedded';
}

function available(m: TestMode): boolean {
  return m === 'embedded' || (m === 'postgres' ? has('postgres') : has('postgres', 'nats', 'redis'));
}

/** --set overrides for a mode, and a folder to remove afterwards (the embedded data). */
export function modeSettings(mode: TestMode): { set: string[]; dataDir: string | null; dispose(): void } {
  if (mode === 'services') return { set: ['mode=services'], dataDir: null, dispose: () => {} };
  if (mode === 'postgres')
    return { set: ['mode=services', 'queue.driver=postgres', 'cache.driver=memory'], dataDir: null, dispose: () => {} };
  // the embedded server runs as the postgres user when the tests run as root: the folder must be reachable
  const dataDir = mkdtempSync(join(tmpdir(), 'wf-embedded-'));
  chmodSync(dataDir, 0o755);
  return {
    set: ['mode=embedded', `embedded.data_dir=${dataDir}`],
    dataDir,
    dispose: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

/** The readiness checks a mode's system reports. */
export function readinessChecks(mode: TestMode): string[] {
  return mode === 'services' ? ['nats', 'postgres', 'redis'] : ['postgres'];
}

/**
 * A database of a test file's own, migrated: on the shared PostgreSQL where it runs, else on an
 * embedded server in a temporary folder (a machine with nothing but Node).
 */
export async function testDatabase(config: Readonly<Config>): Promise<{ sql: Sql; stop(): Promise<void> }> {
  const log = createLogger({ level: 'warn', format: 'json', output: 'stderr' });
  if (has('postgres')) {
    const sql = await openPostgres(config.database, log);
    return { sql, stop: () => sql.end({ timeout: 2 }) };
  }
  const mode = modeSettings('embedded');
  const pg = await startEmbeddedPostgres({
    dataDir: join(mode.dataDir!, 'postgres'),
    explicit: true,
    database: config.database.database,
    log,
  });
  const sql = await openPostgres(config.database, log, pg.connection);
  return {
    sql,
    async stop() {
      await sql.end({ timeout: 2 });
      await pg.stop();
      mode.dispose();
    },
  };
}
