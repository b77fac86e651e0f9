import { Pool } from 'undici';
import { planOf } from '../../dist/bench/schedule.js';

/** One try of a request against one API process. */
export interface Attempt {
  /** index into the load's targets */
  target: number;
  /** HTTP status; 0 when no answer came (a connection error or a timeout) */
  status: number;
  /** the error code of the answer (`E_...`), or the client's error (`ECONNREFUSED`, `timeout`) */
  code: string | null;
  runId: string | null;
}

/** One request of the open model and what became of it. */
export interface Sent {
  /** its place in the schedule */
  i: number;
  /** the Idempotency-Key: one per request, the same on its retry */
  key: string;
  /** when it was due to be sent (ms on the load's clock): latency counts from here */
  dueMs: number;
  /** when its last attempt ended */
  endMs: number;
  attempts: Attempt[];
}

export interface LoadOptions {
  /** base URLs of the API processes: request i goes to target i mod n, its retry to the next one */
  targets: string[];
  /** requests per second, evenly spaced */
  rate: number;
  /** `POST /api/v1/execute` body of the request with this key */
  body: (key: string) => string;
  keyPrefix: string;
  /** per attempt */
  attemptTimeoutMs: number;
  /** tries per request: a connection error or a 5xx is tried again on the next target */
  maxAttempts: number;
}

/**
 * Open-model load for the chaos suite: requests go out on an even schedule whatever happened to
 * the earlier ones (a stalled system gets its requests at the planned rate and shows as
 * latency), and latency is counted from each request's due time, not from when it was written.
 * Each request carries an Idempotency-Key; a connection error or a 5xx is tried again, once, on
 * the next API process with the same key, as a client behind a load balancer would: the system
 * must then neither lose the run nor start it twice. bench/load.ts is the bench's generator; it
 * sends one fixed body and never retries, which is what this one adds.
 */
export class OpenLoad {
  readonly sent: Sent[] = [];
  private readonly pools: Pool[];
  private readonly t0 = performance.now();
  private timer: NodeJS.Timeout | null = null;
  private readonly open = new Set<Promise<void>>();
  private marks = new Map<string, number>();

  constructor(private readonly o: LoadOptions) {
    this.pools = o.targets.map((t) => new Pool(t, { connections: 64, pipelining: 1, connect: { timeout: 2000 } }));
  }

  now(): number {
    return performance.now() - this.t0;
  }

  /** Names a moment (a fault, a recovery) on the load's clock. */
  mark(name: string): void {
    this.marks.set(name, this.now());
  }

  at(name: string): number {
    const t = this.marks.get(name);
    if (t === undefined) throw new Error(`no mark "${name}"`);
    return t;
  }

  /** Starts sending; runs until stop(). */
  start(): void {
    const plan = planOf({ from: this.o.rate, to: this.o.rate, durationS: 3600 });
    const start = this.now();
    let next = 0;
    const tick = () => {
      const now = this.now();
      while (start + plan.dueMs(next) <= now) {
        const dueMs = start + plan.dueMs(next);
        const s: Sent = { i: next, key: `${this.o.keyPrefix}-${next}`, dueMs, endMs: 0, attempts: [] };
        next++;
        this.sent.push(s);
        const p = this.request(s).finally(() => this.open.delete(p));
        this.open.add(p);
      }
      this.timer = setTimeout(tick, Math.max(1, Math.floor(start + plan.dueMs(next) - this.now())));
    };
    tick();
  }

  /** Sends nothing more; resolves once every request sent has its answer (or gave up). */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.all([...this.open]);
  }

  async close(): Promise<void> {
    await this.stop();
    await Promise.all(this.pools.map((p) => p.destroy().catch(() => undefined)));
  }

  private async request(s: Sent): Promise<void> {
    for (let a = 0; a < this.o.maxAttempts; a++) {
      const target = (s.i + a) % this.o.targets.length;
      const at = await this.attempt(target, s.key);
      s.attempts.push(at);
      if (at.status !== 0 && at.status < 500) break;
    }
    s.endMs = this.now();
  }

  private async attempt(target: number, key: string): Promise<Attempt> {
    try {
      const res = await this.pools[target].request({
        path: '/api/v1/execute',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: this.o.body(key),
        headersTimeout: this.o.attemptTimeoutMs,
        bodyTimeout: this.o.attemptTimeoutMs,
      });
      const text = await res.body.text();
      let body: { run_id?: string; error?: { code?: string } } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        /* not JSON: the status says enough */
      }
      return {
        target,
        status: res.statusCode,
        code: body.error?.code ?? null,
        runId: res.statusCode === 200 ? (body.run_id ?? null) : null,
      };
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).name;
      return { target, status: 0, code: /TIMEOUT/.test(code) ? 'timeout' : code, runId: null };
    }
  }
}
