import { connect } from 'node:net';
import type { Config } from './config/index.js';
import { databaseUrl, redisUrl } from './config/index.js';
import type { ErrorCode } from './errors/index.js';

/**
 * Which PostgreSQL, queue and cache a start uses (docs/configuration.md, "Modes"):
 *
 * | mode | PostgreSQL | queue | cache |
 * |---|---|---|---|
 * | embedded | embedded, data in `.data/` | postgres | in-process |
 * | services | a server | JetStream (`queue.driver: postgres`: PostgreSQL) | Redis (`cache.driver: memory`: in-process) |
 *
 * `mode: auto` (the default) is services when a service URL is set or when every service it
 * needs answers at its configured address, embedded when none does. When some answer and
 * others do not, it refuses to guess (a silent switch would put new runs in another queue
 * than the runs already waiting): the error names each service and how to choose.
 */
export interface Plan {
  mode: 'embedded' | 'services';
  /** why this mode: "--embedded", "mode: services", "DATABASE_URL is set", "nothing answers on ..." */
  reason: string;
  database: { kind: 'server'; url: string } | { kind: 'embedded' };
  queue: 'nats' | 'postgres';
  cache: 'redis' | 'memory';
}

export interface Service {
  name: 'PostgreSQL' | 'NATS' | 'Redis';
  /** what was tried, for the message */
  address: string;
  /** the variable (or key) that points the runtime elsewhere */
  variable: string;
  /** host and port to probe; null when it cannot be probed by TCP (a Unix socket) */
  probe: { host: string; port: number }[] | null;
}

/** A service that did not answer: names it, the address tried, why, and the variable to set. */
export interface Unreachable extends Service {
  why: string;
}

export class ServicesUnreachableError extends Error {
  readonly code = 'E_SERVICES_UNREACHABLE' satisfies ErrorCode;
  constructor(
    readonly plan: Plan,
    readonly unreachable: Unreachable[],
    hint: string,
  ) {
    super(
      [
        `cannot start in ${plan.mode} mode (${plan.reason}): ${unreachable.length} of the services it needs did not answer:`,
        ...unreachable.map((u) => `  - ${u.name} at ${u.address}: ${u.why}; set ${u.variable} to where it runs`),
        hint,
      ].join('\n'),
    );
  }
}

const URL_VARS = ['DATABASE_URL', 'NATS_URL', 'REDIS_URL'] as const;

/** Decides the plan; probes the configured addresses only in auto mode without a URL. */
export async function planServices(c: Readonly<Config>, env: NodeJS.ProcessEnv = process.env): Promise<Plan> {
  const queue = (auto: 'nats' | 'postgres') => (c.queue.driver === 'auto' ? auto : c.queue.driver);
  const cache = (auto: 'redis' | 'memory') => (c.cache.driver === 'auto' ? auto : c.cache.driver);
  const embedded = (reason: string): Plan => ({
    mode: 'embedded',
    reason,
    database: { kind: 'embedded' },
    queue: queue('postgres'),
    cache: cache('memory'),
  });
  const services = (reason: string): Plan => ({
    mode: 'services',
    reason,
    database: { kind: 'server', url: databaseUrl(c.database) },
    queue: queue('nats'),
    cache: cache('redis'),
  });

  if (c.mode === 'embedded') return embedded('mode: embedded');
  if (c.mode === 'services') return services('mode: services');
  const set = URL_VARS.filter((v) => env[v]);
  if (set.length) return services(`${set.join(', ')} ${set.length === 1 ? 'is' : 'are'} set`);
  if (c.database.url) return services('database.url is set');

  const wanted = services('every service answers');
  const needed = servicesOf(wanted, c);
  const down = await unreachable(needed);
  if (down.length === 0) return wanted;
  // only a machine where nothing was set up, and nothing runs, gets the embedded mode: services
  // configured elsewhere (another host) that are down at start are an outage, not a laptop
  const local = onThisMachineOnly(needed);
  if (down.length === needed.length && local) {
    return embedded(`nothing answers on ${needed.map((s) => s.address).join(', ')}`);
  }
  const answering = needed.filter((s) => !down.some((d) => d.name === s.name)).map((s) => s.name);
  throw new ServicesUnreachableError(
    { ...wanted, reason: answering.length ? `some services answer: ${answering.join(', ')}` : 'they are configured on other hosts' },
    down,
    local
      ? 'Start them, or choose: `npm start -- --embedded` (everything in this process, data in .data/), or `mode: services` with ' +
          '`queue.driver: postgres` / `cache.driver: memory` to do without NATS / Redis.'
      : 'Start them, or point the runtime at where they run.',
  );
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Whether every service is configured at a loopback address (a machine's defaults, not another host's). */
export function onThisMachineOnly(services: Service[]): boolean {
  return services.every((s) => s.probe !== null && s.probe.every((t) => LOOPBACK.has(t.host)));
}

/** How long a service has to accept a TCP connection at start. */
const PROBE_TIMEOUT_MS = 1000;

/** The services a plan needs (the embedded database is not one). */
export function servicesOf(plan: Plan, c: Readonly<Config>): Service[] {
  const out: Service[] = [];
  if (plan.database.kind === 'server') {
    const target = hostPort(plan.database.url, 5432);
    out.push({
      name: 'PostgreSQL',
      address: target ? `${target.host}:${target.port}` : plan.database.url,
      variable: 'DATABASE_URL',
      probe: target ? [target] : null,
    });
  }
  if (plan.queue === 'nats') {
    const targets = c.nats.urls.map((u) => hostPort(u.includes('://') ? u : `nats://${u}`, 4222)).filter((t) => t !== null);
    out.push({ name: 'NATS', address: c.nats.urls.join(', '), variable: 'NATS_URL', probe: targets });
  }
  if (plan.cache === 'redis') {
    const target = hostPort(redisUrl(c.redis), 6379);
    out.push({
      name: 'Redis',
      address: target ? `${target.host}:${target.port}` : 'redis',
      variable: 'REDIS_URL',
      probe: target ? [target] : null,
    });
  }
  return out;
}

/** The services among `list` that do not answer a TCP connect within the connect timeout, probed at once. */
export async function unreachable(list: Service[]): Promise<Unreachable[]> {
  const timeoutMs = PROBE_TIMEOUT_MS;
  const results = await Promise.all(
    list.map(async (s): Promise<Unreachable | null> => {
      if (!s.probe) return null; // a Unix socket: the real connection says what is wrong
      const whys = await Promise.all(s.probe.map((t) => tcpProbe(t.host, t.port, timeoutMs)));
      return whys.some((w) => w === null) ? null : { ...s, why: whys[0] ?? 'no address to try' };
    }),
  );
  return results.filter((r) => r !== null);
}

/** null when something accepts a TCP connection at host:port, else why not. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (why: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => done(null));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(err.code === 'ECONNREFUSED' ? 'connection refused' : err.code === 'ENOTFOUND' ? 'unknown host' : err.message),
    );
  });
}

function hostPort(url: string, defaultPort: number): { host: string; port: number } | null {
  try {
    const u = new URL(url);
    if (!u.hostname) return null;
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) || defaultPort };
  } catch {
    return null;
  }
}
