/**
 * The Piscina worker: runs one step attempt per task. Loaded once per thread;
 * imports every step module from the configured directories at start.
 */
import { threadId, workerData } from 'node:worker_threads';
import { decode, encode } from '../queue/index.js';
import { attempt } from './attempt.js';
import { loadCatalogue } from './catalogue.js';
import type { StepLogLine, StepOutcome, StepTask, WorkerInit } from './protocol.js';
import { WatchSlot } from './watchdog.js';

const init = workerData as WorkerInit;
const catalogue = await loadCatalogue(init.root, init.dirs, init.version);
const watch = new WatchSlot(init.watch, threadId);
export default async function runStep(buf: Uint8Array): Promise<Uint8Array> {
  const t = decode<StepTask>(buf);
  const logs: StepLogLine[] = [];
  watch.started(t.seq, t.deadline);
  let outcome: StepOutcome;
  try {
    outcome = await attempt(catalogue, t, logs);
  } finally {
    watch.finished(t.seq);
  }
  try {
    return encode(outcome);
  } catch (err) {
    return encode({ ok: false, error: { code: 'E_OUTPUT_INVALID', message: `output cannot be serialized: ${(err as Error).message}`, retryable: false }, logs } satisfies StepOutcome);
  }
}
