/** A tick is worth waiting for only when it is expected to carry at least this many items. */
const MIN_BATCH = 2;
/** How often the rate is measured (ms). */
const RATE_WINDOW_MS = 250;

/**
 * How long a batch of publishes waits for others to join it (`queue.publish_linger`): the tick
 * under load. It is taken only while the measured rate makes it carry at least MIN_BATCH items,
 * so at low rates an item goes at once and its latency is unchanged. Each item counted is one
 * publish; a quiet spell ends the window late, so the rate it gives is low and the next item
 * goes at once.
 */
export class RateLinger {
  /** items per second, measured over the last RATE_WINDOW_MS */
  private rate = 0;
  private windowStart = performance.now();
  private windowCount = 0;

  /** `lingerMs`: the longest an item waits for others (0: never). */
  constructor(private readonly lingerMs: number) {}

  /** The tick a batch waits for now (0: none), from the measured rate. */
  get delay(): number {
    return this.lingerMs > 0 && (this.rate * this.lingerMs) / 1000 >= MIN_BATCH ? this.lingerMs : 0;
  }

  /** Counts one item. */
  count(): void {
    this.windowCount++;
    const now = performance.now();
    const elapsed = now - this.windowStart;
    if (elapsed < RATE_WINDOW_MS) return;
    this.rate = (this.windowCount * 1000) / elapsed;
    this.windowCount = 0;
    this.windowStart = now;
  }
}
