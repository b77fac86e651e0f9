import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, waitFor } from '../helpers/env.js';
import { startTestSystem, type TestSystem } from '../helpers/system.js';

const run = promisify(execFile);
const hasTmux = (() => {
  try {
    execFileSync('tmux', ['-V']);
    return true;
  } catch {
    return false;
  }
})();

/** The CLI (`bin/wf.js`) against a running system: through a real terminal (tmux) and as a script (--json). */
describe('wf, the CLI', () => {
  let t: TestSystem;
  const dir = mkdtempSync(join(tmpdir(), 'wf-cli-'));
  const session = `wfcli${process.pid}`;
  const wf = (...args: string[]) =>
    run(process.execPath, [join(ROOT, 'bin/wf.js'), '--url', t.url, ...args], { cwd: ROOT, timeout: 30_000 });
  beforeAll(async () => {
    t = await startTestSystem();
  });
  afterAll(async () => {
    if (hasTmux) spawnQuiet(['kill-session', '-t', session]);
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies a workflow from YAML, lists it, and shows it (tables for people, --json for scripts)', async () => {
    const file = join(dir, 'greet.yaml');
    writeFileSync(
      file,
      [
        'name: cli-greet',
        'definition:',
        '  steps:',
        '    - name: hello',
        '      type: echo',
        '    - name: nap',
        '      type: sleep',
        '      config: { duration: 3s }',
        '    - name: bye',
        '      type: transform',
        '      config: { template: { done: true } }',
        '',
      ].join('\n'),
    );
    const applied = await wf('workflows', 'apply', file);
    expect(applied.stdout).toMatch(/registered cli-greet 1\.0\.0/);
    const list = await wf('workflows', 'list');
    expect(list.stdout).toMatch(/cli-greet.*1\.0\.0.*active/);
    const json = JSON.parse((await wf('--json', 'workflows', 'show', 'cli-greet')).stdout);
    expect(json.definition.steps.map((s: { name: string }) => s.name)).toEqual(['hello', 'nap', 'bye']);
  });

  it.runIf(hasTmux)('run --wait in a real terminal shows each step as it goes, then the output', async () => {
    const out = join(dir, 'done');
    const cmd = `${process.execPath} ${join(ROOT, 'bin/wf.js')} --url ${t.url} run cli-greet --input '{"who":"ana"}' --wait; echo "exit=$?" > ${out}; sleep 30`;
    execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '40', cmd]);
    // not execFileSync: the system under test runs in this process, and a blocked loop would starve it
    const screen = async () => (await run('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' })).stdout;
    // live: the sleep shows as waiting while the run sleeps
    await waitFor(async () => /nap waiting/.test(await screen()), 15_000, 'the waiting step on screen', 100);
    await waitFor(async () => /exit=\d/.test(safeRead(out)), 20_000, 'the command to end');
    const final = await screen();
    expect(safeRead(out)).toMatch(/exit=0/);
    expect(final).toMatch(/cli-greet 1\.0\.0: run [0-9a-f-]{36}/);
    for (const step of ['hello completed', 'nap completed', 'bye completed']) expect(final).toContain(step);
    expect(final).toMatch(/completed in/);
    expect(final).toContain('"done": true');
  });

  it('lists and shows runs, cancels and retries, and says what is wrong in one line with exit 1', async () => {
    const started = JSON.parse((await wf('--json', 'run', 'cli-greet')).stdout);
    expect(started.status).toBe('queued');
    const list = JSON.parse((await wf('--json', 'runs', 'list', '--workflow', 'cli-greet')).stdout);
    expect(list.executions.map((e: { run_id: string }) => e.run_id)).toContain(started.run_id);
    const cancelled = await wf('runs', 'cancel', started.run_id);
    expect(cancelled.stdout).toMatch(/cancel/);
    await waitFor(
      async () => JSON.parse((await wf('--json', 'runs', 'show', started.run_id)).stdout).status === 'cancelled',
      10_000,
      'the run to be cancelled',
    );
    const retried = await wf('runs', 'retry', started.run_id);
    expect(retried.stdout).toMatch(/queued/);
    const shown = await waitFor(
      async () => {
        const r = await wf('runs', 'show', started.run_id);
        return /completed/.test(r.stdout.split('\n')[0]) ? r.stdout : null;
      },
      15_000,
      'the retried run to complete',
    );
    expect(shown).toMatch(/hello.*echo.*completed/);
    expect(shown).toContain('█');
    const bad = await wf('run', 'no-such-workflow').then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(bad?.code).toBe(1);
    expect(bad?.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad?.stderr).toMatch(/^wf: E_WORKFLOW_NOT_FOUND: /);
    const down = await run(process.execPath, [join(ROOT, 'bin/wf.js'), '--url', 'http://127.0.0.1:9', 'runs', 'list']).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(down?.code).toBe(1);
    expect(down?.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
  });
});

function safeRead(file: string): string {
  try {
    return execFileSync('cat', [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

function spawnQuiet(args: string[]): void {
  try {
    execFileSync('tmux', args, { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
}
