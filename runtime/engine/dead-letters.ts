import type { Queue } from '../queue/index.js';
import type { BatchWriter } from '../store/index.js';
import type { Logger, Metrics } from '../observability/index.js';

/**
 * The engine role's dead-letter handler. A run whose executor dies is
 * redelivered after `queue.ack_wait` and resumed by the next executor from its
 * recorded steps. A run that keeps killing its executors uses up
 * `queue.max_deliver`; this marks it failed (E_MAX_DELIVERIES) in PostgreSQL and
 * the queue removes it, so that it neither vanishes nor loops forever.
 * Returns a stop function (it waits for a dead letter being recorded).
 */
export function startDeadLetterHandler(queue: Queue, writer: BatchWriter, log: Logger, metrics: Metrics): () => Promise<void> {
  // with the postgres queue the run leaves the queue in the statement that records it failed
  return queue.onDeadLetter(async (run, deliveries, dequeue) => {
    log.error({ run_id: run.run_id, deliveries }, 'run exhausted its deliveries; marking it failed');
    metrics.deadLetters.inc();
    metrics.runsFailed.inc();
    const now = new Date();
    await writer.writeRun(
      {
        id: run.run_id,
        workflow_id: run.workflow_id,
        workflow_name: '',
        workflow_version: '',
        status: 'failed',
        input_data: run.input,
        output_data: null,
        error_code: 'E_MAX_DELIVERIES',
        error_message: `the run was delivered ${deliveries} times without finishing; its executor probably crashed each time`,
        started_at: null,
        completed_at: now,
        accepted_at: new Date(run.accepted_at),
        deliveries,
        executor_host: null,
      },
      { dequeue },
    );
  });
}
