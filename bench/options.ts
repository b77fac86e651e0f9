import { parseArgs } from 'node:util';
import ms from 'ms';

/** One stage of the load profile: a fixed rate (from === to) or a linear ramp. */
export interface Stage {
  label: string;
  from: number;
  to: number;
  /** whole seconds */
  durationS: number;
}

export type WorkflowKind = 'one' | 'three' | 'flow' | 'thread';

/** How the child runtime runs (docs/configuration.md, "Modes"). */
export type BenchMode = 'services' | 'postgres' | 'embedded';

/** A misbehaving function run beside the measured load (test/fixtures/functions/hostile.ts). */
export interface Neighbour {
  mode: 'spin' | 'leak' | 'exit' | 'hang';
  rate: number;
}

export interface BenchOptions {
  url: string | null;
  port: number | null;
  stages: Stage[];
  profile: string;
  workflow: WorkflowKind;
  findMax: boolean;
  p95BoundMs: number;
  fmStart: number;
  fmStep: number;
  fmMax: number;
  fmStageS: number;
  drainS: number;
  settleS: number;
  db: string | null;
  maxConnections: number;
  timeoutS: number;
  /** bound on the requests of one stage (memory: every response is kept until the report) */
  maxStageRequests: number;
  /** also drive the same stages against a trivial node:http server first, for comparison */
  baseline: boolean;
  outDir: string | null;
  fresh: boolean;
  runtimeSets: string[];
  runtimePids: number[];
  quiet: boolean;
  neighbour: Neighbour | null;
  /** services (NATS, Redis), postgres (PostgreSQL alone) or embedded (a PostgreSQL of the runtime's own) */
  mode: BenchMode;
}

