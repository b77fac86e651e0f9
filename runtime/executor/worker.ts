/**
 * The Piscina worker: runs step attempts (many at once: async steps overlap
 * their waits). Loaded once per thread; imports every step module from the
 * configured directories at start.
 *
 * One step must not take down the others on its thread: `process.exit()`
 * throws in the step that called it (E_PROCESS_EXIT) instead of ending the
 * thread, and an exception thrown in a callback, or a promise rejection that
 * nothing handles, no longer kills the thread with every step on it. Such a
 * stray failure fails the step at once when it is the only one on the thread
 * (E_UNCAUGHT / E_PROCESS_EXIT); with several running it cannot be told
 * whose it is (tracking that, with AsyncLocalStorage, cost 10 % of thread
 * throughput), so it is written into each one's log and the step it came from
 * ends at its timeout.
 */
import { threadId, workerData } from 'node:worker_threads';
import { toPlain } from '../errors/index.js';
import { decode, encode } from '../queue/index.js';
import { attempt } from './attempt.js';
import { loadCatalogue } from './catalogue.js';
import type { StepLogLine, StepOutcome, StepTask, WorkerInit } from './protocol.js';
import { WatchSlot } from './watchdog.js';

const init = workerData as WorkerInit;
/** the tasks running on this thread: their logs, and a way to fail them at once */
const running = new Map<number, { logs: StepLogLine[]; fail(e: { code: string; message: string }): void }>();

process.exit = ((code?: number | string | null) => {
  throw Object.assign(new Error(`the step called process.exit(${code ?? ''}); the worker thread was kept running`), { code: 'E_PROCESS_EXIT' });
}) as typeof process.exit;

function stray(err: unknown, what: string): void {
  const e = err as { code?: unknown };
  const failure = e?.code === 'E_PROCESS_EXIT'
    ? { code: 'E_PROCESS_EXIT', message: (err as Error).message }
    : { code: 'E_UNCAUGHT', message: `${what}: ${toPlain(err, 'E_UNCAUGHT').message}` };
  if (running.size === 1) {
    for (const task of running.values()) task.fail(failure);
    return;
  }
  // several steps on the thread (or none: a callback left behind by a step that has ended)
  for (const task of running.values()) {
    if (task.logs.length < 100) task.logs.push({ t: Date.now(), level: 'warn', msg: `a step on this worker thread failed outside its handler (${failure.code}): ${failure.message}` });
  }
}
process.on('uncaughtException', (err) => stray(err, 'an exception thrown in a callback in the step'));
process.on('unhandledRejection', (err) => stray(err, 'a promise rejection that nothing handled in the step'));

const catalogue = await loadCatalogue(init.root, init.dirs, init.version);
const watch = new WatchSlot(init.watch, threadId);

export default async function runStep(buf: Uint8Array): Promise<Uint8Array> {
  const t = decode<StepTask>(buf);
  const logs: StepLogLine[] = [];
  watch.started(t.seq, t.deadline);
  let outcome: StepOutcome;
  try {
    const failed = new Promise<StepOutcome>((resolve) => running.set(t.seq, { logs, fail: (error) => resolve({ ok: false, error, logs }) }));
    outcome = await Promise.race([attempt(catalogue, t, logs), failed]);
  } finally {
    running.delete(t.seq);
    watch.finished(t.seq);
  }
  try {
    return encode(outcome);
  } catch (err) {
    return encode({ ok: false, error: { code: 'E_OUTPUT_INVALID', message: `output cannot be serialized: ${(err as Error).message}`, retryable: false }, logs } satisfies StepOutcome);
  }
}
