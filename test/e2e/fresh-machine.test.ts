import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/env.js';

/**
 * Zero setup, for real: the README's `npm start` in a network namespace of its own, whose
 * loopback has nothing listening (no PostgreSQL, NATS or Redis), on a copy of the project as
 * a fresh clone has it (tracked files, no dist/, no .data/; node_modules linked, since the
 * namespace has no network for `npm ci`). It must come up in embedded mode, serve the API,
 * stop cleanly on Ctrl-C leaving no process behind, and find its runs again after a restart.
 * Needs root (ip netns); skipped elsewhere, with the reason printed.
 */
const root = process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0;
if (!root) console.warn('fresh-machine test skipped: it needs root and `ip netns` (it runs in CI)');

describe.runIf(root)('a fresh machine: npm start with nothing installed', () => {
  const ns = `wf-fresh-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'wf-fresh-'));
  let app: ChildProcess | null = null;
  let stderr = '';
  let stdout = '';

  /** Runs a small script inside the namespace (the only place 127.0.0.1:8080 is this runtime). */
  const inside = (script: string): unknown => {
    const file = join(dir, `probe-${Date.now()}.mjs`);
    writeFileSync(file, script);
    const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, file], { encoding: 'utf8', timeout: 30_000 });
    return JSON.parse(out.trim().split('\n').at(-1)!);
  };
  const call = (method: string, path: string, body?: unknown) =>
    inside(`
      const res = await fetch('http://127.0.0.1:8080${path}', {
        method: ${JSON.stringify(method)},
        headers: { 'content-type': 'application/json' },
        body: ${body === undefined ? 'undefined' : JSON.stringify(JSON.stringify(body))},
      });
      console.log(JSON.stringify({ status: res.status, body: await res.json() }));
    `) as { status: number; body: any };

  /** `npm start` as a user types it, in its own process group (Ctrl-C goes to the group). */
  const start = async (): Promise<void> => {
    stderr = '';
    stdout = '';
    app = spawn('ip', ['netns', 'exec', ns, 'npm', 'start'], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    app.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    app.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const t0 = Date.now();
    while (!/ready: embedded mode/.test(stderr)) {
      if (app.exitCode !== null) throw new Error(`npm start exited with ${app.exitCode}:\n${stderr}`);
      if (Date.now() - t0 > 90_000) throw new Error(`npm start did not come up within 90 s:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  /** Ctrl-C: SIGINT to the whole process group, as a terminal sends it. Resolves the runtime's last log line. */
  const ctrlC = async (): Promise<string> => {
    const p = app!;
    // 'close', not 'exit': the exit can come before the last output is read from the pipe
    const exited = new Promise<void>((r) => p.once('close', () => r()));
    process.kill(-p.pid!, 'SIGINT');
    const done = await Promise.race([exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 30_000))]);
    app = null;
    if (!done) throw new Error(`npm start did not stop within 30 s of Ctrl-C:\n${stderr}`);
    const lines = stdout.trim().split('\n');
    return (JSON.parse(lines.at(-1)!) as { msg: string }).msg;
  };
  /** Processes whose command line names the copy (the runtime, the embedded PostgreSQL, its guard). */
  const leftovers = (): string[] =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .flatMap((p) => {
        try {
          const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ');
          return cmd.includes(dir) ? [`${p}: ${cmd}`] : [];
        } catch {
          return [];
        }
      });

  beforeAll(() => {
    // the copy a fresh clone would be: what git tracks (plus new files not ignored), as they are now;
    // without git (an unpacked archive), everything but what the build and the runtime make
    const files = existsSync(join(ROOT, '.git'))
      ? execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean)
      : readdirSync(ROOT, { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => relative(ROOT, join(e.parentPath, e.name)))
          .filter((f) => !/^(node_modules|dist|\.data|\.git)(\/|$)/.test(f));
    for (const f of files) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      try {
        copyFileSync(join(ROOT, f), join(dir, f));
      } catch {
        /* deleted in the working tree */
      }
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    chmodSync(dir, 0o755); // the embedded server runs as the postgres user and must reach .data/
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  });
  afterAll(() => {
    if (app?.pid) process.kill(-app.pid, 'SIGKILL');
    for (const line of leftovers()) process.kill(Number(line.split(':')[0]), 'SIGKILL');
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('comes up in embedded mode, serves the API, stops on Ctrl-C leaving nothing, and finds its run after a restart', async () => {
    await start();
    expect(stderr).toMatch(/ready: embedded mode \(nothing answers on 127\.0\.0\.1:5432, nats:\/\/127\.0\.0\.1:4222, 127\.0\.0\.1:6379\)/);
    expect(stderr).toContain(`data in ${join(dir, '.data', 'postgres')}`);
    expect(stderr).toContain('queue: PostgreSQL · cache: in-process · API open (no API_KEYS) · open http://127.0.0.1:8080');

    expect(call('GET', '/health').status).toBe(200);
    const wf = call('POST', '/api/v1/workflows', {
      name: 'Test Workflow',
      definition: { steps: [{ name: 'echo-step', type: 'echo', config: { message: 'Hello POC' } }] },
      version: '1.0.0',
    });
    expect(wf.status).toBe(201);
    const run = call('POST', '/api/v1/execute', { workflow_id: 'Test Workflow', input_data: { test: 'value' }, wait: true });
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({ status: 'completed', output: { message: 'Hello POC', input: { test: 'value' } } });

    // the runtime stopped cleanly (npm itself re-raises the SIGINT, as it does in a terminal)
    expect(await ctrlC()).toBe('stopped');
    expect(stdout).toContain('"msg":"embedded PostgreSQL stopped"');
    expect(leftovers()).toEqual([]);

    await start();
    const again = call('GET', `/api/v1/executions/${run.body.run_id}`);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'completed', steps: [{ name: 'echo-step', status: 'completed' }] });
    expect(call('GET', '/api/v1/workflows').body.workflows.map((w: { name: string }) => w.name)).toEqual(['Test Workflow']);
    expect(await ctrlC()).toBe('stopped');
    expect(leftovers()).toEqual([]);
  }, 240_000);
});