export const USAGE = `usage: node dist/bench/run.js [options]

load profile (pick one; default: the seed's k6 profile compressed to --duration 2m)
  --smoke                   a few seconds at low rate (CI): stages "10:3s,20:3s"
  --duration <d>            total length of the seed profile (ramp to peak/4, ramp to peak/2,
                            hold peak, ramp down); e.g. 2m (default), 10m, 1h
  --peak <n>                the profile's hold rate in requests/s (default 200)
  --stages <list>           custom stages, comma separated: "RATE:DUR" holds, "A-B:DUR" ramps
                            e.g. "50:20s,100:20s,200:60s" or "0-50:1m,50-100:3m,200:5m,200-0:1m"
  --find-max                step the rate up until a stage fails; one-step then three-step workflow
    --p95-bound <ms>        HTTP p95 bound for a passing step (default 500)
    --fm-start <n>          first rate (default 500)   --fm-step <n>  increment (default 500)
    --fm-max <n>            never offer more than this (default 20000)
    --fm-stage <d>          length of each step (default 15s)

target
  --url <url>               drive a system that is already running (loopback only); no child
  --port <n>                port for the child runtime (default: a free one)
  --set <key=value>         extra --set for the child runtime (repeatable)
  --mode <m>                the child runtime's mode: services (default; PostgreSQL, NATS, Redis),
                            postgres (PostgreSQL alone: its queue, an in-process cache) or
                            embedded (a PostgreSQL of its own in a temporary folder, removed after)
  --db <postgres-url>       database to reconcile against (default: wf_bench for the child,
                            the default "workflow" database with --url)
  --runtime-pid <pid,...>   with --url: the runtime process(es) to sample, comma separated
                            (default: the one listening on the URL's port)
  --keep-data               do not drop the bench database, stream and Redis keys first

measurement
  --workflow one|three|flow|thread  workflow the staged run executes (default one); flow:
                            parallel, map and choice over seven echo steps (ten step rows per
                            run); thread: one delay step (1 ms) on a worker thread
  --neighbour <mode>:<rate> during every second stage, also start <rate>/s runs of a hostile
                            function (spin|leak|exit|hang, 400 ms timeout) on the same
                            executor; the child runtime then loads test/fixtures/functions
  --drain <d>               how long to wait for accepted runs to finish (default 30s)
  --settle <d>              find-max: wait for a step's runs before the next (default 30s)
  --baseline                before the system, drive the same stages against a trivial
                            node:http server (a child answering {}) and report both
  --max-connections <n>     most requests in flight (keep-alive connections, opened as
                            needed); more wait for a free one, inside their latency (default 1000)
  --timeout <s>             request timeout in seconds, from the request's due time (default 10)
  --max-requests <n>        refuse a stage that plans more requests than this (default 2000000)
  --out <dir>               results directory (default bench/results)
  --quiet                   no progress lines
`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      port: { type: 'string' },
      stages: { type: 'string' },
      duration: { type: 'string' },
      peak: { type: 'string' },
      smoke: { type: 'boolean' },
      'find-max': { type: 'boolean' },
      'p95-bound': { type: 'string' },
      'fm-start': { type: 'string' },
      'fm-step': { type: 'string' },
      'fm-max': { type: 'string' },
      'fm-stage': { type: 'string' },
      workflow: { type: 'string' },
      drain: { type: 'string' },
      settle: { type: 'string' },
      db: { type: 'string' },
      slices: { type: 'string' },
      baseline: { type: 'boolean' },
      mode: { type: 'string' },
      'max-requests': { type: 'string' },
      'max-connections': { type: 'string' },
      timeout: { type: 'string' },
      out: { type: 'string' },
      'keep-data': { type: 'boolean' },
      set: { type: 'string', multiple: true },
      'runtime-pid': { type: 'string' },
      quiet: { type: 'boolean' },
      neighbour: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (v.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const profiles = [v.smoke, v.stages, v.duration, v['find-max']].filter(Boolean).length;
  if (profiles > 1) throw new Error('--smoke, --stages, --duration and --find-max are alternatives; give one');

  const peak = int(v.peak ?? '200', '--peak', 1);
  let stages: Stage[];
  let profile: string;
  if (v.smoke) {
    stages = parseStages('10:3s,20:3s');
    profile = 'smoke';
  } else if (v.stages) {
    stages = parseStages(v.stages);
    profile = `custom (${v.stages})`;
  } else {
    const total = seconds(v.duration ?? '2m', '--duration');
    stages = seedProfile(total, peak);
    profile = `seed k6 profile over ${fmtDuration(total)} (peak ${peak}/s)`;
  }
  if (v['find-max']) profile = 'find-max';

  const workflow = (v.workflow ?? 'one') as WorkflowKind;
  if (!['one', 'three', 'flow', 'thread'].includes(workflow)) throw new Error('--workflow must be "one", "three", "flow" or "thread"');
  let neighbour: Neighbour | null = null;
  if (v.neighbour) {
    const m = /^(spin|leak|exit|hang):(\d+(?:\.\d+)?)$/.exec(v.neighbour);
    if (!m || Number(m[2]) <= 0 || Number(m[2]) > 50)
      throw new Error('--neighbour must be <spin|leak|exit|hang>:<rate per second, at most 50>, e.g. spin:2');
    neighbour = { mode: m[1] as Neighbour['mode'], rate: Number(m[2]) };
  }
  const mode = (v.mode ?? 'services') as BenchMode;
  if (!['services', 'postgres', 'embedded'].includes(mode)) throw new Error('--mode must be "services", "postgres" or "embedded"');
  if (v.mode && v.url) throw new Error('--mode applies to the child runtime: not with --url');
  if (v.url) assertLoopback(v.url);
  if (v.slices !== undefined)
    throw new Error('--slices is gone: requests are now spaced evenly one by one (bench/README.md, "How the load is generated")');
  if (v.baseline && v['find-max']) throw new Error('--baseline drives fixed stages: give --stages (or the seed profile), not --find-max');
  const maxStageRequests = int(v['max-requests'] ?? '2000000', '--max-requests', 1);
  for (const st of stages) {
    const n = ((st.from + st.to) * st.durationS) / 2;
    if (n > maxStageRequests)
      throw new Error(`stage "${st.label}" plans ${Math.floor(n)} requests, more than --max-requests ${maxStageRequests}`);
  }
  if (v['find-max'] && Number(v['fm-max'] ?? 20000) * seconds(v['fm-stage'] ?? '15s', '--fm-stage') > maxStageRequests)
    throw new Error(`--fm-max × --fm-stage plans more requests per step than --max-requests ${maxStageRequests}`);
  const runtimePids = (v['runtime-pid'] ?? '')
    .split(',')
    .filter(Boolean)
    .map((p) => int(p.trim(), '--runtime-pid', 1));

  return {
    url: v.url ? v.url.replace(/\/+$/, '') : null,
    port: v.port ? int(v.port, '--port', 1) : null,
    stages,
    profile,
    workflow,
    findMax: !!v['find-max'],
    p95BoundMs: num(v['p95-bound'] ?? '500', '--p95-bound'),
    fmStart: int(v['fm-start'] ?? '500', '--fm-start', 1),
    fmStep: int(v['fm-step'] ?? '500', '--fm-step', 1),
    fmMax: int(v['fm-max'] ?? '20000', '--fm-max', 1),
    fmStageS: seconds(v['fm-stage'] ?? '15s', '--fm-stage'),
    drainS: seconds(v.drain ?? '30s', '--drain', 0),
    settleS: seconds(v.settle ?? '30s', '--settle', 0),
    db: v.db ?? null,
    maxConnections: int(v['max-connections'] ?? '1000', '--max-connections', 1),
    timeoutS: int(v.timeout ?? '10', '--timeout', 1),
    maxStageRequests,
    baseline: !!v.baseline,
    outDir: v.out ?? null,
    fresh: !v['keep-data'],
    runtimeSets: [...(v.set ?? []), ...(neighbour ? ['executor.function_dirs=[steps, functions, test/fixtures/functions]'] : [])],
    runtimePids,
    quiet: !!v.quiet,
    neighbour,
    mode,
  };
}

