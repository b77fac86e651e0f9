/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any --
   the CLI renders the API's JSON answers (their shapes: GET /api/v1/openapi.json) */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import cliSpinners from 'cli-spinners';
import Table from 'cli-table3';
import { Command, Option } from 'commander';
import { createLogUpdate } from 'log-update';
import picocolors from 'picocolors';
import YAML from 'yaml';
import { sseReader } from '../api/sse.js'; // the file alone: api/index.js would load the HTTP server
import { RunDisplay, statusColours, type LiveStep } from './live.js';

/**
 * `wf`: the runtime from a terminal. It talks to the HTTP API only (`--url`/WF_URL,
 * `--api-key`/WF_API_KEY), prints tables for people and `--json` for scripts, and on an error
 * prints one readable line and exits 1. Arguments by commander, tables by cli-table3, colour by
 * picocolors (well kept, small, no dependencies of their own), YAML by the runtime's yaml. A run
 * followed at a terminal is a live display (live.ts) redrawn in place by log-update, with spinner
 * frames from cli-spinners: both from sindresorhus (the ones ora is built on), pure ESM, Node 20
 * (log-update 7; 8 wants Node 22). log-update redraws many lines and changes only those that
 * changed, and puts the cursor back on exit; ora draws one spinner line, not one per step.
 */
class CliError extends Error {}

/**
 * Colour only for a person at a terminal (or when FORCE_COLOR asks): picocolors on its own also
 * colours piped output whenever CI is set, and a script reading our lines wants them plain.
 */
const pc = picocolors.createColors(
  !process.env.NO_COLOR && (Boolean(process.env.FORCE_COLOR) || (process.stdout.isTTY === true && process.env.TERM !== 'dumb')),
);

interface Globals {
  url: string;
  apiKey?: string;
  json?: boolean;
}

const program = new Command('wf')
  .description('the workflow runtime from a terminal')
  .addOption(new Option('--url <url>', 'the API').env('WF_URL').default('http://127.0.0.1:8080'))
  .addOption(new Option('--api-key <key>', 'an API key').env('WF_API_KEY'))
  .option('--json', 'print JSON (for scripts)')
  .showHelpAfterError();

