import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import picocolors from 'picocolors';
import { RunDisplay } from '../../runtime/cli/live.js';
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
  /**
   * `wf ARGS` in a real terminal (a tmux session of its own): its screen, read without blocking
   * the event loop (not execFileSync: the system under test runs in this process, and a blocked
   * loop would starve it), and its exit code once it ends (the pane stays open after).
   */
  const terminal = (name: string, args: string) => {
    const s = `${session}${name}`;
    const out = join(dir, `${name}.exit`);
    const cmd = `${process.execPath} ${join(ROOT, 'bin/wf.js')} --url ${t.url} ${args}; echo "exit=$?" > ${out}; sleep 30`;
    execFileSync('tmux', ['new-session', '-d', '-s', s, '-x', '160', '-y', '40', cmd]);
    sessions.push(s);
    return {
      session: s,
      screen: async () => (await run('tmux', ['capture-pane', '-p', '-t', s], { encoding: 'utf8' })).stdout,
      exited: async () => {
        await waitFor(async () => /exit=\d/.test(safeRead(out)), 30_000, `wf ${args} to end`);
        return Number(/exit=(\d+)/.exec(safeRead(out))![1]);
      },
    };
  };
  const sessions: string[] = [];
  beforeAll(async () => {
    t = await startTestSystem();
  });
  afterAll(async () => {
    if (hasTmux) for (const s of [session, ...sessions]) spawnQuiet(['kill-session', '-t', s]);
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
    // for the map test: 200 items, then a wait, so the screen can be read while it holds still
    await wf(
      'workflows',
      'apply',
      writeYaml('map.yaml', [
        'name: cli-map',
        'definition:',
        '  steps:',
        '    - name: pack',
        '      map:',
        '        items: "{{ input.items }}"',
        '        concurrency: 20',
        '        steps:',
        '          - name: label',
        '            type: transform',
        '            config: { template: { n: "{{ item }}" } }',
        '    - name: gate',
        '      type: wait_for_signal',
        '      config: { signal: go }',
      ]),
    );
  });

  it.runIf(hasTmux)('run --wait in a real terminal is a live display: a line per step, redrawn in place, then the output', async () => {
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
    expect(first).toMatch(/⏸ approval waiting signal "approved"/); // the pause mark
    expect(first).toMatch(/✔ hello completed \d+ ms/);
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
    // redrawn in place: the final state, one line per step (the waiting line became the completed one)
    expect(final.match(/approval (waiting|completed)/g)).toEqual(['approval completed']);
    expect(final).toMatch(/✔ approval completed .*\n.*✔ bye completed/);
    expect(final.indexOf('✔ bye completed')).toBeLessThan(final.indexOf('completed in'));
  });

  it.runIf(hasTmux)('folds a map of 200 items into one line in the terminal', async () => {
    const input = join(dir, 'items.json');
    writeFileSync(input, JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => i) }));
    const term = terminal('map', `run cli-map --input @${input} --wait`);
    await waitFor(async () => /gate waiting signal "go"/.test(await term.screen()), 30_000, 'the map done and the gate waiting', 200);
    const during = await term.screen();
    expect(during).toMatch(/✔ pack: 200\/200 completed/);
    expect(during).toMatch(/⏸ gate waiting signal "go"/);
    expect(during).not.toContain('pack['); // no line per item
    expect(during.trim().split('\n').length).toBeLessThan(6); // the header, pack, gate
    const runId = /cli-map 1\.0\.0: run ([0-9a-f-]{36})/.exec(during)![1];
    await wf('runs', 'signal', runId, 'go');
    expect(await term.exited()).toBe(0);
    const final = await term.screen();
    expect(final).toMatch(/✔ pack: 200\/200 completed \d/);
    expect(final).toMatch(/✔ gate completed/);
    expect(final).toMatch(/completed in/);
    expect(final).not.toContain('pack[');
  });

  it.runIf(hasTmux)('Ctrl-C stops following, not the run: the cursor comes back, exit 130', async () => {
    const term = terminal('int', 'run cli-approve --wait');
    await waitFor(async () => /approval waiting signal "approved"/.test(await term.screen()), 30_000, 'the waiting step', 200);
    const runId = /cli-approve 1\.0\.0: run ([0-9a-f-]{36})/.exec(await term.screen())![1];
    execFileSync('tmux', ['send-keys', '-t', term.session, 'C-c']);
    expect(await term.exited()).toBe(130);
    const screen = await term.screen();
    expect(screen).toContain(`run ${runId} goes on`);
    expect(screen).toMatch(/⏸ approval waiting signal "approved"/); // the last state stays on screen
    const cursor = await run('tmux', ['display-message', '-p', '-t', term.session, '#{cursor_flag}'], { encoding: 'utf8' });
    expect(cursor.stdout.trim()).toBe('1');
    expect(JSON.parse((await wf('--json', 'runs', 'show', runId)).stdout).status).toBe('waiting');
    await wf('runs', 'signal', runId, 'approved'); // it went on: let it end
    await waitFor(
      async () => JSON.parse((await wf('--json', 'runs', 'show', runId)).stdout).status === 'completed',
      15_000,
      'the run to end',
    );
  });

  it('keeps the live display within the terminal: a map is one line, then the earliest completed steps fold', () => {
    const pc = picocolors.createColors(false);
    const d = new RunDisplay();
    const frame = { spinner: '⠋', now: Date.parse('2026-01-01T00:00:10Z'), width: 60, height: 8, pc };
    expect(d.lines(frame)).toEqual(['  ⠋ run queued']);
    d.step({ name: 'pack', type: 'map', index: 0, status: 'running', logs: [{ msg: '200 items' }] });
    for (let i = 0; i < 200; i++) {
      const status = i < 150 ? 'completed' : i < 153 ? 'running' : i === 153 ? 'failed' : 'queued';
      if (status !== 'queued') d.step({ name: `pack[${i}]/label`, type: 'transform', index: 0, status, attempts: 1 });
    }
    expect(d.lines(frame)).toEqual(['  ⠋ pack: 150/200 completed, 3 running, 1 failed']);
    for (let i = 1; i <= 12; i++) d.step({ name: `s${i}`, index: i, status: 'completed', attempts: 1, duration_ms: 5 });
    d.step({ name: 'late', index: 13, status: 'running', attempts: 2, started_at: '2026-01-01T00:00:07Z' });
    d.step({ name: 'wait', index: 14, status: 'waiting', waiting_for: 'signal "x"'.repeat(10) });
    const lines = d.lines(frame);
    expect(lines).toHaveLength(8);
    expect(lines[0]).toBe('  ✔ 8 earlier steps completed');
    expect(lines[1]).toBe('  ⠋ pack: 150/200 completed, 3 running, 1 failed'); // not complete: never folded
    expect(lines).toContain('  ✔ s12 completed 5 ms');
    expect(lines).toContain('  ⠋ late running (attempt 2) 3.0 s');
    expect(lines[7]).toMatch(/^ {2}⏸ wait waiting signal "x"signal.*…$/);
    expect(Math.max(...lines.map((l) => [...l].length))).toBeLessThanOrEqual(60);
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