/**
 * The seed plan's k6 stages (1m ramp to 50, 3m ramp to 100, 5m at 200, 1m ramp down) with
 * the rates scaled to `peak`. Under 10 minutes every stage shrinks in proportion (2m gives
 * 12s/36s/60s/12s); from 10 minutes on the ramps keep the seed's lengths and the hold at
 * peak takes the rest, so `--duration 1h` is a 55-minute soak at 200/s.
 */
export function seedProfile(totalS: number, peak: number): Stage[] {
  const ramps = [60, 180, 60];
  let [r1, r2, r3] = ramps;
  let hold = totalS - 300;
  if (totalS < 600) {
    const f = totalS / 600;
    [r1, r2, r3] = ramps.map((r) => Math.max(1, Math.round(r * f)));
    hold = Math.max(1, totalS - r1 - r2 - r3);
  }
  const q = Math.round(peak / 4);
  const h = Math.round(peak / 2);
  return [
    { label: `ramp 0→${q}/s`, from: 0, to: q, durationS: r1 },
    { label: `ramp ${q}→${h}/s`, from: q, to: h, durationS: r2 },
    { label: `hold ${peak}/s`, from: peak, to: peak, durationS: hold },
    { label: `ramp ${peak}→0/s`, from: peak, to: 0, durationS: r3 },
  ];
}

/** "50:20s,100-200:1m" → stages. */
export function parseStages(text: string): Stage[] {
  const stages = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((part) => {
      const m = /^(\d+)(?:\s*-\s*(\d+))?\s*:\s*(\S+)$/.exec(part);
      if (!m) throw new Error(`stage "${part}" is not RATE:DURATION or FROM-TO:DURATION (e.g. 200:60s, 0-50:1m)`);
      const from = Number(m[1]);
      const to = m[2] === undefined ? from : Number(m[2]);
      const durationS = seconds(m[3], `stage "${part}"`);
      const label = from === to ? `${from}/s` : `ramp ${from}→${to}/s`;
      return { label, from, to, durationS };
    });
  if (!stages.length) throw new Error('--stages is empty');
  if (stages.every((s) => s.from === 0 && s.to === 0)) throw new Error('--stages offers no load');
  return stages;
}

/** A duration in whole seconds: "15s", "2m", "1h", or a bare number of seconds. */
export function seconds(text: string, what: string, min = 1): number {
  const t = text.trim();
  const n = /^\d+(\.\d+)?$/.test(t) ? Number(t) * 1000 : ms(t as ms.StringValue);
  if (typeof n !== 'number' || !Number.isFinite(n) || Math.round(n / 1000) < min) {
    throw new Error(`${what}: "${text}" is not a duration of at least ${min}s (e.g. 15s, 2m, 1h)`);
  }
  return Math.round(n / 1000);
}

export function fmtDuration(s: number): string {
  if (s >= 3600 && s % 60 === 0) return `${Math.floor(s / 3600)}h${s % 3600 ? `${(s % 3600) / 60}m` : ''}`;
  if (s >= 60) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  return `${s}s`;
}

function int(text: string, what: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`${what} must be an integer of at least ${min} (got "${text}")`);
  return n;
}

function num(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${what} must be a positive number (got "${text}")`);
  return n;
}

/** The harness only ever sends traffic to this machine. */
export function assertLoopback(url: string): void {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    throw new Error(`--url "${url}" is not a URL`);
  }
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)) return;
  throw new Error(`--url must point at this machine (127.0.0.0/8, localhost or [::1]); got "${host}"`);
}
