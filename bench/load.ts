import { Pool, type Dispatcher } from 'undici';
import type { Stage } from './options.js';
import type { Recorder, StageRecord } from './recorder.js';
import { planOf } from './schedule.js';

/**
 * Open-model load, evenly spaced, over a bounded pool of keep-alive connections.
 *
 * Every request of a stage has a due time (stage start + i / rate; ramps follow the rate's
 * integral, see schedule.ts). A timer wakes the scheduler at the next due time and it sends
 * every request that is due, whatever happened to the earlier ones: a slow system gets its
 * requests at the planned rate and shows up as latency, not as a generator that waits.
 * Latency is counted from the due time, not from when the request was written, so three
 * kinds of waiting are inside it and none is hidden (no coordinated omission):
 *
 * - the generator's own lateness: its event loop woke after the due time (timers have 1 ms
 *   granularity; a busy bench process is later). Recorded per request as the schedule lag;
 * - waiting for a free connection: at most `maxConnections` requests are in flight, more wait
 *   in a FIFO here (recorded as the connection wait). That happens only when the system holds
 *   requests long enough to use them all (rate × latency > connections);
 * - the system's answer.
 *
 * Everything is bounded: a stage sends its planned count and no more; a request not answered
 * within `timeoutS` of its due time is an error (a waiting one is dropped unsent, one in flight
 * is ended by undici's headers/body timeouts, set to what is left of its time); whatever of a
 * stage is still open `timeoutS` + 5 s after its schedule ended is cut off.
 *
 * One pool per target, kept across stages (connections stay warm, as a fleet of clients would),
 * opened lazily: it grows only to the concurrency the system's latency asks for.
 */
export class LoadClient {
  private readonly pool: Pool;
  private inFlight = 0;
  private waiting: Job[] = [];
  private waitHead = 0;
  private readonly sweeper: NodeJS.Timeout;
  private peakInFlight = 0;
  private peakWaiting = 0;

  constructor(
    url: string,
    readonly maxConnections: number,
    readonly now: () => number,
  ) {
    this.pool = new Pool(new URL(url).origin, { connections: maxConnections, pipelining: 1, connect: { timeout: 5000 } });
    // the head of the queue may pass its deadline while every connection stays busy
    this.sweeper = setInterval(() => this.expireWaiting(), 100);
    this.sweeper.unref();
  }

  send(job: Job): void {
    if (this.inFlight < this.maxConnections) this.dispatch(job);
    else {
      job.state = 'waiting';
      this.waiting.push(job);
      this.peakWaiting = Math.max(this.peakWaiting, this.waiting.length - this.waitHead);
    }
  }

  /** Connected sockets right now. */
  connected(): number {
    return this.pool.stats.connected;
  }

  /** Most requests in flight and most waiting for a connection since the last call. */
  peaks(): { inFlight: number; waiting: number } {
    const p = { inFlight: this.peakInFlight, waiting: this.peakWaiting };
    this.peakInFlight = this.inFlight;
    this.peakWaiting = this.waiting.length - this.waitHead;
    return p;
  }

  /** Requests in flight or waiting. */
  open(): number {
    return this.inFlight + this.waiting.length - this.waitHead;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.pool.destroy().catch(() => undefined);
  }

  /** Called by a job that was in flight when it ends. */
  released(): void {
    this.inFlight--;
    while (this.inFlight < this.maxConnections && this.waitHead < this.waiting.length) {
      const job = this.takeWaiting();
      if (job.state !== 'waiting') continue; // cut off while it waited
      job.st.connWaitMs.push(this.now() - job.createdMs);
      this.dispatch(job);
    }
  }

  private dispatch(job: Job): void {
    const left = job.deadlineMs - this.now();
    if (left < 1) return job.fail(new Error('timed out waiting for a free connection'), true);
    job.state = 'in-flight';
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    job.st.sent++;
    const timeout = Math.ceil(left);
    this.pool.dispatch(
      { path: job.path, method: 'POST', headers: JSON_HEADERS, body: job.payload, headersTimeout: timeout, bodyTimeout: timeout },
      job,
    );
  }

