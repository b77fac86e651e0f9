#!/usr/bin/env node
/**
 * Benchmark harness: starts the runtime (or targets --url), drives open-model, evenly spaced
 * load at POST /api/v1/execute (load.ts), then reconciles every accepted run_id against
 * Postgres and writes bench/results/<timestamp>.{md,svg} and latest.md, with the raw JSON
 * (and the runtime's log) in bench/results/raw/, which git ignores.
 * `node dist/bench/run.js --help` lists the options; bench/README.md explains the figures.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuWindows, stageReport, timeline, totalsOf } from './analyze.js';
import { startTrivialServer } from './baseline.js';
import { checkSteps, countRunsOf, dbStats, drain, fetchRuns, openDb, type Sql } from './db.js';
import { driveStage, LoadClient, startStage, type DriveOptions } from './load.js';
import { parseOptions, USAGE, type BenchOptions, type Stage } from './options.js';
import { findRuntimePid, ProcSampler, usageBetween } from './procstat.js';
import { Recorder, type StageRecord } from './recorder.js';
import {
  renderMarkdown,
  renderTimelineSvg,
  type BaselineReport,
  type BenchResult,
  type FindMaxReport,
  type Reconciliation,
} from './report.js';
import { summarize } from './stats.js';
import {
  BENCH_SETS,
  freePort,
  registerNeighbour,
  registerWorkflows,
  startNeighbour,
  resetBenchResources,
  startRuntime,
  waitReady,
  warmUp,
  type BenchWorkflow,
  type RuntimeChild,
} from './system.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function main(): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const say = (line: string) => {
    if (!opts.quiet) console.log(line);
  };
  const outDir = opts.outDir ? resolve(opts.outDir) : join(ROOT, 'bench/results');
  // raw JSON and runtime logs: kept for the curious, never committed (bench/results/.gitignore)
  const rawDir = join(outDir, 'raw');
  mkdirSync(rawDir, { recursive: true });
  const startedAt = new Date();
  const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '-') + 'Z';

  // Ctrl-C once: stop sending, then drain and report what there is. Twice: leave now.
  const abort = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: string) => {
    if (++interrupts > 1) {
      console.error(`${sig} again: exiting without a report`);
      process.exit(130);
    }
    console.error(`${sig}: stopping the load; draining and writing what was measured (again to quit)`);
    abort.abort();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  // everything is bounded: the planned load, the drains, and a margin for start and stop
  const plannedS = opts.findMax
    ? 2 * (Math.floor((opts.fmMax - opts.fmStart) / opts.fmStep) + 1) * (opts.fmStageS + opts.settleS + opts.timeoutS + 5)
    : (opts.baseline ? 2 : 1) * (opts.stages.reduce((n, s) => n + s.durationS, 0) + opts.timeoutS + 5);
  const deadline = setTimeout(
    () => {
      console.error(`the bench ran past its time bound (${plannedS + opts.drainS + 900} s); exiting`);
      process.exit(3); // the exit hook in system.ts kills the child runtime
    },
    (plannedS + opts.drainS + 900) * 1000,
  );
  deadline.unref();

  let child: RuntimeChild | null = null;
  let sql: Sql | null = null;
  let client: LoadClient | null = null;
  const files: Record<string, string> = {};
  try {
    let url: string;
    if (opts.url) {
      url = opts.url;
      await waitReady(url, 15_000);
      say(`target ${url} (already running)`);
    } else {
      if (opts.fresh) {
        say(`resetting bench resources (database ${BENCH_SETS.database}, stream ${BENCH_SETS.stream}, redis ${BENCH_SETS.redisPrefix}*)`);
        await resetBenchResources();
      }
      const port = opts.port ?? (await freePort());
      files.runtime_log = `raw/${stamp}.runtime.log`;
      say(`starting the runtime on 127.0.0.1:${port} (log ${join(outDir, files.runtime_log)})`);
      child = await startRuntime({
        root: ROOT,
        port,
        mode: opts.mode,
        extraSets: opts.runtimeSets,
        logFile: join(outDir, files.runtime_log),
      });
      url = child.url;
      say(`runtime ready: pid ${child.pid}`);
    }
    const target = opts.db ?? child?.database ?? 'postgres://postgres@127.0.0.1:5432/workflow';
    const database = typeof target === 'string' ? target : `postgresql:///${target.database}?host=${target.host}`;
    const databaseName = typeof target === 'string' ? new URL(target).pathname.slice(1) || null : target.database;
    sql = openDb(target);

    const workflows = await registerWorkflows(url, stamp.replace(/[-:TZ]/g, '').slice(0, 14));
    say(
      `workflows: ${Object.values(workflows)
        .map((w) => `${w.name} (${w.id})`)
        .join(', ')}`,
    );
    const warmIds = await warmUp(
      url,
      Object.values(workflows).map((w) => w.id),
      20,
    );
    const warm = await drain(sql, warmIds, 15_000);
    if (warm.pending.length) say(`warning: ${warm.pending.length} of ${warmIds.length} warm-up runs not final after 15 s`);
    const baseline = opts.baseline && !abort.signal.aborted ? await runBaseline(opts, say, abort.signal) : null;
    const pg0 = await dbStats(sql).catch(() => null);

    const rec = new Recorder();
    const found = child || opts.runtimePids.length ? null : await findRuntimePid(Number(new URL(url).port) || 80);
    const runtimePids = child ? [child.pid] : opts.runtimePids.length ? opts.runtimePids : found !== null ? [found] : [];
    const sampler = new ProcSampler(() => rec.now(), runtimePids, databaseName);
    await sampler.start();
    rec.startLoopMonitor();
    client = new LoadClient(url, opts.maxConnections, () => rec.now());

    const drive: DriveOptions = {
      client,
      path: '/api/v1/execute',
      body: executeBody(workflows.one.id),
      timeoutS: opts.timeoutS,
      signal: abort.signal,
      progress: opts.quiet ? undefined : say,
    };

    let findMax: FindMaxReport[] | null = null;
    if (opts.findMax) {
      findMax = [];
      for (const kind of ['one', 'three'] as const) {
        if (abort.signal.aborted) break;
        findMax.push(await runFindMax(rec, sql, workflows[kind], drive, opts, say, abort.signal));
      }
    } else {
      const total = opts.stages.reduce((n, s) => n + s.durationS, 0);
      say(`load: ${opts.profile}, ${opts.stages.length} stages, ${total} s, ${opts.workflow}-step workflow`);
      const finished: Promise<void>[] = [];
      const neighbourId = opts.neighbour
        ? await registerNeighbour(url, opts.neighbour.mode, stamp.replace(/[-:TZ]/g, '').slice(0, 14))
        : null;
      let startMs = rec.now();
      for (const [i, stage] of opts.stages.entries()) {
        if (abort.signal.aborted) break;
        // --neighbour: every second stage runs beside a misbehaving function, the others are the reference
        const noisy = opts.neighbour && neighbourId && i % 2 === 1 ? startNeighbour(url, neighbourId, opts.neighbour.rate) : null;
        const labelled = noisy ? { ...stage, label: `${stage.label} + ${opts.neighbour!.mode} ${opts.neighbour!.rate}/s` } : stage;
        const st = rec.addStage(labelled, opts.workflow);
        const running = startStage(rec, st, labelled, { ...drive, body: executeBody(workflows[opts.workflow].id), startMs });
        finished.push(running.finished.then(() => say(stageLine(st))));
        await running.scheduled;
        // the next stage starts where this one's schedule ended, not when the timer fired
        startMs = Math.min(rec.now(), startMs + stage.durationS * 1000);
        if (noisy) say(`neighbour: ${noisy.stop()} ${opts.neighbour!.mode} runs started during stage ${i + 1}`);
      }
      await Promise.all(finished);
    }
    await client.close();
    client = null;
    const loadEndMs = rec.now();
    const runtimeDied = child?.exited ? `the runtime exited during the load (see ${files.runtime_log})` : null;
    if (runtimeDied) console.error(runtimeDied);
    const lag = rec.stopLoopMonitor();

    // drain: every accepted run final, or the time is up
    const ids = rec.allRunIds();
    say(`draining: waiting up to ${opts.drainS} s for ${ids.length} accepted runs to be final`);
    const drained = await drain(sql, ids, opts.drainS * 1000);
    const drainEndMs = rec.now();
    await sampler.stop();

    say('reconciling against Postgres');
    const runs = await fetchRuns(sql, ids);
    const windows = cpuWindows(rec.stages, runs, rec.t0);
    const reports = rec.stages.map((st, i) => stageReport(st, runs, sampler.samples, rec.t0, windows[i]));
    const totals = opts.findMax ? null : totalsOf(rec.stages, reports, runs, sampler.samples, rec.t0, true);
    const stepsPerRun = new Map<string, number>();
    for (const st of rec.stages) for (const id of st.runIds) stepsPerRun.set(id, workflows[st.workflow].steps);
    const completedIds = [...runs.values()].filter((r) => r.status === 'completed').map((r) => r.id);
    const steps = await checkSteps(sql, completedIds, stepsPerRun);
    const rowsOfBench = await countRunsOf(
      sql,
      Object.values(workflows).map((w) => w.id),
    );
    const pg1 = await dbStats(sql).catch(() => null);
    const reconciliation = reconcile(
      ids,
      runs,
      drained.pending,
      steps,
      rowsOfBench - warmIds.length,
      drained.waitedMs,
      pg0,
      pg1,
      child ? scanRuntimeLog(join(outDir, files.runtime_log)) : null,
      files.runtime_log,
    );
    if (runtimeDied) {
      reconciliation.problems.unshift(runtimeDied);
      reconciliation.ok = false;
    }

    // an empty runtime log (the usual case at LOG_LEVEL=warn) is removed after the stop
    if (files.runtime_log && statSync(join(outDir, files.runtime_log)).size === 0) {
      delete files.runtime_log;
      if (reconciliation.runtime_log) reconciliation.runtime_log.file = '(empty, removed)';
    }
    files.json = `raw/${stamp}.json`;
    files.md = `${stamp}.md`;
    files.svg = `${stamp}.svg`;
    const httpFailedPct =
      totals && totals.responses + totals.errors > 0
        ? Math.round((10000 * (totals.non2xx + totals.errors)) / (totals.responses + totals.errors)) / 100
        : null;
    const result: BenchResult = {
      version: 1,
      started_at: startedAt.toISOString(),
      finished_at: new Date().toISOString(),
      profile: opts.profile,
      mode: child ? 'child' : 'url',
      runtime_mode: child ? opts.mode : null,
      url,
      database: maskPassword(database),
      git: gitInfo(),
      machine: {
        cpus: cpus().length,
        cpu_model: cpus()[0]?.model.trim() ?? '?',
        mem_gb: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        platform: process.platform,
      },
      options: { ...opts, db: opts.db ? maskPassword(opts.db) : null },
      workflows,
      stages: reports,
      totals,
      thresholds: totals
        ? {
            http_req_failed_pct: httpFailedPct,
            http_p95_ms: totals.http_ms.p95,
            p95_bound_ms: opts.p95BoundMs,
            pass: (httpFailedPct ?? 100) < 1 && (totals.http_ms.p95 ?? Infinity) < opts.p95BoundMs,
          }
        : null,
      find_max: findMax ? { p95_bound_ms: opts.p95BoundMs, results: findMax } : null,
      reconciliation,
      resources: {
        load: usageBetween(sampler.samples, rec.stages[0]?.startMs ?? 0, loadEndMs),
        load_and_drain: usageBetween(sampler.samples, rec.stages[0]?.startMs ?? 0, drainEndMs),
        sampled_runtime_pids: runtimePids,
      },
      generator: { loop_lag_p99_ms: lag.p99, loop_lag_max_ms: lag.max, max_connections: opts.maxConnections, timeout_s: opts.timeoutS },
      baseline,
      timeline: timeline(rec, runs, sampler.samples),
      files,
    };
    // a long run's chart can be large: only a small one goes beside the summary (and into git)
    const svg = renderTimelineSvg(result);
    if (Buffer.byteLength(svg) > SVG_MAX_BYTES) files.svg = `raw/${stamp}.svg`;
    const md = renderMarkdown(result);
    writeFileSync(join(outDir, files.svg), svg);
    writeFileSync(join(outDir, files.md), md);
    writeFileSync(join(outDir, files.json), JSON.stringify(result, null, 1));
    copyFileSync(join(outDir, files.md), join(outDir, 'latest.md'));
    console.log(`\n${md}`);
    console.log(`wrote ${[files.json, files.md, files.svg, 'latest.md'].map((f) => join(basename(outDir), f)).join(', ')}`);
    return reconciliation.ok ? 0 : 1;
  } finally {
    await client?.close();
    await sql?.end({ timeout: 5 }).catch(() => undefined);
    if (child) {
      say('stopping the runtime');
      const code = await child.stop();
      if (code !== 0) console.error(`the runtime exited with code ${code}`);
      const log = join(rawDir, `${stamp}.runtime.log`);
      if (existsSync(log) && statSync(log).size === 0) unlinkSync(log); // LOG_LEVEL=warn: usually nothing to keep
    }
  }
}

/** Steps the rate up until a step fails; reports the highest rate that passed. */
async function runFindMax(
  rec: Recorder,
  sql: Sql,
  wf: BenchWorkflow,
  drive: DriveOptions,
  opts: BenchOptions,
  say: (l: string) => void,
  signal: AbortSignal,
): Promise<FindMaxReport> {
  const report: FindMaxReport = { workflow: wf.kind, steps: [], max_sustained_rps: null, stopped_by: `reached --fm-max ${opts.fmMax}` };
  say(
    `find-max, ${wf.kind}-step workflow: from ${opts.fmStart}/s in steps of ${opts.fmStep}/s, ${opts.fmStageS} s each, p95 bound ${opts.p95BoundMs} ms`,
  );
  for (let rate = opts.fmStart; rate <= opts.fmMax; rate += opts.fmStep) {
    if (signal.aborted) {
      report.stopped_by = 'interrupted';
      break;
    }
    const stage: Stage = { label: `${wf.kind}-step ${rate}/s`, from: rate, to: rate, durationS: opts.fmStageS };
    const st = rec.addStage(stage, wf.kind);
    await driveStage(rec, st, stage, { ...drive, body: executeBody(wf.id) });
    say(stageLine(st));
    const settle = await drain(sql, st.runIds, opts.settleS * 1000);
    const p95 = summarize(st.latencies).p95;
    const windowEnd = st.startMs + st.durationS * 1000 + 1000;
    const achieved = st.okArrivals.filter((t) => t <= windowEnd).length / st.durationS;
    const success = st.planned ? (100 * st.ok) / st.planned : 0;
    const reasons: string[] = [];
    if (p95 === null || p95 > opts.p95BoundMs) reasons.push(`p95 ${p95?.toFixed(1) ?? '-'} ms > ${opts.p95BoundMs}`);
    if (success < 99) reasons.push(`2xx ${success.toFixed(2)}% < 99%`);
    if (achieved < 0.95 * rate) {
      const waited = st.connWaitMs.length;
      reasons.push(
        `achieved ${achieved.toFixed(1)}/s < 95% of ${rate}${
          waited > 0.01 * st.sent ? ` (${waited} requests waited for one of the ${opts.maxConnections} connections)` : ''
        }`,
      );
    }
    const pass = reasons.length === 0;
    report.steps.push({
      rate,
      stage: st.index,
      p95_ms: p95,
      success_pct: Math.round(success * 1000) / 1000,
      achieved_rps: Math.round(achieved * 10) / 10,
      drained: settle.pending.length === 0,
      settle_ms: settle.waitedMs,
      pass,
      reasons,
    });
    say(
      `  ${pass ? 'pass' : `fail (${reasons.join('; ')})`}; runs ${settle.pending.length ? `${settle.pending.length} not final` : 'all final'} after ${(settle.waitedMs / 1000).toFixed(1)} s`,
    );
    if (!pass) {
      report.stopped_by = `failed at ${rate}/s: ${reasons.join('; ')}`;
      break;
    }
    report.max_sustained_rps = rate;
  }
  return report;
}

