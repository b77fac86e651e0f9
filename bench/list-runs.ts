import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { MIGRATIONS, RunRecords } from '../runtime/store/index.js';
import { percentile, round } from './stats.js';

/**
 * How fast the runs list (GET /api/v1/executions, RunRecords.list) answers over many rows, with
 * every filter the console offers: `--runs` runs (default 1,000,000) in a scratch database on the
 * PostgreSQL at `--db` (created and dropped here), 97 % completed, 2 % failed, 0.5 % cancelled,
 * 0.4 % waiting, 0.1 % running; 20 workflows, one of them rare (0.1 % of runs). Each query runs
 * `--repeat` times (median and max) on the schema the migrations make. With `--split N` it runs
 * first without migration N and later, then with them, in one process: the ratio is what those
 * migrations buy (how the composite indexes (status, id), (workflow_id, id) were judged, and left).
 *
 *   npm run build && node dist/bench/list-runs.js --runs 1000000
 */
const { values: a } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000000' },
    repeat: { type: 'string', default: '7' },
    db: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    out: { type: 'string', default: 'bench/results/list-runs' },
    split: { type: 'string' },
  },
});
const RUNS = Number(a.runs);
const REPEAT = Number(a.repeat);
const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
/** with --split N: measured before migration N and again after it (to judge an index); else the schema as it is */
const SPLIT = a.split ? Number(a.split) : Infinity;

interface Case {
  name: string;
  query: Parameters<RunRecords['list']>[0];
}