  private expireWaiting(): void {
    const now = this.now();
    while (this.waitHead < this.waiting.length) {
      const job = this.waiting[this.waitHead];
      if (job.state === 'waiting' && job.deadlineMs > now) break;
      this.takeWaiting();
      if (job.state === 'waiting') job.fail(new Error('timed out waiting for a free connection'), true);
    }
  }

  private takeWaiting(): Job {
    const job = this.waiting[this.waitHead++];
    if (this.waitHead === this.waiting.length) {
      this.waiting = [];
      this.waitHead = 0;
    } else if (this.waitHead > 4096 && this.waitHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitHead);
      this.waitHead = 0;
    }
    return job;
  }
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/**
 * One request and its outcome; also undici's dispatch handler (the callback form, which does
 * not parse the response headers into an object).
 */
export class Job implements Dispatcher.DispatchHandler {
  state: 'new' | 'waiting' | 'in-flight' | 'done' = 'new';
  readonly createdMs: number;
  private status = 0;
  private text = '';
  private abort: ((err?: Error) => void) | null = null;

  constructor(
    private readonly client: LoadClient,
    private readonly rec: Recorder,
    readonly st: StageRecord,
    /** due time on the recorder's clock: latency counts from here */
    private readonly dueMs: number,
    readonly deadlineMs: number,
    readonly path: string,
    readonly payload: string,
    private readonly onDone: (job: Job) => void,
  ) {
    this.createdMs = rec.now();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(statusCode: number): boolean {
    this.status = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.text.length < 4096) this.text += chunk.toString('utf8');
    return true;
  }

  onComplete(): void {
    if (!this.end()) return;
    this.rec.response(this.st, this.status, this.rec.now() - this.dueMs, this.text);
  }

  onError(err: Error): void {
    const code = (err as { code?: string }).code ?? '';
    if (this.end()) this.rec.error(this.st, err, /TIMEOUT/.test(code));
  }

  /** Ends the request from outside (its time is up, or the stage's hard stop): aborted if in flight. */
  fail(err: Error, timeout: boolean): void {
    const inFlight = this.state === 'in-flight';
    if (!this.end()) return;
    this.rec.error(this.st, err, timeout);
    if (inFlight) this.abort?.(err);
  }

  private end(): boolean {
    if (this.state === 'done') return false;
    const wasInFlight = this.state === 'in-flight';
    this.state = 'done';
    if (wasInFlight) this.client.released();
    this.onDone(this);
    return true;
  }
}

export interface DriveOptions {
  client: LoadClient;
  /** request path and JSON body */
  path: string;
  body: string;
  timeoutS: number;
  signal?: AbortSignal;
  /** the stage's start on the recorder's clock (default now): seamless stages start where the last one's schedule ended */
  startMs?: number;
  /** progress line every ~5 s */
  progress?: (line: string) => void;
}

export interface RunningStage {
  /** the stage's planned time is over (or it was aborted): the next stage starts now */
  scheduled: Promise<void>;
  /** every request of the stage is answered, failed or cut off */
  finished: Promise<void>;
}

/** Runs one stage to the end (every response in) and records into `st`. */
export async function driveStage(rec: Recorder, st: StageRecord, stage: Stage, o: DriveOptions): Promise<void> {
  await startStage(rec, st, stage, o).finished;
}

/**
 * Starts a stage: its requests go out on schedule until the stage's time is over (or the signal
 * aborts it: requests not yet due are then never sent), and `finished` resolves once the last
 * one is settled, at most `timeoutS` + 5 s after the schedule ended.
 */
