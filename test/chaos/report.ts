import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { ROOT } from '../helpers/env.js';
import { PHASES, type Answers, type Records } from './tally.js';

export interface ReportRow {
  scenario: string;
  fault: string;
  answers: Answers;
  records: Records;
  /** (run, step) pairs whose function was invoked more than once (at-least-once after a crash: counted, not a failure) */
  invokedTwice: number;
  /** a fact of this scenario worth a column of its own */
  note: string;
}

/** Where the report goes: $CHAOS_OUT, else bench/results/chaos/latest.md. */
export function reportPath(): string {
  const out = process.env.CHAOS_OUT;
  if (!out) return join(ROOT, 'bench/results/chaos/latest.md');
  return isAbsolute(out) ? out : join(ROOT, out);
}

const ms = (x: number | null) => (x === null ? '-' : x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)}`);

/** One markdown table, a row per scenario, and how it was measured. */
export function writeReport(rows: ReportRow[], o: { rate: number; startedAt: Date; seconds: number; notes: string[] }): string {
  const lines = [
    '# Chaos suite',
    '',
    `${o.startedAt.toISOString()}, ${cpus().length} cores, ${o.seconds.toFixed(0)} s in all. Command: \`npm run test:chaos\` (test/chaos/).`,
    '',
    `Open-model load at ${o.rate} executions/s (evenly spaced; latency from each request's due time to its last answer), a two-step`,
    'workflow (`count-invocations` twice, 100 ms each). Every request has its own Idempotency-Key; a connection error or a 5xx',
    'is tried once more, on the next API process when there are two. Faults are done to private servers and processes of the',
    'suite, never to the shared ones. Phases by due time: before the fault, from the fault until the service is back (or, for',
    'a process killed for good, a fixed window), after.',
    '',
    '| scenario | fault | offered | accepted | not accepted (last answer) | retried (first answer) | lost | duplicate runs | duplicate step rows | 5xx other than 503 | p95 before / during / after (ms) | notes |',
    '|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const r of rows) {
    const a = r.answers;
    const list = (m: Map<string, number>) => [...m].map(([why, n]) => `${n} ${why}`).join(', ');
    const refused = list(a.refused) || '0';
    const retried = a.retried ? `${a.retried} (after ${list(a.retriedAfter)})` : '0';
    const p95 = PHASES.map((p) => ms(a.phases[p].p95Ms)).join(' / ');
    const notes = [
      r.note,
      `${r.records.redelivered} redelivered`,
      `${r.invokedTwice} steps invoked twice`,
      r.records.unansweredRuns ? `${r.records.unansweredRuns} runs stored without a 200 to their request` : '',
    ]
      .filter(Boolean)
      .join('; ');
    lines.push(
      `| ${r.scenario} | ${r.fault} | ${a.offered} | ${a.acceptedIds.size} | ${refused} | ${retried} | ${r.records.lost.length} | ${r.records.duplicateRuns} | ${r.records.duplicateStepRows} | ${a.other5xx.length} | ${p95} | ${notes} |`,
    );
  }
  lines.push('', ...o.notes.map((n) => `- ${n}`), '');
  const path = reportPath();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, lines.join('\n'));
  return path;
}
