/**
 * A counting semaphore: at most `limit` calls of `run` are in progress at
 * once; the others wait in arrival order. Used per function name for
 * `defineFunction({ concurrency })` (executor/step-runner.ts), so waiting
 * attempts of one function hold back nothing else, and per run for the steps
 * it may have in flight (interpreter.ts).
 */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) this.active++;
    // the slot is handed over by release(), so `active` already counts this call
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** Attempts waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}
