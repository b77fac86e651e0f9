/**
 * The Piscina worker: runs step attempts (many at once: async steps overlap
 * their waits). Loaded once per thread; imports every step module from the
 * configured directories at start.
 *
 * One step must not take down the others on its thread. Once the functions
 * are loaded (a thread that cannot load them fails as it should):
 * - `process.exit()` called while steps run throws in the caller instead
 *   (E_PROCESS_EXIT when it is the step's own code path);
 * - an exception thrown in a callback, or a promise rejection that nothing
 *   handles, no longer kills the thread with every step on it. Whose it is
 *   cannot be told (a callback may outlive the step that set it, and tracking
 *   it with AsyncLocalStorage cost 10 % of thread throughput), so it is
 *   written into the log of every step running on the thread, and to stderr;
 *   the step it came from ends at its timeout.
 * The watch slot (watchdog.ts) marks which task is in the synchronous part of
 * its handler, so a thread found blocked is blamed on the right step.
 */
import { threadId, workerData } from 'node:worker_threads';
import { MAX_LOG_LINES } from '../engine/index.js';
import { setOutboundPolicy } from '../net/index.js';
import { toPlain } from '../errors/index.js';
import { decode, encode } from '../queue/index.js';
import { attempt } from './attempt.js';
import { loadCatalogue } from './catalogue.js';
import { cancelledError, type StepLogLine, type StepOutcome, type StepTask, type WorkerInit } from './protocol.js';
import { WatchSlot } from './watchdog.js';

const init = workerData as WorkerInit;
setOutboundPolicy(init.outbound);
const catalogue = await loadCatalogue(init.root, init.dirs, init.version);
/** the tasks running on this thread: their logs, and how to cancel them */
const running = new Map<number, { logs: StepLogLine[]; cancel?: () => void }>();
const watch = new WatchSlot(init.watch, threadId, (task) => running.get(task)?.cancel?.());

const exit = process.exit.bind(process);
process.exit = (code?: number | string | null) => {
  if (running.size === 0) return exit(code); // not from a step: Node's own, or shutdown
  throw Object.assign(new Error(`the step called process.exit(${code ?? ''}); the worker thread was kept running`), {
    code: 'E_PROCESS_EXIT',
  });
};

function stray(err: unknown, what: string): void {
  try {
    const message = `${what} on this worker thread, outside any step's handler (${toPlain(err, 'E_STEP_FAILED').message}); the step it came from ends at its timeout`;
    for (const { logs } of running.values()) if (logs.length < MAX_LOG_LINES) logs.push({ t: Date.now(), level: 'warn', msg: message });
    process.stderr.write(`${JSON.stringify({ level: 40, time: Date.now(), threadId, msg: message })}\n`);
  } catch {
    /* never let the handler itself throw */
  }
}
process.on('uncaughtException', (err) => stray(err, 'an exception thrown in a callback'));
process.on('unhandledRejection', (err) => stray(err, 'a promise rejection that nothing handled'));

export default async function runTask(buf: Uint8Array): Promise<Uint8Array> {
  const t = decode<StepTask>(buf);
  const logs: StepLogLine[] = [];
  if (watch.wasCancelled(t.seq)) {
    return encode({ ok: false, error: cancelledError(t.stepName), logs } satisfies StepOutcome);
  }
  const task: { logs: StepLogLine[]; cancel?: () => void } = { logs };
  running.set(t.seq, task);
  watch.started(t.seq, t.deadline);
  let outcome: StepOutcome;
  try {
    outcome = await attempt(catalogue, t, logs, {
      enter: () => watch.inUserCode(t.seq),
      leave: () => watch.inUserCode(0),
      onCancel: (cancel) => (task.cancel = cancel),
    });
  } finally {
    running.delete(t.seq);
    watch.finished(t.seq);
  }
  try {
    return encode(outcome);
  } catch (err) {
    return encode({
      ok: false,
      error: { code: 'E_OUTPUT_INVALID', message: `output cannot be serialized: ${(err as Error).message}` },
      logs,
    } satisfies StepOutcome);
  }
}
