import autocannon, { type Instance, type Result } from 'autocannon';
import type { Stage } from './options.js';
import type { Recorder, StageRecord } from './recorder.js';

/**
 * Open-model load with autocannon's `overallRate`.
 *
 * autocannon paces each connection per 1-second window: at the window's start a connection
 * sends its quota back to back and then waits for the next window, and the windows of one
 * instance's connections are aligned. One instance at 200/s would therefore put 200 requests
 * on the wire in the same millisecond, once a second. To spread the load, each second is cut
 * into `slices` staggered instances (20 by default: a burst of rate/20 every 50 ms), each
 * connection carries `m` requests/s (1 up to `maxConnections` req/s, then the fewest that keep
 * the connection count under the cap), and each instance stops after exactly rate x duration
 * requests (maxOverallRequests), so the plan's count is what is offered even when some
 * responses are slow. A ramp is a sequence of short fixed-rate segments.
 *
 * Why a connection cap (1000 by default): opening and driving many connections costs the
 * generator more than the requests do. Against a trivial HTTP server at 2000 req/s on the
 * 2-core machine: 256 connections gave p95 2-3 ms, 1000-2000 connections 3-4 ms with 25-90 ms
 * in the first second (connection set-up), and with other processes busy on the machine 500
 * connections gave 250-680 ms in the first seconds. Fewer connections have a price too: a
 * connection sends its m requests of a second one after the other, so it keeps up only while
 * m x latency < 1 s (find-max with 256 connections stopped at 4000/s this way: 16 req/s per
 * connection x 74 ms). A stage where that happens shows achieved < offered and is flagged
 * "client-limited?".
 */
export interface Segment {
  rate: number;
  /** ms after the stage's start */
  offsetMs: number;
  durationS: number;
}

export interface DriveOptions {
  url: string;
  workflowId: string;
  slices: number;
  maxConnections: number;
  timeoutS: number;
  signal?: AbortSignal;
  /** progress line every ~5 s */
  progress?: (line: string) => void;
}

/** Splits a stage into fixed-rate segments: one for a hold, ~5 s steps for a ramp. */
export function segmentsOf(stage: Stage): Segment[] {
  const d = stage.durationS;
  if (stage.from === stage.to) return stage.from > 0 ? [{ rate: stage.from, offsetMs: 0, durationS: d }] : [];
  const step = Math.min(5, Math.max(1, Math.round(d / 6)));
  const n = Math.max(1, Math.ceil(d / step));
  const out: Segment[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const len = Math.floor(d / n) + (i < d % n ? 1 : 0);
    const mid = (at + len / 2) / d;
    const rate = Math.round(stage.from + (stage.to - stage.from) * mid);
    if (rate > 0 && len > 0) out.push({ rate, offsetMs: at * 1000, durationS: len });
    at += len;
  }
  return out;
}

interface InstanceSpec {
  delayMs: number;
  connections: number;
  rate: number;
  durationS: number;
}

/** The staggered autocannon instances of one segment. */
export function instancesOf(seg: Segment, slices: number, maxConnections: number): InstanceSpec[] {
  const m = Math.max(1, Math.ceil(seg.rate / maxConnections));
  const units = Math.floor(seg.rate / m);
  const rem = seg.rate - units * m;
  const k = Math.max(1, Math.min(slices, units));
  const out: InstanceSpec[] = [];
  for (let i = 0; i < k; i++) {
    const u = Math.floor(units / k) + (i < units % k ? 1 : 0);
    if (u > 0) out.push({ delayMs: seg.offsetMs + (i * 1000) / k, connections: u, rate: u * m, durationS: seg.durationS });
  }
  if (rem > 0) out.push({ delayMs: seg.offsetMs + 500, connections: 1, rate: rem, durationS: seg.durationS });
  return out;
}

/** Runs one stage to the end (every instance done) and records into `st`. */
export async function driveStage(rec: Recorder, st: StageRecord, stage: Stage, o: DriveOptions): Promise<void> {
  await startStage(rec, st, stage, o).finished;
}

export interface RunningStage {
  /** the stage's planned time is over: the next stage starts now, seamlessly */
  scheduled: Promise<void>;
  /** every instance of the stage is done (its last responses are in) */
  finished: Promise<void>;
}

/**
 * Starts a stage now. Its instances run staggered over the first second and each lasts the
 * stage's duration, so the last ones end up to a second after `scheduled`: the next stage's
 * instances, started at `scheduled` with the same stagger, take over each slot as it ends.
 */