export function startStage(rec: Recorder, st: StageRecord, stage: Stage, o: DriveOptions): RunningStage {
  const plan = planOf(stage);
  const start = o.startMs ?? rec.now();
  const timeoutMs = o.timeoutS * 1000;
  st.startMs = start;
  st.planned = plan.count;
  const cpu0 = process.cpuUsage();
  const wall0 = rec.now();
  o.client.peaks();

  const open = new Set<Job>();
  let next = 0;
  let timer: NodeJS.Timeout | null = null;
  let over = false;
  let allSettled: () => void = () => {};
  const settledAll = new Promise<void>((r) => (allSettled = r));
  const onDone = (job: Job) => {
    open.delete(job);
    if (over && open.size === 0) allSettled();
  };

  /** Sends every request that is due (`all`: every one left, at the stage's end, when the clock may read a hair early). */
  const tick = (all = false) => {
    timer = null;
    const now = rec.now();
    while (next < plan.count) {
      const due = start + plan.dueMs(next);
      if (due > now && !all) break;
      next++;
      const lag = Math.max(0, now - due);
      st.schedLagMs.push(lag);
      rec.offered(due, lag);
      const job = new Job(o.client, rec, st, due, due + timeoutMs, o.path, o.body, onDone);
      open.add(job);
      o.client.send(job);
    }
    if (next < plan.count && !over) timer = setTimeout(() => tick(), Math.max(1, Math.floor(start + plan.dueMs(next) - rec.now())));
  };

  let endSchedule: () => void = () => {};
  const scheduled = new Promise<void>((r) => (endSchedule = r));
  const stopSchedule = () => {
    if (over) return;
    // the stage's time is up: whatever is due by now (every request left) goes out first,
    // unless the stage was interrupted
    if (!o.signal?.aborted) tick(true);
    over = true;
    if (timer) clearTimeout(timer);
    clearTimeout(stageTimer);
    o.signal?.removeEventListener('abort', stopSchedule);
    const cpu = process.cpuUsage(cpu0);
    st.generatorCpuS = (cpu.user + cpu.system) / 1e6;
    st.generatorCores = st.generatorCpuS / Math.max(0.001, (rec.now() - wall0) / 1000);
    const peaks = o.client.peaks();
    st.peakInFlight = peaks.inFlight;
    st.peakWaiting = peaks.waiting;
    st.unsent = plan.count - next;
    if (open.size === 0) allSettled();
    endSchedule();
  };
  // a stage lasts its planned time even when its tail offers nothing (a ramp down to 0)
  const stageTimer = setTimeout(stopSchedule, Math.max(0, start + stage.durationS * 1000 - rec.now()));
  if (o.signal?.aborted) queueMicrotask(stopSchedule);
  else o.signal?.addEventListener('abort', stopSchedule, { once: true });
  tick();

  const progress = o.progress
    ? setInterval(() => {
        const elapsed = (rec.now() - start) / 1000;
        const sec = Math.floor(rec.now() / 1000);
        const recent = rec.buckets.slice(Math.max(0, sec - 5), sec);
        const okRate = recent.length ? recent.reduce((n, b) => n + b.ok, 0) / recent.length : 0;
        o.progress!(
          `  ${st.label}: ${elapsed.toFixed(0)}/${stage.durationS}s, ${okRate.toFixed(0)} ok/s, ${st.responses} responses, ${st.errors} errors, ${open.size} open, ${o.client.connected()} connections`,
        );
      }, 5000)
    : null;

  // the hard stop: nothing of this stage stays open past its last deadline + 5 s
  const finished = scheduled.then(async () => {
    if (progress) clearInterval(progress);
    let cut: NodeJS.Timeout | undefined;
    const hardStop = new Promise<'cut'>((r) => {
      cut = setTimeout(() => r('cut'), timeoutMs + 5000);
    });
    if ((await Promise.race([settledAll, hardStop])) === 'cut') {
      const err = new Error(`hard stop: still open ${o.timeoutS + 5} s after the stage's schedule ended`);
      for (const job of [...open]) job.fail(err, false);
    }
    clearTimeout(cut);
    st.endMs = rec.now();
  });
  return { scheduled, finished };
}
