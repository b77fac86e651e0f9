import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { Stage, WorkflowKind } from './options.js';

/** What one stage of load sent and got back, response by response. */
export interface StageRecord {
  index: number;
  label: string;
  workflow: WorkflowKind;
  from: number;
  to: number;
  durationS: number;
  /** ms since the recorder's t0 */
  startMs: number;
  endMs: number;
  /** requests the plan asked for */
  planned: number;
  /** requests handed to a connection; `unsent`: planned ones never sent (the stage was stopped, or they timed out waiting for a connection) */
  sent: number;
  unsent: number;
  /** how late the scheduler took up each request after its due time (ms): the generator's own lateness */
  schedLagMs: number[];
  /** for each request that found every connection busy: how long it waited for one (ms) */
  connWaitMs: number[];
  /** most requests in flight at once (= connections in use), most waiting for a connection */
  peakInFlight: number;
  peakWaiting: number;
  /** CPU of the bench process (process.cpuUsage) over the stage's schedule, and as cores */
  generatorCpuS: number;
  generatorCores: number;
  responses: number;
  ok: number;
  non2xx: Record<string, number>;
  /** one response body per non-2xx status, for the report */
  non2xxSamples: Record<string, string>;
  errors: number;
  timeouts: number;
  errorSamples: string[];
  /** 2xx responses without a run_id in the body */
  missingRunId: number;
  /** HTTP latency of every response, from its due time (ms) */
  latencies: number[];
  /** the same, of the 2xx responses (accepted) and of the others (refused: 503 E_OVERLOADED, ...) */
  okLatencies: number[];
  refusedLatencies: number[];
  /** non-2xx responses by their error code (`error.code` in the body) */
  refusedByCode: Record<string, number>;
  /** arrival of every 2xx response, ms since t0 */
  okArrivals: number[];
  runIds: string[];
}

export interface Bucket {
  /** the bench's own event-loop delay in this second (max, ms): a busy generator inflates latencies */
  loopLagMs: number | null;
  /** the latest the scheduler took up a request due in this second (ms after its due time) */
  schedLagMaxMs: number | null;
  offered: number;
  ok: number;
  non2xx: number;
  errors: number;
  latencies: number[];
}

const LOOP_RESOLUTION_MS = 10;
/** The histogram records the time between its timer's ticks: the delay is what exceeds the tick. */
const lagMs = (ns: number) => Math.max(0, Math.round((ns / 1e6 - LOOP_RESOLUTION_MS) * 100) / 100);

const ERROR_CODE_RE = /"code"\s*:\s*"(E_[A-Z_]+)"/;
const RUN_ID_RE = /"run_id"\s*:\s*"([0-9a-fA-F-]{36})"/;

/** Collects every response of a bench run: per stage, and in 1-second buckets for the chart. */
export class Recorder {
  /** epoch ms of the recorder's zero; its clock is monotonic (performance.now) from there */
  readonly t0 = Date.now();
  private readonly perf0 = performance.now();
  readonly stages: StageRecord[] = [];
  readonly buckets: Bucket[] = [];
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private readonly whole: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private lagTimer: NodeJS.Timeout | null = null;

  /** Starts watching the bench's own event loop, once a second. */
  startLoopMonitor(): void {
    this.loop.enable();
    this.whole.enable();
    this.lagTimer = setInterval(() => {
      this.bucket(this.now() - 500).loopLagMs = lagMs(this.loop.max);
      this.loop.reset();
    }, 1000);
    this.lagTimer.unref();
  }

  /** p99 and max of the bench's event-loop delay over the whole run (ms) */
  stopLoopMonitor(): { p99: number; max: number } {
    if (this.lagTimer) clearInterval(this.lagTimer);
    this.loop.disable();
    this.whole.disable();
    return { p99: lagMs(this.whole.percentile(99)), max: lagMs(this.whole.max) };
  }

  /** ms since t0, sub-millisecond */
  now(): number {
    return performance.now() - this.perf0;
  }

  addStage(stage: Stage, workflow: WorkflowKind): StageRecord {
    const rec: StageRecord = {
      index: this.stages.length,
      label: stage.label,
      workflow,
      from: stage.from,
      to: stage.to,
      durationS: stage.durationS,
      startMs: this.now(),
      endMs: 0,
      planned: 0,
      sent: 0,
      unsent: 0,
      schedLagMs: [],
      connWaitMs: [],
      peakInFlight: 0,
      peakWaiting: 0,
      generatorCpuS: 0,
      generatorCores: 0,
      responses: 0,
      ok: 0,
      non2xx: {},
      non2xxSamples: {},
      errors: 0,
      timeouts: 0,
      errorSamples: [],
      missingRunId: 0,
      latencies: [],
      okLatencies: [],
      refusedLatencies: [],
      refusedByCode: {},
      okArrivals: [],
      runIds: [],
    };
    this.stages.push(rec);
    return rec;
  }

  private bucket(ms: number): Bucket {
    const s = Math.max(0, Math.floor(ms / 1000));
    while (this.buckets.length <= s)
      this.buckets.push({ loopLagMs: null, schedLagMaxMs: null, offered: 0, ok: 0, non2xx: 0, errors: 0, latencies: [] });
    return this.buckets[s];
  }

  /** A request due at `dueMs` went out `lagMs` after it. */
  offered(dueMs: number, lagMs: number): void {
    const b = this.bucket(dueMs);
    b.offered++;
    if (b.schedLagMaxMs === null || lagMs > b.schedLagMaxMs) b.schedLagMaxMs = lagMs;
  }

  response(st: StageRecord, status: number, latencyMs: number, body: string): void {
    const now = this.now();
    const b = this.bucket(now);
    st.responses++;
    st.latencies.push(latencyMs);
    b.latencies.push(latencyMs);
    if (status >= 200 && status < 300) {
      st.ok++;
      st.okLatencies.push(latencyMs);
      st.okArrivals.push(now);
      b.ok++;
      const m = RUN_ID_RE.exec(body);
      if (m) st.runIds.push(m[1].toLowerCase());
      else st.missingRunId++;
    } else {
      const code = String(status);
      st.non2xx[code] = (st.non2xx[code] ?? 0) + 1;
      st.refusedLatencies.push(latencyMs);
      const errorCode = ERROR_CODE_RE.exec(body)?.[1] ?? code;
      st.refusedByCode[errorCode] = (st.refusedByCode[errorCode] ?? 0) + 1;
      if (!(code in st.non2xxSamples)) st.non2xxSamples[code] = body.slice(0, 300);
      b.non2xx++;
    }
  }

  error(st: StageRecord, err: Error, timeout: boolean): void {
    st.errors++;
    if (timeout) st.timeouts++;
    this.bucket(this.now()).errors++;
    if (st.errorSamples.length < 5 && !st.errorSamples.includes(err.message)) st.errorSamples.push(err.message);
  }

  allRunIds(): string[] {
    return this.stages.flatMap((s) => s.runIds);
  }
}