/** A chart bigger than this stays in raw/ with the JSON instead of beside the summary. */
const SVG_MAX_BYTES = 60_000;

function executeBody(workflowId: string): string {
  return JSON.stringify({ workflow_id: workflowId, input_data: { test: 'load-test' } });
}

/**
 * --baseline: the same stages against a trivial node:http server (a child process answering
 * `{}`), driven by the same generator just before the system, for a floor to compare with.
 */
async function runBaseline(opts: BenchOptions, say: (l: string) => void, signal: AbortSignal): Promise<BaselineReport> {
  const server = await startTrivialServer(ROOT);
  say(`baseline: trivial node:http server ${server.url} (pid ${server.pid}), the same ${opts.stages.length} stages`);
  const rec = new Recorder();
  const sampler = new ProcSampler(() => rec.now(), [server.pid], null);
  const client = new LoadClient(server.url, opts.maxConnections, () => rec.now());
  try {
    await sampler.start();
    let startMs = rec.now();
    const finished: Promise<void>[] = [];
    for (const stage of opts.stages) {
      if (signal.aborted) break;
      const st = rec.addStage(stage, opts.workflow);
      const running = startStage(rec, st, stage, { client, path: '/', body: '{}', timeoutS: opts.timeoutS, signal, startMs });
      finished.push(running.finished.then(() => say(`baseline ${stageLine(st)}`)));
      await running.scheduled;
      startMs = Math.min(rec.now(), startMs + stage.durationS * 1000);
    }
    await Promise.all(finished);
    await sampler.stop();
    const none = new Map<string, never>();
    const stages = rec.stages.map((st) => stageReport(st, none, sampler.samples, rec.t0, null));
    return { url: server.url, pid: server.pid, stages, totals: totalsOf(rec.stages, stages, none, sampler.samples, rec.t0, false) };
  } finally {
    sampler.cancel();
    await client.close();
    await server.stop();
  }
}

