import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../dist/runtime/config/index.js';
import { startCompilerWatch } from '../../dist/runtime/dev-compiler.js';
import { cleanup, isolatedSettings, ROOT, waitFor } from '../helpers/env.js';
import { startRuntimeProcess } from '../helpers/processes.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

const SDK = pathToFileURL(join(ROOT, 'dist/runtime/sdk/index.js')).href;

/** A function module as a developer would write it (plain .js, as tsc emits it). */
function moduleSource(name: string, version: number | string): string {
  return `import { defineFunction } from '${SDK}';
export default defineFunction({
  name: '${name}',
  description: 'v${version}',
  handler: async (_input, ctx) => {
    await new Promise((r) => setTimeout(r, Number(ctx.config.sleep_ms ?? 0)));
    return { version: ${JSON.stringify(version)} };
  },
});
`;
}

/**
 * Dev mode (`npm run dev` / `--dev`): the executor watches the compiled
 * function directories and swaps in new code for new runs without a restart;
 * runs in flight finish on the code they started with.
 */
describe('dev mode: hot reload of functions', () => {
  let t: TestSystem;
  let dir: string;
  const logs: { level: number; msg: string; err?: { message?: string }; generation?: number }[] = [];
  const run = async (workflow: string, input: unknown = {}) =>
    (await api(t.url, 'POST', '/api/v1/execute', { workflow_id: workflow, input_data: input, wait: true, wait_timeout: '20s' })).body;
  const described = async (name: string) => {
    const r = await api(t.url, 'GET', '/api/v1/functions');
    return r.body.functions.find((f: { name: string }) => f.name === name)?.description as string | undefined;
  };
  const write = (file: string, text: string) => writeFileSync(join(dir, file), text);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wf-hot-'));
    write('hot.js', moduleSource('hot', 1));
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
        done();
      },
    });
    t = await startTestSystem({
      dev: true,
      set: [`executor.function_dirs=[steps, ${dir}]`, 'executor.max_retries=0'],
      log: pino({ level: 'info' }, sink),
    });
    const workflows: [string, unknown[]][] = [
      ['hot', [{ name: 'hot', type: 'hot' }]],
      // the second step starts after the reload: it still runs the code its run started with
      [
        'hot-slow',
        [
          { name: 'first', type: 'hot', config: { sleep_ms: 1500 } },
          { name: 'second', type: 'hot' },
        ],
      ],
    ];
    for (const [name, steps] of workflows) {
      const r = await api(t.url, 'POST', '/api/v1/workflows', { name, definition: { steps } });
      expect(r.status).toBe(201);
    }
  });
  afterAll(async () => {
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs new code for new runs after a save, while a run in flight finishes on the old code', async () => {
    expect((await run('hot')).output).toEqual({ version: 1 });

    const slow = await api(t.url, 'POST', '/api/v1/execute', { workflow_id: 'hot-slow' });
    const runId = slow.body.run_id as string;
    await waitFor(
      async () => (await api(t.url, 'GET', `/api/v1/executions/${runId}`)).body.steps?.[0]?.status === 'running',
      10_000,
      'the slow step to start',
    );

    write('hot.js', moduleSource('hot', 2));
    await waitFor(async () => (await described('hot')) === 'v2', 10_000, 'the reload');
    expect((await run('hot')).output).toEqual({ version: 2 });

    const old = await waitFor(
      async () => {
        const r = await api(t.url, 'GET', `/api/v1/executions/${runId}`);
        return r.body.status === 'completed' && r.body;
      },
      10_000,
      'the slow run',
    );
    expect(old.steps.map((s: { output: unknown }) => s.output)).toEqual([{ version: 1 }, { version: 1 }]);
    // the first generation's pools close once its last run has ended
    await waitFor(
      async () => logs.some((l) => l.msg === 'functions generation retired' && l.generation === 0),
      10_000,
      'the old generation to retire',
    );
  });

  it('picks up a new function file: a workflow using it can be registered and run', async () => {
    const before = await api(t.url, 'POST', '/api/v1/workflows', { name: 'fresh', definition: { steps: [{ name: 'f', type: 'fresh' }] } });
    expect(before.status).toBe(400);
    expect(before.body.error.code).toBe('E_WORKFLOW_INVALID');

    write('fresh.js', moduleSource('fresh', 'new'));
    await waitFor(async () => (await described('fresh')) === 'vnew', 10_000, 'the new function');
    const after = await api(t.url, 'POST', '/api/v1/workflows', { name: 'fresh', definition: { steps: [{ name: 'f', type: 'fresh' }] } });
    expect(after.status).toBe(201);
    expect((await run('fresh')).output).toEqual({ version: 'new' });
  });

  it('reports a module that fails to load and keeps running the previous code', async () => {
    const errorsBefore = logs.filter((l) => l.level >= 50).length;
    write('hot.js', `${moduleSource('hot', 3)}\n}}} not javascript`);
    const reported = await waitFor(
      async () =>
        logs
          .filter((l) => l.level >= 50)
          .slice(errorsBefore)
          .find((l) => /not reloaded/.test(l.msg)),
      10_000,
      'the load error',
    );
    expect(reported.err?.message).toMatch(/hot\.js/);
    expect((await run('hot')).output).toEqual({ version: 2 });
    expect(await described('hot')).toBe('v2');

    // fixed: reloads again
    write('hot.js', moduleSource('hot', 4));
    await waitFor(async () => (await described('hot')) === 'v4', 10_000, 'the reload after the fix');
    expect((await run('hot')).output).toEqual({ version: 4 });
  });
});

