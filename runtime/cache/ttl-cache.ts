/** A small in-process cache with a TTL per entry and a size bound (oldest out first). */
export class TtlCache<V> {
  private readonly map = new Map<string, { v: V; exp: number }>();
  constructor(
    private readonly ttlMs: number,
    private readonly max = 10_000,
  ) {}

  get(k: string): V | undefined {
    const e = this.map.get(k);
    if (!e) return undefined;
    if (e.exp < Date.now()) {
      this.map.delete(k);
      return undefined;
    }
    return e.v;
  }

  /** `ttlMs` overrides the cache's own lifetime for this entry. */
  set(k: string, v: V, ttlMs = this.ttlMs): void {
    if (this.map.has(k))
      this.map.delete(k); // re-set: move to the newest end, evict nothing
    else if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as string);
    this.map.set(k, { v, exp: Date.now() + ttlMs });
  }

  delete(k: string): void {
    this.map.delete(k);
  }
}