const g = (): Globals => program.opts<Globals>();

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const { url, apiKey } = g();
  let res: Response;
  try {
    res = await fetch(new URL(path, url), {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new CliError(
      `cannot reach ${url} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); start it with "wf start" or set --url / WF_URL`,
    );
  }
  const text = await res.text();
  let data: any = text;
  try {
    data = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (res.status >= 400) {
    const e = data?.error;
    throw new CliError(e ? `${e.code}: ${e.message}` : `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  return data;
}

const print = (data: unknown, human: () => void) => (g().json ? console.log(JSON.stringify(data, null, 2)) : human());
const ago = (iso: string | null) => (iso ? new Date(iso).toISOString().replace('T', ' ').slice(0, 19) : '');
const ms = (n: number | null | undefined) => (n === null || n === undefined ? '' : n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`);
const STATUS = statusColours(pc);
const status = (s: string) => (STATUS[s] ?? ((x: string) => x))(s);
const table = (head: string[], rows: string[][]) => {
  const t = new Table({ head, style: { head: ['bold'] } });
  t.push(...rows);
  console.log(t.toString());
};

program
  .command('start')
  .description('start the runtime here (every role in one process; as npm start)')
  .option('--embedded', 'force the embedded mode')
  .action((o: { embedded?: boolean }) => {
    const main = fileURLToPath(new URL('../main.js', import.meta.url));
    const child = spawn(process.execPath, [main, '--role', 'all', ...(o.embedded ? ['--embedded'] : [])], { stdio: 'inherit' });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
    child.on('exit', (code) => process.exit(code ?? 1));
  });

const workflows = program.command('workflows').description('registered workflows');
workflows
  .command('list')
  .option('--name <name>')
  .action(async (o: { name?: string }) => {
    const r = await call('GET', `/api/v1/workflows?limit=500${o.name ? `&name=${encodeURIComponent(o.name)}` : ''}`);
    print(r, () =>
      table(
        ['name', 'version', 'status', 'steps', 'id', 'created'],
        r.workflows.map((w: any) => [w.name, w.version, w.status, String(w.definition.steps?.length ?? ''), w.id, ago(w.created_at)]),
      ),
    );
  });
workflows
  .command('show <workflow>')
  .description('a workflow by id or name, with its definition')
  .action(async (ref: string) => {
    const w = await call('GET', `/api/v1/workflows/${encodeURIComponent(ref)}`);
    print(w, () => {
      console.log(`${pc.bold(w.name)} ${w.version} (${w.status}) ${pc.dim(w.id)}`);
      console.log(YAML.stringify(w.definition));
    });
  });
workflows
  .command('apply <file>')
  .description('register a workflow from a YAML or JSON file {name, definition, version?, description?}')
  .action(async (file: string) => {
    let body: unknown;
    try {
      body = YAML.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const w = await call('POST', '/api/v1/workflows', body);
    print(w, () => console.log(`registered ${pc.bold(w.name)} ${w.version} ${pc.dim(w.id)}`));
  });

program
  .command('functions')
  .description('step types and functions')
  .command('list')
  .action(async () => {
    const r = await call('GET', '/api/v1/functions');
    print(r, () =>
      table(
        ['name', 'kind', 'description'],
        r.functions.map((f: any) => [f.name, f.kind, f.description ?? '']),
      ),
    );
  });

/** A JSON argument given inline or as @file. */
function jsonArg(flag: string, text: string): unknown {
  try {
    return JSON.parse(text.startsWith('@') ? readFileSync(text.slice(1), 'utf8') : text);
  } catch (err) {
    throw new CliError(`${flag} is not JSON: ${(err as Error).message}`);
  }
}

/** Prints how a followed run ended; exit 1 unless it completed. */
function ended(end: any): void {
  print(end, () => {
    console.log(`${status(end.status)} in ${ms(end.duration_ms)}`);
    if (end.error) console.log(pc.red(`${end.error.code}: ${end.error.message}`));
    else console.log(JSON.stringify(end.output, null, 2));
  });
  if (end.status !== 'completed') process.exitCode = 1;
}

program
  .command('run <workflow>')
  .description('start a run; with --wait, follow its steps live until it ends')
  .option('--input <json>', 'the input: JSON, or @file', '{}')
  .option('--wait', 'follow it live and print its output')
  .action(async (workflow: string, o: { input: string; wait?: boolean }) => {
    const input = jsonArg('--input', o.input);
    const r = await call('POST', '/api/v1/execute', { workflow_id: workflow, input_data: input });
    if (!o.wait) return print(r, () => console.log(`${r.run_id} ${status(r.status)}`));
    if (!g().json) console.log(`${pc.bold(r.workflow_name)} ${r.workflow_version}: run ${r.run_id}`);
    ended(await follow(r.run_id, !g().json));
  });

/**
 * Follows a run's events (GET /executions/:id/events) to its end. At a terminal, a live display
 * redrawn in place (see live()); otherwise (a pipe, a log, TERM=dumb) one plain line per step
 * change, which scripts read.
 */
async function follow(runId: string, human: boolean): Promise<any> {
  const { url, apiKey } = g();
  const res = await fetch(new URL(`/api/v1/executions/${runId}/events`, url), {
    headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
  });
  if (res.status !== 200 || !res.body) throw new CliError(`cannot follow run ${runId}: HTTP ${res.status}`);
  const display = human && process.stdout.isTTY === true && process.env.TERM !== 'dumb' ? live(runId) : null;
  try {
    return await read(runId, res.body, display ?? lines(human));
  } finally {
    display?.stop();
  }
}

interface Follower {
  run(status: string | undefined): void;
  step(st: any): void;
}

/** One plain line per step change (for a pipe; and what a terminal showed before the live display). */
function lines(human: boolean): Follower {
  const seen = new Map<string, string>();
  const show = (st: any) => {
    const k = `${st.status}:${st.attempts}`;
    if (!human || seen.get(st.name) === k) return;
    seen.set(st.name, k);
    const mark =
      st.status === 'running'
        ? pc.cyan('…')
        : st.status === 'waiting'
          ? pc.magenta('⏸')
          : st.status === 'completed'
            ? pc.green('✔')
            : pc.red('✘');
    const extra =
      st.status === 'waiting' ? pc.dim(` ${st.waiting_for ?? ''}`) : st.duration_ms !== null ? pc.dim(` ${ms(st.duration_ms)}`) : '';
    console.log(`  ${mark} ${st.name} ${status(st.status)}${st.attempts > 1 ? ` (attempt ${st.attempts})` : ''}${extra}`);
  };
  return { run: () => {}, step: show };
}

/**
 * The live display: every step on its own line, redrawn in place on each event and spinner frame
 * (RunDisplay says what the lines are, bounded to the terminal's size). stop() leaves its last
 * frame on screen. Ctrl-C stops following, not the run: the cursor comes back, a line says the run
 * goes on, exit 130.
 */
function live(runId: string): Follower & { stop(): void } {
  const display = new RunDisplay();
  const out = createLogUpdate(process.stdout);
  const spinner = cliSpinners.dots;
  let tick = 0;
  let stopped = false;
  const draw = (frozen = false) =>
    out(
      display
        .lines({
          spinner: frozen ? '…' : spinner.frames[tick % spinner.frames.length],
          now: Date.now(),
          width: process.stdout.columns || 80,
          // the header above stays in view when it can; log-update clips (and redraws all) past rows - 1
          height: Math.max(1, (process.stdout.rows || 24) - 2),
          pc,
        })
        .join('\n'),
    );
  const timer = setInterval(() => {
    tick++;
    draw();
  }, spinner.interval);
  const stop = (frozen = false) => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    process.off('SIGINT', interrupted);
    draw(frozen);
    out.done(); // leaves the frame on screen and shows the cursor again
  };
  const interrupted = () => {
    stop(true);
    console.error(
      pc.yellow(`stopped following; run ${runId} goes on (follow it again: wf runs tail ${runId}; stop it: wf runs cancel ${runId})`),
    );
    process.exit(130);
  };
  process.on('SIGINT', interrupted);
  draw();
  return {
    // events only change the state; the spinner's timer draws it (every ~80 ms), so a snapshot
    // or an end with 10,000 map items costs one frame, not one per step
    run: (s) => display.run(s),
    step: (st: LiveStep) => display.step(st),
    stop: () => stop(),
  };
}

/** Reads the events stream to the run's end, telling `to` of each change; the final run. */
async function read(runId: string, body: AsyncIterable<Uint8Array>, to: Follower): Promise<any> {
  const decoder = new TextDecoder();
  const events = sseReader();
  for await (const chunk of body) {
    for (const { type, data } of events(decoder.decode(chunk, { stream: true }))) {
      const e = data as any;
      if (type === 'snapshot' || type === 'run' || type === 'end') to.run(e.status);
      if (type === 'snapshot') for (const st of e.steps ?? []) to.step(st);
      if (type === 'step') to.step(e);
      if (type === 'end') {
        for (const st of e.steps ?? []) to.step(st);
        return e;
      }
    }
  }
  throw new CliError(`the event stream of run ${runId} ended before the run did; see "wf runs show ${runId}"`);
}

const runs = program.command('runs').description('runs');
runs
  .command('list')
  .option('--status <status>')
  .option('--workflow <workflow>', 'id or name')
  .option('--limit <n>', 'how many', '20')
  .action(async (o: { status?: string; workflow?: string; limit: string }) => {
    const q = new URLSearchParams({
      limit: o.limit,
      ...(o.status ? { status: o.status } : {}),
      ...(o.workflow ? { workflow_id: o.workflow } : {}),
    });
    const r = await call('GET', `/api/v1/executions?${q}`);
    print(r, () =>
      table(
        ['run', 'workflow', 'status', 'accepted', 'duration'],
        r.executions.map((e: any) => [e.run_id, e.workflow_name ?? '', status(e.status), ago(e.accepted_at), ms(e.duration_ms)]),
      ),
    );
  });
runs
  .command('show <run>')
  .description('a run and the timeline of its steps')
  .action(async (id: string) => {
    const r = await call('GET', `/api/v1/executions/${encodeURIComponent(id)}`);
    print(r, () => {
      console.log(
        `${pc.bold(r.workflow_name ?? '')} ${r.workflow_version ?? ''} run ${r.run_id}: ${status(r.status)} ${ms(r.duration_ms)}`,
      );
      const t0 = Math.min(...r.steps.map((s: any) => Date.parse(s.started_at ?? r.started_at ?? r.accepted_at)));
      const t1 = Math.max(t0 + 1, ...r.steps.map((s: any) => Date.parse(s.completed_at ?? new Date().toISOString())));
      const bar = (s: any) => {
        const W = 30;
        const a = Math.min(W - 1, Math.round(((Date.parse(s.started_at ?? '') - t0) / (t1 - t0)) * W) || 0);
        const b = Math.max(a + 1, Math.round(((Date.parse(s.completed_at ?? new Date().toISOString()) - t0) / (t1 - t0)) * W));
        return ' '.repeat(a) + '█'.repeat(Math.min(W, b) - a);
      };
      table(
        ['step', 'type', 'status', 'attempts', 'duration', 'timeline'],
        r.steps.map((s: any) => [s.name, s.type, status(s.status), String(s.attempts), ms(s.duration_ms), bar(s)]),
      );
      if (r.error) console.log(pc.red(`${r.error.code}: ${r.error.message}`));
      else if (r.status === 'completed') console.log(JSON.stringify(r.output, null, 2));
    });
  });
runs
  .command('tail <run>')
  .description('follow a run live from where it is now until it ends (as run --wait)')
  .action(async (id: string) => {
    const r = await call('GET', `/api/v1/executions/${encodeURIComponent(id)}`);
    if (!g().json) console.log(`${pc.bold(r.workflow_name ?? '')} ${r.workflow_version ?? ''}: run ${r.run_id}`);
    ended(await follow(r.run_id, !g().json));
  });
runs
  .command('signal <run> <name>')
  .description('send a signal to a run (a wait_for_signal step waiting for it resumes)')
  .option('--data <json>', 'the signal data: a JSON object, or @file')
  .action(async (id: string, name: string, o: { data?: string }) => {
    const body = o.data === undefined ? undefined : jsonArg('--data', o.data);
    const r = await call('POST', `/api/v1/executions/${encodeURIComponent(id)}/signals/${encodeURIComponent(name)}`, body);
    print(r, () => console.log(`${r.run_id} ${r.signal} ${r.delivered ? 'delivered' : 'stored (no step waits for it yet)'}`));
  });
for (const action of ['cancel', 'retry'] as const) {
  runs
    .command(`${action} <run>`)
    .description(action === 'cancel' ? 'cancel a run (and its child runs)' : 'redrive a failed or cancelled run from where it failed')
    .action(async (id: string) => {
      const r = await call('POST', `/api/v1/executions/${encodeURIComponent(id)}/${action}`);
      print(r, () => console.log(`${r.run_id} ${status(r.status)}`));
    });
}

program
  .command('events')
  .description('events')
  .command('send <name>')
  .description('send an event: starts the workflows it triggers, resumes the wait_for_event steps it matches')
  .option('--data <json>', 'the event data: JSON, or @file')
  .option('--id <id>', 'an id: the same name and id is taken once')
  .action(async (name: string, o: { data?: string; id?: string }) => {
    const r = await call('POST', '/api/v1/events', {
      name,
      ...(o.data === undefined ? {} : { data: jsonArg('--data', o.data) }),
      ...(o.id ? { id: o.id } : {}),
    });
    print(r, () =>
      console.log(`${r.event_id}${r.duplicate ? ' (duplicate)' : ''}: started ${r.started.length} run(s), resumed ${r.resumed}`),
    );
  });

program.parseAsync().catch((err: Error) => {
  console.error(`wf: ${err instanceof CliError ? err.message : err.message || String(err)}`);
  process.exit(1);
});
