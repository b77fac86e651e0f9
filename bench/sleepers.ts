import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { openDb } from './db.js';
import { ProcSampler, usageBetween } from './procstat.js';
import { percentile, round } from './stats.js';
import { BENCH_SETS, freePort, resetBenchResources, sleep, startRuntime } from './system.js';
import type { BenchMode } from './options.js';

/**
 * What durable sleeps cost: `--runs` runs of [sleep until T, echo] on an executor that may drive
 * only `--slots` runs at once. Reports how long the accepts took, the system's CPU and memory
 * while every run sleeps (the idle cost of sleepers), and at T how late the runs wake (from T
 * to the sleep step's end) and the CPU per woken run. Results go to `--out` (markdown).
 *
 *   npm run build && node dist/bench/sleepers.js --runs 10000 --mode services
 */
const { values: a } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    slots: { type: 'string', default: '50' },
    mode: { type: 'string', default: 'services' },
    'idle-window': { type: 'string', default: '10' },
    out: { type: 'string', default: 'bench/results/sleepers' },
  },
});
const RUNS = Number(a.runs);
const SLOTS = Number(a.slots);
const MODE = a.mode as BenchMode;
const IDLE_S = Number(a['idle-window']);
const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));

async function main(): Promise<void> {
  if (MODE !== 'embedded') await resetBenchResources();
  const port = await freePort();
  const outDir = resolve(ROOT, a.out);
  mkdirSync(join(outDir, 'raw'), { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19) + 'Z';
  const rt = await startRuntime({
    root: ROOT,
    port,
    mode: MODE,
    // the sleepers are not a backlog (their messages are acked), but the accepts come fast
    extraSets: [`executor.max_concurrent_workflows=${SLOTS}`, 'admission.max_queued=1000000', 'admission.max_event_loop_delay=10s'],
    logFile: join(outDir, 'raw', `${stamp}-runtime.log`),
  });
  const t0 = Date.now();
  const sampler = new ProcSampler(() => Date.now() - t0, [rt.pid], BENCH_SETS.database);
  await sampler.start(500);
  const pool = new Pool(rt.url, { connections: 32 });
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const r = await pool.request({
      method,
      path,
      headers: { 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.statusCode, body: (await r.body.json()) as Record<string, unknown> };
  };
  const sql = openDb(rt.database);
  try {
    const wf = await call('POST', '/api/v1/workflows', {
      name: `sleepers-${stamp}`,
      definition: {
        steps: [
          { name: 'nap', type: 'sleep', config: { until: '{{ run.input.at }}' } },
          { name: 'done', type: 'echo' },
        ],
      },
    });
    if (wf.status !== 201) throw new Error(`registration failed: ${JSON.stringify(wf.body)}`);
    // T: far enough out for every accept and first drive (measured as it goes), then the idle window
    const acceptStart = Date.now();
    const at = new Date(acceptStart + Math.max(20_000, RUNS * 4) + IDLE_S * 1000);
    let next = 0;
    let refused = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < RUNS) {
          next++;
          const r = await call('POST', '/api/v1/execute', { workflow_id: wf.body.id, input_data: { at: at.toISOString() } });
          if (r.status !== 200) refused++;
        }
      }),
    );
    const acceptS = (Date.now() - acceptStart) / 1000;
    const countOf = async (status: string) =>
      (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM workflow_instances WHERE status = ${status}`)[0].n;
    while ((await countOf('waiting')) < RUNS - refused && Date.now() < at.getTime() - IDLE_S * 1000) await sleep(200);
    const asleepAt = Date.now();
    const asleep = await countOf('waiting');
    const idleFrom = asleepAt - t0;
    await sleep(Math.max(0, Math.min(IDLE_S * 1000, at.getTime() - Date.now() - 500)));
    const idleTo = Date.now() - t0;
    while (Date.now() < at.getTime()) await sleep(100);
    const wakeFrom = Date.now() - t0;
    const deadline = Date.now() + 120_000;
    while ((await countOf('completed')) < RUNS - refused && Date.now() < deadline) await sleep(200);
    const wakeTo = Date.now() - t0;
    await sampler.stop();
    const late = (
      await sql<{ ms: number }[]>`
        SELECT extract(epoch FROM (s.completed_at - ${at}::timestamptz)) * 1000 AS ms
        FROM workflow_steps s WHERE s.step_name = 'nap' AND s.status = 'completed'`
    ).map((r) => Number(r.ms));
    const finished = (
      await sql<{ ms: number }[]>`
        SELECT extract(epoch FROM (i.completed_at - ${at}::timestamptz)) * 1000 AS ms
        FROM workflow_instances i WHERE i.status = 'completed'`
    ).map((r) => Number(r.ms));
    const completed = finished.length;
    const idle = usageBetween(sampler.samples, idleFrom, idleTo);
    const wake = usageBetween(sampler.samples, wakeFrom, wakeTo);
    const sys = (u: typeof idle) => (u ? u.runtime.cpuS + u.postgres.cpuS + u.nats.cpuS + u.redis.cpuS : NaN);
    const idleS = Math.max(0.001, (idleTo - idleFrom) / 1000);
    const early = late.filter((ms) => ms < 0).length;
    const q = (xs: number[], p: number) => round(percentile(xs, p / 100) ?? NaN, 0);
    const md = `# Durable sleepers (${new Date().toISOString()})

\`node dist/bench/sleepers.js --runs ${RUNS} --slots ${SLOTS} --mode ${MODE}\` on ${(await import('node:os')).cpus().length} cores.
Runs of [sleep until T, echo] on one runtime (\`--role all\`) whose executor drives at most ${SLOTS} runs at once.

| | |
|---|---|
| runs accepted | ${RUNS - refused} of ${RUNS} in ${round(acceptS, 1)} s (${round((RUNS - refused) / acceptS, 0)}/s, 64 concurrent callers) |
| asleep at once | ${asleep} (${round(asleep / SLOTS, 0)}× the executor's slots) |
| CPU while all sleep (${round(idleS, 1)} s window) | runtime ${round((idle?.runtime.cpuS ?? NaN) / idleS, 3)} cores, PostgreSQL ${round((idle?.postgres.cpuS ?? NaN) / idleS, 3)} cores |
| runtime memory while all sleep | RSS ${idle?.runtime.peakRssMb ?? '?'} MB |
| woke early | ${early} |
| sleep end after T: p50 / p95 / p99 / max | ${q(late, 50)} / ${q(late, 95)} / ${q(late, 99)} / ${q(late, 100)} ms |
| run end after T: p50 / p95 / p99 / max | ${q(finished, 50)} / ${q(finished, 95)} / ${q(finished, 99)} / ${q(finished, 100)} ms |
| completed | ${completed} of ${RUNS - refused} (${round(completed / Math.max(0.001, (wakeTo - wakeFrom) / 1000), 0)} runs/s through the wake) |
| CPU per woken run (runtime + PostgreSQL + NATS + Redis) | ${round((sys(wake) / Math.max(1, completed)) * 1e6, 0)} µs |
`;
    writeFileSync(join(outDir, `${stamp}.md`), md);
    writeFileSync(join(outDir, 'latest.md'), md);
    process.stdout.write(md);
    if (early || completed < RUNS - refused) process.exitCode = 1;
  } finally {
    await pool.close();
    await sql.end({ timeout: 2 });
    await rt.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
