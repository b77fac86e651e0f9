import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, Pool, request } from 'undici';
import { ProcSampler, usageBetween } from './procstat.js';
import { percentile, round } from './stats.js';
import { BENCH_SETS, freePort, resetBenchResources, sleep, startRuntime } from './system.js';
import type { BenchMode } from './options.js';

/**
 * What live progress costs (`GET /api/v1/executions/:run_id/events`): `--listeners` runs wait
 * for a signal, each with one SSE listener. Reports the system's CPU with no listener and with
 * all of them connected (idle), then signals every run and measures how long after its signal
 * each listener hears the run's `end`.
 *
 *   npm run build && node dist/bench/listeners.js --listeners 1000
 */
const { values: a } = parseArgs({
  options: {
    listeners: { type: 'string', default: '1000' },
    mode: { type: 'string', default: 'services' },
    window: { type: 'string', default: '10' },
    out: { type: 'string', default: 'bench/results/listeners' },
  },
});
const N = Number(a.listeners);
const MODE = a.mode as BenchMode;
const WINDOW_S = Number(a.window);
const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));

async function main(): Promise<void> {
  if (MODE !== 'embedded') await resetBenchResources();
  const outDir = resolve(ROOT, a.out);
  mkdirSync(join(outDir, 'raw'), { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19) + 'Z';
  const rt = await startRuntime({
    root: ROOT,
    port: await freePort(),
    mode: MODE,
    extraSets: ['admission.max_event_loop_delay=10s'],
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
  // one connection per listener, as browsers and CLIs hold them
  const streams = new Agent({ connections: N + 10, bodyTimeout: 0, headersTimeout: 30_000 });
  try {
    const wf = await call('POST', '/api/v1/workflows', {
      name: `listeners-${stamp}`,
      definition: { steps: [{ name: 'go', type: 'wait_for_signal', config: { signal: 'go' } }] },
    });
    const ids: string[] = [];
    for (let i = 0; i < N; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, N - i) }, () => call('POST', '/api/v1/execute', { workflow_id: wf.body.id })),
      );
      ids.push(...batch.map((b) => b.body.run_id as string));
    }
    await sleep(3000); // every run asleep on its signal
    const quietFrom = Date.now() - t0;
    await sleep(WINDOW_S * 1000);
    const quietTo = Date.now() - t0;

    const signalled = new Map<string, number>();
    const heard = new Map<string, number>();
    let opened = 0;
    const ends = ids.map(async (id) => {
      const res = await request(`${rt.url}/api/v1/executions/${id}/events`, { dispatcher: streams });
      opened++;
      let buf = '';
      for await (const chunk of res.body) {
        buf += (chunk as Buffer).toString('utf8');
        if (buf.includes('event: end')) {
          heard.set(id, Date.now());
          break;
        }
      }
      res.body.destroy();
    });
    while (opened < N) await sleep(100);
    await sleep(1000);
    const listenFrom = Date.now() - t0;
    await sleep(WINDOW_S * 1000);
    const listenTo = Date.now() - t0;
    for (let i = 0; i < N; i += 50) {
      await Promise.all(
        ids.slice(i, i + 50).map(async (id) => {
          signalled.set(id, Date.now());
          await call('POST', `/api/v1/executions/${id}/signals/go`, { ok: true });
        }),
      );
    }
    await Promise.race([Promise.all(ends), sleep(60_000)]);
    await sampler.stop();
    const lag = ids.filter((id) => heard.has(id)).map((id) => heard.get(id)! - signalled.get(id)!);
    const quiet = usageBetween(sampler.samples, quietFrom, quietTo);
    const listening = usageBetween(sampler.samples, listenFrom, listenTo);
    const q = (p: number) => round(percentile(lag, p / 100) ?? NaN, 0);
    const md = `# Live progress listeners (${new Date().toISOString()})

\`node dist/bench/listeners.js --listeners ${N} --mode ${MODE}\` on ${cpus().length} cores: ${N} runs wait for a signal, one SSE listener each.

| | no listener | ${N} listeners connected |
|---|---|---|
| runtime CPU (cores, ${WINDOW_S} s window) | ${quiet?.runtime.cores ?? '?'} | ${listening?.runtime.cores ?? '?'} |
| PostgreSQL CPU (cores) | ${quiet?.postgres.cores ?? '?'} | ${listening?.postgres.cores ?? '?'} |
| runtime RSS | ${quiet?.runtime.peakRssMb ?? '?'} MB | ${listening?.runtime.peakRssMb ?? '?'} MB |

Every run then signalled (50 at a time): ${lag.length} of ${N} listeners heard their run's \`end\`; from the signal's
request to the \`end\` event, p50 / p95 / p99 / max: ${q(50)} / ${q(95)} / ${q(99)} / ${q(100)} ms.
`;
    writeFileSync(join(outDir, `${stamp}.md`), md);
    writeFileSync(join(outDir, 'latest.md'), md);
    process.stdout.write(md);
    if (lag.length < N) process.exitCode = 1;
  } finally {
    await pool.close();
    await streams.destroy();
    await rt.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
