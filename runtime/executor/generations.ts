import type { Logger } from '../observability/index.js';
import type { CatalogueEntry } from './catalogue.js';
import type { StepRunner } from './step-runner.js';

/** One loaded set of functions with the pools that run them. */
export interface Generation {
  readonly version: number;
  readonly runner: StepRunner;
  /** runs that started on it and have not ended */
  inFlight: number;
}

/**
 * The generations of an executor host's functions. Outside dev mode there is
 * only one. In dev mode a reload swaps in a new one for new runs; a run keeps
 * the generation it started with to its end, and a generation that is no
 * longer current is retired (its pools closed, letting their tasks finish)
 * once its last run ends.
 */
export class Generations {
  private current: Generation;
  private readonly retiring = new Set<Promise<void>>();

  constructor(
    runner: StepRunner,
    private readonly log: Logger,
  ) {
    this.current = { version: 0, runner, inFlight: 0 };
  }

  get catalogue(): ReadonlyMap<string, CatalogueEntry> {
    return this.current.runner.catalogue;
  }

  get runner(): StepRunner {
    return this.current.runner;
  }

  /** The generation a run starts on; hand it to `leave` when the run ends. */
  enter(): Generation {
    const g = this.current;
    g.inFlight++;
    return g;
  }

  leave(g: Generation): void {
    if (--g.inFlight === 0 && g !== this.current) this.retire(g);
  }

  /** New runs use `runner` from now on. */
  swap(runner: StepRunner, version: number): void {
    const old = this.current;
    this.current = { version, runner, inFlight: 0 };
    if (old.inFlight === 0) this.retire(old);
    else this.log.info({ generation: old.version, runs: old.inFlight }, 'previous functions stay until their runs end');
  }

  private retire(g: Generation): void {
    const p = g.runner
      .retire()
      .then(() => this.log.info({ generation: g.version }, 'functions generation retired'))
      .catch((err) => this.log.warn({ err, generation: g.version }, 'error while retiring a functions generation'))
      .finally(() => this.retiring.delete(p));
    this.retiring.add(p);
  }

  /** Stops every pool at once (the runs have ended or are abandoned). */
  async close(): Promise<void> {
    await Promise.allSettled([this.current.runner.close(), ...this.retiring]);
  }
}
