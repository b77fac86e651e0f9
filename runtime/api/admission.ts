import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { RuntimeError } from '../errors/index.js';
import type { Metrics } from '../observability/index.js';

export interface AdmissionOptions {
  /** runs accepted and not yet finished: waiting in the queue or held by an executor */
  maxQueued: number;
  /** executes waiting for their results in this process */
  maxWaiters: number;
  /** the event-loop delay (p99 over the last window, ms) of this process beyond which it sheds */
  maxEventLoopDelayMs: number;
  /** reads the queue's backlog (sampled, never on the request path) */
  backlog: () => Promise<number>;
  /** true once the process is stopping: new runs go to another process */
  isStopping: () => boolean;
  metrics: Metrics;
}

/** How often the backlog is read and the event loop's delay looked at. */
const SAMPLE_MS = 250;

/**
 * Whether execute may accept one more run, decided in constant time from samples: a system
 * past what it can hold refuses at once (503 E_OVERLOADED, Retry-After), rather than queueing
 * without bound and answering everyone late. Three signals, each sampled every 250 ms:
 *
 * - the queue's backlog (runs accepted and not finished) over `admission.max_queued`: executors
 *   are behind, and an accepted run would wait longer than a caller wants;
 * - this process's event-loop delay (p99 of the window) over `admission.max_event_loop_delay`:
 *   the process is out of CPU, and every answer, refusals included, would come late;
 * - (per request) executes waiting for their result over `admission.max_waiters`.
 *
 * The queue adds its own bound: publishes waiting for the store (`queue.max_pending_publishes`).
 */
export class Admission {
  private backlog = 0;
  private lagging = false;
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private timer: NodeJS.Timeout | null = null;
  private reading = false;

  constructor(private readonly o: AdmissionOptions) {}

  start(): () => void {
    this.loop.enable();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
    return () => {
      if (this.timer) clearInterval(this.timer);
      this.loop.disable();
    };
  }

  /** Throws E_OVERLOADED when a new run would not be held well; called before the body is read. */
  admit(): void {
    if (this.o.isStopping()) {
      this.o.metrics.admissionRefused.inc({ reason: 'stopping' });
      throw new RuntimeError('E_STOPPING', 'this process is stopping; retry (another process of this system takes the run)');
    }
    if (this.backlog > this.o.maxQueued) {
      this.refuse('backlog', `${this.backlog} accepted runs are not finished yet (admission.max_queued ${this.o.maxQueued})`);
    }
    if (this.lagging) this.refuse('cpu', 'this API process is out of CPU time (its event loop is late)');
  }

  /** With wait=true: throws E_OVERLOADED when too many callers wait here already. */
  admitWaiter(waiting: number): void {
    if (waiting >= this.o.maxWaiters) {
      this.refuse(
        'waiters',
        `${waiting} executes wait for their results here (admission.max_waiters); retry, or start without wait and read the run`,
      );
    }
  }

  private refuse(reason: string, why: string): never {
    this.o.metrics.admissionRefused.inc({ reason });
    throw new RuntimeError('E_OVERLOADED', `not accepted: ${why}; retry after a second`, { reason });
  }

  private sample(): void {
    // p99 in ns; the histogram's resolution (10 ms) is part of every sample: what exceeds it is delay
    const delayMs = Math.max(0, this.loop.percentile(99) / 1e6 - 10);
    this.loop.reset();
    this.lagging = delayMs > this.o.maxEventLoopDelayMs;
    this.o.metrics.eventLoopDelay.set(delayMs / 1000);
    if (this.reading) return;
    this.reading = true;
    this.o
      .backlog()
      .then((n) => {
        this.backlog = n;
        this.o.metrics.admissionBacklog.set(n);
      })
      .catch(() => {
        /* the queue does not answer: execute will say so itself */
      })
      .finally(() => (this.reading = false));
  }
}