export function startStage(rec: Recorder, st: StageRecord, stage: Stage, o: DriveOptions): RunningStage {
  const body = JSON.stringify({ workflow_id: o.workflowId, input_data: { test: 'load-test' } });
  const stageStart = rec.now();
  st.startMs = stageStart;
  const specs = segmentsOf(stage).flatMap((seg) => {
    rec.offer(stageStart + seg.offsetMs, seg.durationS, seg.rate);
    const list = instancesOf(seg, o.slices, o.maxConnections);
    st.connections = Math.max(
      st.connections,
      list.reduce((n, s) => n + s.connections, 0),
    );
    st.perConnectionRate = Math.max(st.perConnectionRate, ...list.map((s) => Math.ceil(s.rate / s.connections)));
    return list;
  });
  st.planned = specs.reduce((n, s) => n + s.rate * s.durationS, 0);

  const live = new Set<Instance>();
  const timers: NodeJS.Timeout[] = [];
  const done: Promise<void>[] = [];
  let aborted = false;
  let endSchedule: () => void = () => {};
  const scheduled = new Promise<void>((r) => (endSchedule = r));
  const onAbort = () => {
    aborted = true;
    timers.forEach(clearTimeout);
    for (const inst of live) inst.stop();
    endSchedule();
  };
  if (o.signal?.aborted) aborted = true;
  else o.signal?.addEventListener('abort', onAbort, { once: true });

  const progress = o.progress
    ? setInterval(() => {
        const elapsed = (rec.now() - stageStart) / 1000;
        const sec = Math.floor(rec.now() / 1000);
        const recent = rec.buckets.slice(Math.max(0, sec - 5), sec);
        const okRate = recent.length ? recent.reduce((n, b) => n + b.ok, 0) / recent.length : 0;
        o.progress!(
          `  ${st.label}: ${elapsed.toFixed(0)}/${stage.durationS}s, ${okRate.toFixed(0)} ok/s, ${st.responses} responses, ${st.errors} errors`,
        );
      }, 5000)
    : null;
  // a stage lasts its planned time even when its tail offers nothing (a ramp down to 0)
  if (aborted) endSchedule();
  else timers.push(setTimeout(endSchedule, stage.durationS * 1000));
  void scheduled.then(() => progress && clearInterval(progress));

  const t0 = performance.now();
  for (const spec of specs) {
    done.push(
      new Promise<void>((resolve) => {
        const launch = () => {
          if (aborted) return resolve();
          const inst = startInstance(rec, st, spec, body, o, (result) => {
            live.delete(inst);
            if (result) st.sent += result.requests.sent;
            resolve();
          });
          live.add(inst);
        };
        const wait = spec.delayMs - (performance.now() - t0);
        if (wait <= 1) launch();
        else timers.push(setTimeout(launch, wait));
      }),
    );
  }
  const finished = Promise.all([scheduled, ...done]).then(() => {
    o.signal?.removeEventListener('abort', onAbort);
    st.endMs = rec.now();
  });
  return { scheduled, finished };
}

function startInstance(
  rec: Recorder,
  st: StageRecord,
  spec: InstanceSpec,
  body: string,
  o: DriveOptions,
  finished: (r: Result | null) => void,
): Instance {
  // onResponse (with the body) runs just before the instance's 'response' event (with the latency)
  let lastStatus = 0;
  let lastBody = '';
  const planned = spec.rate * spec.durationS;
  const inst = autocannon(
    {
      url: o.url,
      connections: spec.connections,
      overallRate: spec.rate,
      maxOverallRequests: planned,
      // the request count ends an instance; the duration is only a backstop for a stalled server
      duration: spec.durationS + o.timeoutS + 5,
      timeout: o.timeoutS,
      // autocannon's correction assumes an interval of ceil(1/rate) ms = 1 ms, which would add
      // phantom samples to every response slower than 1 ms: latencies here are the measured ones
      ignoreCoordinatedOmission: true,
      bailout: Math.max(50, Math.ceil(planned * 0.2)),
      renderProgressBar: false,
      renderResultsTable: false,
      renderLatencyTable: false,
      requests: [
        {
          method: 'POST',
          path: '/api/v1/execute',
          headers: { 'content-type': 'application/json' },
          body,
          onResponse: (status, resBody) => {
            lastStatus = status;
            lastBody = resBody;
          },
        },
      ],
    },
    (err, result) => {
      if (err) {
        rec.error(st, err);
        finished(null);
      } else finished(result);
    },
  );
  inst.on('response', (_client, statusCode, _bytes, responseTime) => {
    rec.response(st, statusCode, responseTime, lastStatus === statusCode ? lastBody : '');
    lastBody = '';
  });
  inst.on('reqError', (err) => rec.error(st, err));
  return inst;
}
