import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../observability/index.js';
import type { ExecutorRecords } from '../store/index.js';

/** What an executor reports of itself on each beat, read when the beat goes out. */
export interface ExecutorLoad {
  inFlight: number;
  threads: number;
  /** 0..1, since the previous beat */
  utilization: number;
}

export interface RegistrationOptions {
  records: ExecutorRecords;
  /** runs it may drive at once */
  slots: number;
  load: () => ExecutorLoad;
  intervalMs: number;
  log: Logger;
}

export interface Registration {
  readonly id: string;
  /** No more beats; the row is removed (a clean stop is gone from the list at once). */
  stop(): Promise<void>;
}

/**
 * Puts this executor in the registry (store/executors.ts) and keeps its row fresh, off the
 * run path: one upsert every `intervalMs` from a timer. A failed beat is logged once until
 * one succeeds again; it never stops the executor (the row just ages out of the list).
 */
export async function registerExecutor(o: RegistrationOptions): Promise<Registration> {
  const id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const startedAt = new Date();
  let failing = false;
  let beating: Promise<void> | null = null;
  const beat = async () => {
    try {
      const l = o.load(); // inside the try: a beat that cannot read the pool is a failed beat, never an unhandled rejection
      await o.records.beat({
        id,
        host: hostname(),
        pid: process.pid,
        started_at: startedAt,
        slots: o.slots,
        in_flight: l.inFlight,
        threads: l.threads,
        utilization: Math.min(1, Math.max(0, l.utilization)),
      });
      if (failing) o.log.info({ executor: id }, 'executor registry reachable again');
      failing = false;
    } catch (err) {
      if (!failing) o.log.warn({ err, executor: id }, 'executor registry not updated; retrying on the next beat');
      failing = true;
    }
  };
  // a beat still going when the next one is due (a slow database) is not doubled
  const tick = (): Promise<void> =>
    (beating ??= beat().finally(() => {
      beating = null;
    }));
  // the first beat before the executor counts as started: it is listed as soon as it runs
  await tick();
  const timer = setInterval(() => void tick(), o.intervalMs);
  timer.unref();
  return {
    id,
    async stop() {
      clearInterval(timer);
      await beating;
      await o.records
        .remove(id)
        .catch((err: Error) => o.log.warn({ err: err.message, executor: id }, 'executor row not removed; it ages out'));
    },
  };
}