async function main(): Promise<void> {
  const admin = postgres(a.db, { onnotice: () => {}, max: 1 });
  const name = `wf_bench_list_${process.pid}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(a.db);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { onnotice: () => {}, max: 4 });
  const lines: string[] = [];
  try {
    for (const m of MIGRATIONS.filter((m) => m.version < SPLIT)) await sql.unsafe(m.sql);
    const t0 = performance.now();
    await fill(sql);
    const fillS = (performance.now() - t0) / 1000;
    const runs = new RunRecords(sql);
    const [{ mid }] = await sql<
      { mid: string }[]
    >`SELECT id::text AS mid FROM workflow_instances ORDER BY id OFFSET ${Math.floor(RUNS / 2)} LIMIT 1`;
    const rare = (await sql<{ id: string }[]>`SELECT id FROM workflows WHERE name = 'wf-rare'`)[0].id;
    const hour = Date.now() - 3_600_000;
    const cases: Case[] = [
      { name: 'newest 50', query: { limit: 50 } },
      { name: 'status=completed (97 %)', query: { status: 'completed', limit: 50 } },
      { name: 'status=failed (2 %)', query: { status: 'failed', limit: 50 } },
      { name: 'status=running (0.1 %)', query: { status: 'running', limit: 50 } },
      { name: 'status=failed, page in the middle', query: { status: 'failed', before: mid, limit: 50 } },
      { name: 'workflow name, common (5 %)', query: { workflow_name: 'wf-3', limit: 50 } },
      { name: 'workflow name, rare (0.1 %)', query: { workflow_name: 'wf-rare', limit: 50 } },
      { name: 'workflow id, rare', query: { workflow_id: rare, limit: 50 } },
      { name: 'rare workflow + status=failed', query: { workflow_name: 'wf-rare', status: 'failed', limit: 50 } },
      { name: 'status=failed, last hour', query: { status: 'failed', from: new Date(hour), limit: 50 } },
      { name: 'middle page, no filter', query: { before: mid, limit: 50 } },
    ];
    const measure = async (label: string) => {
      const out = new Map<string, { p50: number; max: number; rows: number }>();
      for (const c of cases) {
        const times: number[] = [];
        let rows = 0;
        for (let i = 0; i < REPEAT; i++) {
          const s = performance.now();
          rows = (await runs.list(c.query)).length;
          times.push(performance.now() - s);
        }
        out.set(c.name, { p50: percentile(times, 0.5) ?? NaN, max: Math.max(...times), rows });
        console.log(`${label} ${c.name}: p50 ${round(percentile(times, 0.5) ?? NaN, 2)} ms (${rows} rows)`);
      }
      return out;
    };
    await sql`ANALYZE workflow_instances`;
    const before = await measure(SPLIT === Infinity ? 'list' : 'before');
    const t1 = performance.now();
    const later = MIGRATIONS.filter((m) => m.version >= SPLIT);
    for (const m of later) await sql.unsafe(m.sql);
    const migrateS = (performance.now() - t1) / 1000;
    await sql`ANALYZE workflow_instances`;
    const after = later.length ? await measure('after') : null;
    lines.push(
      `# Runs list over ${RUNS.toLocaleString('en-US')} runs${after ? `: before and after migration ${SPLIT}` : ''}`,
      '',
      `\`node dist/bench/list-runs.js --runs ${RUNS}\` on ${new Date().toISOString()}; PostgreSQL ${(await sql<{ server_version: string }[]>`SHOW server_version`)[0].server_version}; fill ${round(fillS, 1)} s${after ? `; migrations from ${SPLIT} (building their indexes) ${round(migrateS, 1)} s` : ''}. Each query ${REPEAT} times through RunRecords.list (what GET /api/v1/executions runs), median and max in ms.`,
      '',
      ...(after
        ? [
            '| query | rows | before p50 | before max | after p50 | after max | before / after |',
            '|---|---|---|---|---|---|---|',
            ...cases.map((c) => {
              const b = before.get(c.name)!;
              const f = after.get(c.name)!;
              return `| ${c.name} | ${f.rows} | ${round(b.p50, 2)} | ${round(b.max, 2)} | ${round(f.p50, 2)} | ${round(f.max, 2)} | ${round(b.p50 / f.p50, 1)}× |`;
            }),
          ]
        : [
            '| query | rows | p50 | max |',
            '|---|---|---|---|',
            ...cases.map((c) => {
              const b = before.get(c.name)!;
              return `| ${c.name} | ${b.rows} | ${round(b.p50, 2)} | ${round(b.max, 2)} |`;
            }),
          ]),
      '',
    );
  } finally {
    await sql.end();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
  const dir = resolve(ROOT, a.out);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z.md`);
  writeFileSync(file, lines.join('\n'));
  writeFileSync(join(dir, 'latest.md'), lines.join('\n'));
  console.log(lines.join('\n'));
  console.log(`written to ${file}`);
}

/** 20 workflows and RUNS runs over the last 24 h, ids UUIDv7 in acceptance order as the runtime makes them. */
async function fill(sql: postgres.Sql): Promise<void> {
  await sql`
    INSERT INTO workflows (name, version, definition)
    SELECT CASE WHEN g = 20 THEN 'wf-rare' ELSE 'wf-' || g END, '1.0.0', '{"steps":[]}'::jsonb FROM generate_series(1, 20) g`;
  const ids = (await sql<{ id: string; name: string }[]>`SELECT id, name FROM workflows ORDER BY name`).map((r) => r);
  const common = ids.filter((w) => w.name !== 'wf-rare').map((w) => w.id);
  const rare = ids.find((w) => w.name === 'wf-rare')!.id;
  const now = Date.now();
  const span = 86_400_000;
  const chunk = 200_000;
  for (let start = 0; start < RUNS; start += chunk) {
    const n = Math.min(chunk, RUNS - start);
    await sql`
      WITH g AS (
        SELECT i, (${now - span}::bigint + (i::bigint * ${span}::bigint) / ${RUNS}::bigint) AS ms, random() AS r, random() AS w
        FROM generate_series(${start}::int, ${start + n - 1}::int) i
      )
      INSERT INTO workflow_instances (id, workflow_id, workflow_name, workflow_version, status, started_at, completed_at,
                                      accepted_at, created_at, updated_at)
      SELECT (lpad(to_hex(ms), 12, '0') || '7' || substr(md5(i::text), 1, 3) || '8' || substr(md5(i::text), 4, 15))::uuid,
             CASE WHEN w < 0.001 THEN ${rare}::uuid ELSE (${common}::uuid[])[1 + (i % ${common.length})] END,
             CASE WHEN w < 0.001 THEN 'wf-rare' ELSE 'wf-' || (1 + (i % ${common.length})) END, '1.0.0',
             CASE WHEN r < 0.97 THEN 'completed' WHEN r < 0.99 THEN 'failed' WHEN r < 0.995 THEN 'cancelled'
                  WHEN r < 0.999 THEN 'waiting' ELSE 'running' END,
             to_timestamp(ms / 1000.0), CASE WHEN r < 0.995 THEN to_timestamp(ms / 1000.0 + 0.05) END,
             to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0 + 0.05)
      FROM g`;
  }
  await sql`VACUUM ANALYZE workflow_instances`;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
