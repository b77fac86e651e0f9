import type { Logger } from '../observability/index.js';

export interface CircuitOptions {
  /** failures in a row that open the circuit */
  failures: number;
  /** how long an open circuit refuses calls before it lets one through to probe */
  openMs: number;
  log: Logger;
  /** the dependency, for the log: "redis" */
  name: string;
}

/**
 * A circuit breaker around a dependency the runtime can do without (the cache): after a few
 * failures in a row it stops calling for a while (callers get their fallback at once, no
 * timeout to wait out), then lets one call through; when that succeeds it closes again. So a
 * cache that is down costs each request nothing after the first few, and one that comes back is
 * used again within `openMs`.
 */
export class Circuit {
  private failed = 0;
  private openUntil = 0;
  private probing = false;

  constructor(private readonly o: CircuitOptions) {}

  get isOpen(): boolean {
    return this.openUntil > Date.now();
  }

  /** `fn`, or `fallback` without calling it while the circuit is open (or a probe is in flight). */
  async call<T>(fn: () => Promise<T>, fallback: T): Promise<T> {
    const now = Date.now();
    const open = this.failed >= this.o.failures;
    if (open && (now < this.openUntil || this.probing)) return fallback;
    if (open) this.probing = true; // half open: this call is the probe
    try {
      const v = await fn();
      if (this.failed >= this.o.failures) this.o.log.info({ dependency: this.o.name }, `${this.o.name} answers again: using it`);
      this.failed = 0;
      this.openUntil = 0;
      return v;
    } catch (err) {
      this.failed++;
      if (this.failed === this.o.failures || open) {
        this.openUntil = Date.now() + this.o.openMs;
        if (this.failed === this.o.failures) {
          this.o.log.warn(
            { dependency: this.o.name, err: (err as Error).message, open_ms: this.o.openMs },
            `${this.o.name} does not answer: going without it (a probe every ${this.o.openMs} ms)`,
          );
        }
      }
      return fallback;
    } finally {
      if (open) this.probing = false;
    }
  }
}
