import type postgres from 'postgres';
import { percentile } from '../../dist/bench/stats.js';
import { waitFor } from '../helpers/env.js';
import type { Attempt, OpenLoad, Sent } from './load.js';

export type Phase = 'before' | 'during' | 'after';
export const PHASES: Phase[] = ['before', 'during', 'after'];

/** What the clients saw of one scenario's load. */
export interface Answers {
  offered: number;
  /** requests whose last answer was 200 (a deduplicated repeat included): the run ids they were given */
  acceptedIds: Set<string>;
  /** requests not accepted, by their last answer: "503 E_QUEUE_UNAVAILABLE", "ECONNREFUSED", ... */
  refused: Map<string, number>;
  /** requests tried a second time (a connection error or a 5xx on the first API) */
  retried: number;
  /** what the first attempts of those got */
  retriedAfter: Map<string, number>;
  /** attempts answered with a 5xx other than 503 (500 is a bug; 503 carries a stable code) */
  other5xx: string[];
  /** per phase: requests due in it, accepted in the end and at the first attempt (%), p95 latency from the due time to the last answer (ms) */
  phases: Record<Phase, { offered: number; acceptedPct: number | null; firstTryAcceptedPct: number | null; p95Ms: number | null }>;
  /** keys whose last answer was 200 */
  acceptedKeys: Set<string>;
}

/** Sorts the requests into phases by due time: before the fault, between the fault and the recovery, after. */
export function answers(load: OpenLoad): Answers {
  const fault = load.at('fault');
  const restored = load.at('restored');
  const phaseOf = (s: Sent): Phase => (s.dueMs < fault ? 'before' : s.dueMs < restored ? 'during' : 'after');
  const acceptedIds = new Set<string>();
  const acceptedKeys = new Set<string>();
  const refused = new Map<string, number>();
  const retriedAfter = new Map<string, number>();
  const other5xx: string[] = [];
  const byPhase = new Map<Phase, Sent[]>(PHASES.map((p) => [p, []]));
  let retried = 0;
  for (const s of load.sent) {
    byPhase.get(phaseOf(s))!.push(s);
    if (s.attempts.length > 1) {
      retried++;
      const why = describe(s.attempts[0]);
      retriedAfter.set(why, (retriedAfter.get(why) ?? 0) + 1);
    }
    for (const a of s.attempts) if (a.status >= 500 && a.status !== 503) other5xx.push(`${a.status} ${a.code ?? ''}`.trim());
    const last = s.attempts.at(-1)!;
    if (last.status === 200 && last.runId) {
      acceptedIds.add(last.runId);
      acceptedKeys.add(s.key);
    } else {
      const why = describe(last);
      refused.set(why, (refused.get(why) ?? 0) + 1);
    }
  }
  const phases = Object.fromEntries(
    PHASES.map((p) => {
      const list = byPhase.get(p)!;
      const first = list.filter((s) => s.attempts[0].status === 200).length;
      const last = list.filter((s) => s.attempts.at(-1)!.status === 200).length;
      const pct = (n: number) => (list.length ? (100 * n) / list.length : null);
      return [
        p,
        {
          offered: list.length,
          acceptedPct: pct(last),
          firstTryAcceptedPct: pct(first),
          p95Ms: percentile(
            list.map((s) => s.endMs - s.dueMs),
            0.95,
          ),
        },
      ];
    }),
  ) as Answers['phases'];
  return { offered: load.sent.length, acceptedIds, acceptedKeys, refused, retried, retriedAfter, other5xx, phases };
}

/** "503 E_QUEUE_UNAVAILABLE", or the client's error when no answer came ("ECONNREFUSED") */
const describe = (a: Attempt) => (a.status ? `${a.status} ${a.code ?? ''}`.trim() : (a.code ?? 'no answer'));

/** What PostgreSQL recorded of one scenario's runs, once the queue is empty. */
export interface Records {
  /** accepted run ids not recorded `completed` (missing, failed or still open) */
  lost: string[];
  /** keys with more than one run: a retried request that started a second run */
  duplicateRuns: number;
  /** (run, step) pairs with more than one completed row */
  duplicateStepRows: number;
  /** runs of the scenario whose request was not answered 200 (a 503 whose publish was stored after all, a kill before the answer) */
  unansweredRuns: number;
  /** runs delivered more than once (the fault hit them in flight) */
  redelivered: number;
  /** run ids of the scenario, to compare with the executors' invocation logs */
  runIds: Set<string>;
}

/**
 * Waits until every accepted run is final and the queue is empty (`backlog` 0: no run waits or
 * is held anywhere), then reads the scenario's runs (their input names the scenario and the key).
 */
export async function records(
  sql: postgres.Sql,
  scenario: string,
  a: Answers,
  backlog: () => Promise<number>,
  timeoutMs = 90_000,
): Promise<Records> {
  const ids = [...a.acceptedIds];
  const final = async () => {
    const [{ n }] = await sql`
      SELECT count(*)::int AS n FROM workflow_instances
      WHERE id = ANY(${ids}::uuid[]) AND status IN ('completed', 'failed', 'cancelled')`;
    return n === ids.length && (await backlog()) === 0;
  };
  await waitFor(
    () => final().catch(() => false),
    timeoutMs,
    `the ${ids.length} accepted runs of "${scenario}" to end and the queue to empty`,
    250,
  ).catch(
    () => undefined, // counted below: what did not end is lost
  );
  const done = new Set(
    (await sql`SELECT id::text AS id FROM workflow_instances WHERE id = ANY(${ids}::uuid[]) AND status = 'completed'`).map(
      (r) => r.id as string,
    ),
  );
  const runs = await sql`
    SELECT id::text AS id, input_data->>'key' AS key, deliveries FROM workflow_instances WHERE input_data->>'scenario' = ${scenario}`;
  const perKey = new Map<string, number>();
  for (const r of runs) perKey.set(r.key as string, (perKey.get(r.key as string) ?? 0) + 1);
  const [{ n: duplicateStepRows }] = await sql`
    SELECT count(*)::int AS n FROM (
      SELECT s.instance_id, s.step_name FROM workflow_steps s JOIN workflow_instances i ON i.id = s.instance_id
      WHERE i.input_data->>'scenario' = ${scenario} AND s.status = 'completed'
      GROUP BY 1, 2 HAVING count(*) > 1) d`;
  return {
    lost: ids.filter((id) => !done.has(id)),
    duplicateRuns: [...perKey.values()].filter((n) => n > 1).length,
    duplicateStepRows,
    unansweredRuns: [...perKey.keys()].filter((k) => !a.acceptedKeys.has(k)).length,
    redelivered: runs.filter((r) => (r.deliveries as number) > 1).length,
    runIds: new Set(runs.map((r) => r.id as string)),
  };
}

/** (run, step) pairs of these runs that a step function was invoked for more than once ("<run_id> <step>" lines). */
export function invokedTwice(lines: string[], runIds: Set<string>): number {
  const seen = new Map<string, number>();
  for (const l of lines) if (runIds.has(l.split(' ')[0])) seen.set(l, (seen.get(l) ?? 0) + 1);
  return [...seen.values()].filter((n) => n > 1).length;
}
