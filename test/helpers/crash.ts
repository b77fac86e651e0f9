import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../dist/runtime/config/index.js';
import { cleanup, isolatedSettings, ROOT, testSql } from './env.js';
import { modeSettings } from './modes.js';
import { startRuntimeProcess, type RuntimeProcess } from './processes.js';

/**
 * The setting of the crash tests: an api process and executor processes of
 * their own (isolated database, stream and Redis prefix), executors that load
 * the test fixtures and log each invocation of `count-invocations` to a file,
 * and the step rows Postgres recorded completed, to compare the two.
 */
export class CrashHarness {
  readonly set: string[];
  readonly config: ReturnType<typeof loadConfig>;
  private readonly dir: string;
  private readonly procs: RuntimeProcess[] = [];

  /** `mode`: services (NATS, Redis) or postgres (the postgres queue, in-process cache), see helpers/modes.ts */
  constructor(maxConcurrentWorkflows: number, mode: 'services' | 'postgres' = 'services') {
    this.set = [
      ...isolatedSettings().set,
      ...modeSettings(mode).set,
      'api.address=127.0.0.1:0',
      'metrics.port=0',
      'queue.ack_wait=3s',
      'executor.function_dirs=[steps, functions, test/fixtures/functions]',
      `executor.max_concurrent_workflows=${maxConcurrentWorkflows}`,
    ];
    this.config = loadConfig({ file: `${ROOT}config/default.yaml`, set: this.set });
    this.dir = mkdtempSync(join(tmpdir(), 'wf-crash-'));
  }

  /** Starts the api process; resolves its base URL. */
  async startApi(): Promise<string> {
    const p = this.start('api', {});
    return `http://127.0.0.1:${await p.port}`;
  }

  /** Starts an executor that logs its invocations under `label` (see invocations()). */
  async startExecutor(label: string): Promise<RuntimeProcess> {
    const p = this.start('executor', { COUNTER_FILE: join(this.dir, `${label}.log`) });
    await p.port;
    return p;
  }

  /** "<run_id> <step name>" per invocation by the executors started under `label`. */
  invocations(label: string): string[] {
    const file = join(this.dir, `${label}.log`);
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
  }

  /** "<run_id> <step name>" of every step row recorded completed. */
  async recordedCompleted(sql: ReturnType<typeof testSql>): Promise<Set<string>> {
    const rows = await sql`SELECT instance_id::text AS run_id, step_name FROM workflow_steps WHERE status = 'completed'`;
    return new Set(rows.map((r) => `${r.run_id} ${r.step_name}`));
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill('SIGKILL')));
    await cleanup(this.config);
  }

  private start(role: string, env: Record<string, string>): RuntimeProcess {
    const p = startRuntimeProcess(role, this.set, env);
    this.procs.push(p);
    return p;
  }
}
