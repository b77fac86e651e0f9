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
  const writeYaml = (name: string, lines: string[]) => {
    const file = join(dir, name);
    writeFileSync(file, lines.join('\n') + '\n');
    return file;
  };
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
    const file = writeYaml('greet.yaml', [
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
    ]);
    const applied = await wf('workflows', 'apply', file);
    expect(applied.stdout).toMatch(/registered cli-greet 1\.0\.0/);
    const list = await wf('workflows', 'list');
    expect(list.stdout).toMatch(/cli-greet.*1\.0\.0.*active/);
    const json = JSON.parse((await wf('--json', 'workflows', 'show', 'cli-greet')).stdout);
    expect(json.definition.steps.map((s: { name: string }) => s.name)).toEqual(['hello', 'nap', 'bye']);
    // for the terminal and tail tests: a run that waits until it is signalled
    await wf(
      'workflows',
      'apply',
      writeYaml('approve.yaml', [
        'name: cli-approve',
        'definition:',
        '  steps:',
        '    - name: hello',
        '      type: echo',
        '    - name: approval',
        '      type: wait_for_signal',
        '      config: { signal: approved }',
        '    - name: bye',
        '      type: transform',
        '      config: { template: { done: true, by: "{{ steps.approval.who }}" } }',
      ]),
    );
  });

  it.runIf(hasTmux)('run --wait in a real terminal shows each step as it goes, then the output', async () => {
    // cli-approve (applied above) waits for a signal the test sends once the waiting step is on screen:
    // no race with a timer
    const out = join(dir, 'done');
    const cmd = `${process.execPath} ${join(ROOT, 'bin/wf.js')} --url ${t.url} run cli-approve --input '{"who":"ana"}' --wait; echo "exit=$?" > ${out}; sleep 30`;
    execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '40', cmd]);
    // not execFileSync: the system under test runs in this process, and a blocked loop would starve it
    const screen = async () => (await run('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' })).stdout;
    // live: the wait shows as waiting, with what it waits for
    await waitFor(async () => /approval waiting signal "approved"/.test(await screen()), 30_000, 'the waiting step on screen', 200);
    const first = await screen();
    expect(first).toContain('hello completed');
    expect(first).not.toContain('bye');
    const runId = /cli-approve 1\.0\.0: run ([0-9a-f-]{36})/.exec(first)?.[1];
    expect(runId).toBeDefined();
    const sent = await wf('runs', 'signal', runId!, 'approved', '--data', '{"who":"bo"}');
    expect(sent.stdout).toMatch(/approved delivered/);
    await waitFor(async () => /exit=\d/.test(safeRead(out)), 30_000, 'the command to end');
    const final = await screen();
    expect(safeRead(out)).toMatch(/exit=0/);
    for (const step of ['hello completed', 'approval completed', 'bye completed']) expect(final).toContain(step);
    expect(final).toMatch(/completed in/);
    expect(final).toContain('"by": "bo"');
  });

  it('tails a run already going, sends signals and events, and keeps piped output plain', async () => {
    const started = JSON.parse((await wf('--json', 'run', 'cli-approve')).stdout);
    const tail = wf('runs', 'tail', started.run_id);
    await waitFor(
      async () => JSON.parse((await wf('--json', 'runs', 'show', started.run_id)).stdout).status === 'waiting',
      15_000,
      'the run to wait',
    );
    await wf('runs', 'signal', started.run_id, 'approved');
    const tailed = (await tail).stdout;
    expect(tailed).toMatch(new RegExp(`cli-approve 1\\.0\\.0: run ${started.run_id}`));
    expect(tailed).toContain('approval completed');
    expect(tailed).toMatch(/completed in/);
    expect(tailed).not.toContain('\u001b['); // no colour codes into a pipe, even where CI is set
    const ended = await wf('runs', 'signal', started.run_id, 'approved').then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(ended?.stderr).toMatch(/^wf: E_RUN_FINAL: /);
    const id = `cli-${process.pid}-${Date.now()}`;
    const sent = JSON.parse((await wf('--json', 'events', 'send', 'cli.test', '--data', '{"n":1}', '--id', id)).stdout);
    expect(sent.duplicate).toBe(false);
    expect((await wf('events', 'send', 'cli.test', '--id', id)).stdout).toMatch(new RegExp(`^${sent.event_id} \\(duplicate\\)`));
    const bad = await wf('events', 'send', 'cli.test', '--data', '{oops').then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(bad?.stderr).toMatch(/^wf: --data is not JSON: /);
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