/** The child processes of `pid` with their command lines (Linux /proc). */
function childrenOf(pid: number): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(d), cmd: readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ') });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('main.js --dev (what `npm run dev` starts)', () => {
  it('compiles with tsc --watch beside the system, and stops the compiler when it stops', async () => {
    const iso = isolatedSettings();
    const set = [...iso.set, 'api.address=127.0.0.1:0', 'metrics.port=0'];
    const config = loadConfig({ file: `${ROOT}config/default.yaml`, set });
    const proc = startRuntimeProcess('all', set, {}, ['--dev']);
    try {
      const port = await proc.port; // after tsc's first compilation
      expect((await api(`http://127.0.0.1:${port}`, 'GET', '/health')).status).toBe(200);
      const tsc = childrenOf(proc.child.pid!).find((c) => /typescript\/bin\/tsc .*--watch/.test(c.cmd));
      expect(tsc).toBeDefined();
      await proc.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      await waitFor(async () => !alive(tsc!.pid), 5000, 'tsc --watch to stop');
    } finally {
      await proc.kill('SIGKILL');
      await cleanup(config);
    }
  }, 120_000);
});

/**
 * Dev mode compiles with --noEmitOnError: a function with a TypeScript error is not written to
 * dist/, so the executor never loads it and runs keep the previous code. A small project of its
 * own (a tsconfig and one function), compiled by the same watcher `npm run dev` starts.
 */
describe('dev mode: a TypeScript error is not compiled', () => {
  it('keeps the previous compiled code, says why, and compiles the fix', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wf-tsc-'));
    const compiled = join(dir, 'dist', 'functions', 'f.js');
    const warnings: string[] = [];
    const log = pino(
      { level: 'warn' },
      new Writable({
        write(chunk, _enc, done) {
          warnings.push(String(chunk));
          done();
        },
      }),
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          outDir: 'dist',
          rootDir: '.',
          strict: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          skipLibCheck: true,
        },
        include: ['functions/*.ts'],
      }),
    );
    mkdirSync(join(dir, 'functions'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const source = (v: string) => `export const version: string = ${v};\n`;
    writeFileSync(join(dir, 'functions', 'f.ts'), source('"one"'));
    const watch = startCompilerWatch(dir, log);
    try {
      await watch.ready;
      expect(readFileSync(compiled, 'utf8')).toContain('"one"');
      writeFileSync(join(dir, 'functions', 'f.ts'), source('42')); // a number is no string
      await waitFor(async () => warnings.some((w) => /TypeScript errors/.test(w)), 20_000, 'tsc to report the error');
      expect(readFileSync(compiled, 'utf8')).toContain('"one"'); // not overwritten
      writeFileSync(join(dir, 'functions', 'f.ts'), source('"two"'));
      await waitFor(async () => readFileSync(compiled, 'utf8').includes('"two"'), 20_000, 'the fix to compile');
    } finally {
      watch.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