function stageLine(st: StageRecord): string {
  const s = summarize(st.latencies);
  const lag = summarize(st.schedLagMs);
  const non2xx = Object.values(st.non2xx).reduce((n, c) => n + c, 0);
  const f = (x: number | null) => (x === null ? '-' : x.toFixed(1));
  return (
    `stage ${st.index + 1} ${st.label} (${st.workflow === 'one' || st.workflow === 'three' ? `${st.workflow}-step` : st.workflow}, ${st.durationS} s): planned ${st.planned}, 2xx ${st.ok}, non-2xx ${non2xx}, errors ${st.errors}; ` +
    `HTTP ms p50 ${f(s.p50)} p95 ${f(s.p95)} p99 ${f(s.p99)} max ${f(s.max)}; send lag p99 ${f(lag.p99)} max ${f(lag.max)}; generator ${st.generatorCores.toFixed(2)} cores`
  );
}

function reconcile(
  ids: string[],
  runs: Awaited<ReturnType<typeof fetchRuns>>,
  pending: string[],
  steps: Reconciliation['steps'],
  rowsOfBench: number,
  waitedMs: number,
  pg0: Awaited<ReturnType<typeof dbStats>>,
  pg1: Awaited<ReturnType<typeof dbStats>>,
  log: { error_lines: number; unique_violations: number } | null,
  logFile: string | undefined,
): Reconciliation {
  const unique = new Set(ids);
  let completed = 0;
  let failed = 0;
  let cancelled = 0;
  let notFinal = 0;
  let redelivered = 0;
  for (const r of runs.values()) {
    if (r.status === 'completed') completed++;
    else if (r.status === 'failed') failed++;
    else if (r.status === 'cancelled') cancelled++;
    else notFinal++;
    if ((r.deliveries ?? 1) > 1) redelivered++;
  }
  const missing = [...unique].filter((id) => !runs.has(id)).length;
  const lost = missing + notFinal;
  const problems: string[] = [];
  if (lost) problems.push(`${lost} accepted runs lost (${missing} missing, ${notFinal} not final; e.g. ${pending.slice(0, 3).join(', ')})`);
  if (failed) problems.push(`${failed} runs failed`);
  if (cancelled) problems.push(`${cancelled} runs cancelled`);
  if (unique.size !== ids.length) problems.push(`${ids.length - unique.size} run_ids were returned twice`);
  if (steps.duplicatedSteps) problems.push(`${steps.duplicatedSteps} duplicated step rows`);
  if (steps.runsWithWrongStepCount) problems.push(`${steps.runsWithWrongStepCount} completed runs with a wrong number of step rows`);
  if (steps.stepsNotCompleted) problems.push(`${steps.stepsNotCompleted} step rows of completed runs are not completed`);
  if (log?.unique_violations) problems.push(`${log.unique_violations} unique violations in the runtime log`);
  if (!steps.uniqueIndex) problems.push('no unique index on workflow_steps (instance_id, step_name)');
  return {
    accepted: ids.length,
    duplicate_run_ids: ids.length - unique.size,
    found: runs.size,
    missing,
    not_final: notFinal,
    lost,
    completed,
    failed,
    cancelled,
    redelivered_runs: redelivered,
    steps,
    unobserved_runs: Math.max(0, rowsOfBench - runs.size),
    drain_waited_ms: waitedMs,
    runtime_log: log && logFile ? { ...log, file: logFile } : null,
    pg_rollbacks: pg0 && pg1 ? pg1.xact_rollback - pg0.xact_rollback : null,
    pg_deadlocks: pg0 && pg1 ? pg1.deadlocks - pg0.deadlocks : null,
    ok: problems.filter((p) => !p.startsWith('no unique index')).length === 0,
    problems,
  };
}

/** Error-level lines and unique violations (SQLSTATE 23505) in the child runtime's pino log. */
function scanRuntimeLog(file: string): { error_lines: number; unique_violations: number } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { error_lines: 0, unique_violations: 0 };
  }
  let errorLines = 0;
  let unique = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const level = /"level":(\d+)/.exec(line)?.[1];
    if (level ? Number(level) >= 50 : /error/i.test(line)) errorLines++;
    if (/23505|duplicate key value/i.test(line)) unique++;
  }
  return { error_lines: errorLines, unique_violations: unique };
}

function maskPassword(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

function gitInfo(): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', 'runtime', 'steps', 'config'], {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench failed: ${(err as Error).stack ?? err}`);
    process.exit(3);
  },
);
