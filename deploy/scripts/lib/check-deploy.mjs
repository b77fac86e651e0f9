#!/usr/bin/env node
/**
 * Static checks of deploy/ that need no Docker engine (used by deploy/scripts/validate.sh):
 *
 *   compose   every docker-compose-*.yml parses (YAML 1.1 merge keys, no duplicate
 *             keys), interpolates like Compose (${VAR}, ${VAR:-d}, ${VAR:?e}, $$) with
 *             .env.example plus dummy secrets, and has the seed's services; no secret
 *             is written in a compose file, every required secret fails when unset,
 *             every variable used is documented in .env.example; host ports are unique
 *   ports     HAProxy backends and Prometheus targets match the compose host ports
 *   metrics   every runtime metric named by the alert rules and the dashboard is one
 *             the runtime exports (runtime/observability/metrics.ts)
 *   dashboard grafana/dashboard.json parses, has panels with queries, unique ids
 *
 * Prints one line per check; exits 1 when any failed.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const DEPLOY = fileURLToPath(new URL('../../', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const require = createRequire(`${ROOT}package.json`);
const YAML = require('yaml');

let failures = 0;
const ok = (msg) => console.log(`  ok    ${msg}`);
const bad = (msg) => {
  failures++;
  console.log(`  FAIL  ${msg}`);
};
const check = (cond, good, fail) => (cond ? ok(good) : bad(fail ?? good));
const read = (rel) => readFileSync(`${DEPLOY}${rel}`, 'utf8');

// ---- Compose-style interpolation ----------------------------------------------------
function interpolate(value, env, used, where) {
  if (typeof value === 'string') {
    return value.replace(
      /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (m, name, op, arg, bare) => {
        if (m === '$$') return '$';
        const v = name ?? bare;
        used.add(v);
        const cur = env[v];
        const set = cur !== undefined;
        const nonEmpty = set && cur !== '';
        if (op === ':-') return nonEmpty ? cur : arg;
        if (op === '-') return set ? cur : arg;
        if (op === ':?' && !nonEmpty) throw new Error(`${where}: required variable ${v} is missing or empty: ${arg}`);
        if (op === '?' && !set) throw new Error(`${where}: required variable ${v} is missing: ${arg}`);
        return cur ?? '';
      },
    );
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, used, `${where}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, used, `${where}.${k}`)]));
  }
  return value;
}

function parseEnvFile(text) {
  const env = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].replace(/^(['"])(.*)\1$/, '$2');
  }
  return env;
}

function loadCompose(file, env) {
  const doc = YAML.parseDocument(read(file), { merge: true, uniqueKeys: true });
  if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message).join('; '));
  const raw = doc.toJS({ maxAliasCount: 1000 });
  const used = new Set();
  return { raw, cfg: interpolate(raw, env, used, file), used };
}

/** "8080:8080", "0.0.0.0:5432:5432", {published, target} -> host port numbers */
function hostPorts(svc) {
  return (svc.ports ?? []).map((p) => {
    if (typeof p === 'object') return Number(p.published);
    const parts = String(p).split(':');
    return parts.length >= 2 ? Number(parts[parts.length - 2]) : NaN;
  });
}

// ---- compose files ------------------------------------------------------------------
const envExample = parseEnvFile(read('.env.example'));
const SECRETS = ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'GRAFANA_ADMIN_PASSWORD', 'API_KEYS'];
for (const s of SECRETS) check(envExample[s] === '', `.env.example leaves ${s} empty`, `.env.example must not carry a value for ${s}`);
const testEnv = { ...envExample, ...Object.fromEntries(SECRETS.map((s) => [s, `dummy-${s.toLowerCase()}`])) };

const composeFiles = readdirSync(DEPLOY)
  .filter((f) => /^docker-compose.*\.ya?ml$/.test(f))
  .sort();
check(
  composeFiles.includes('docker-compose-db.yml') && composeFiles.includes('docker-compose-app.yml'),
  `compose files: ${composeFiles.join(', ')}`,
  'docker-compose-db.yml and docker-compose-app.yml must exist',
);
const composed = {};
const documented = new Set(Object.keys(envExample));
for (const line of read('.env.example').split('\n')) {
  const m = /^#\s*([A-Z_][A-Z0-9_]*)=/.exec(line);
  if (m) documented.add(m[1]);
}
for (const file of composeFiles) {
  let loaded;
  try {
    loaded = loadCompose(file, testEnv);
  } catch (err) {
    bad(`${file}: ${err.message}`);
    continue;
  }
  const { raw, cfg, used } = loaded;
  composed[file] = cfg;
  const services = cfg.services ?? {};
  ok(`${file}: parses and interpolates (${Object.keys(services).length} services)`);
  if ('version' in raw) bad(`${file}: top-level "version" is obsolete in Compose v2`);

  const undocumented = [...used].filter((v) => !documented.has(v));
  check(
    undocumented.length === 0,
    `${file}: every variable it uses is in .env.example`,
    `${file}: not in .env.example: ${undocumented.join(', ')}`,
  );

  // every required secret really is required
  for (const s of SECRETS.filter((x) => used.has(x))) {
    try {
      loadCompose(file, { ...testEnv, [s]: '' });
      bad(`${file}: starts with ${s} empty (use \${${s}:?...})`);
    } catch {
      ok(`${file}: refuses to start without ${s}`);
    }
  }
  // no literal secret values in the file
  const literal = [];
  const walk = (o, path) => {
    if (Array.isArray(o)) o.forEach((v, i) => walk(v, `${path}[${i}]`));
    else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) walk(v, `${path}.${k}`);
    else if (typeof o === 'string') {
      const key = path.split('.').pop();
      if (/PASS|SECRET|TOKEN|KEYS/i.test(key) && o !== '' && !/^\$\{[A-Z_]+(:?[-?][^}]*)?\}$/.test(o)) literal.push(path);
      if (/(requirepass|password)[= ]+(?!["']?\$\{)\S+/i.test(o) && !/\$\{/.test(o)) literal.push(path);
      if (/:\/\/[^/\s:@]+:[^@\s$]+@/.test(o)) literal.push(path);
    }
  };
  walk(raw, file);
  check(
    literal.length === 0,
    `${file}: no secret written in the file`,
    `${file}: literal secrets at ${literal.slice(0, 3).join(', ')}${literal.length > 3 ? ` and ${literal.length - 3} more` : ''}`,
  );

  const ports = Object.entries(services).flatMap(([name, s]) => hostPorts(s).map((p) => [p, name]));
  const dup = ports.filter(([p], i) => ports.findIndex(([q]) => q === p) !== i);
  check(
    !ports.some(([p]) => Number.isNaN(p)) && dup.length === 0,
    `${file}: host ports unique (${ports.map(([p]) => p).join(' ')})`,
    `${file}: bad or duplicate host ports: ${JSON.stringify(dup)}`,
  );
  for (const [name, s] of Object.entries(services)) {
    if (!s.image) bad(`${file}: service ${name} has no image`);
    if (s.container_name && s.deploy?.replicas > 1) bad(`${file}: ${name} has container_name and replicas > 1`);
    for (const v of s.volumes ?? []) {
      const src = typeof v === 'string' ? v.split(':')[0] : v.source;
      if (src?.startsWith('./') && !existsSync(`${DEPLOY}${src.slice(2)}`)) bad(`${file}: ${name} mounts missing ${src}`);
    }
  }
}

// ---- the seed's services ------------------------------------------------------------
const db = composed['docker-compose-db.yml']?.services ?? {};
const app = composed['docker-compose-app.yml']?.services ?? {};
check(/^postgres:15/.test(db.postgres?.image ?? ''), 'db: postgres 15', `db: postgres image is ${db.postgres?.image}`);
check(/^redis:7/.test(db.redis?.image ?? ''), 'db: redis 7', `db: redis image is ${db.redis?.image}`);
const natsCmd = [].concat(db.nats?.command ?? []).join(' ');
check(
  /^nats:/.test(db.nats?.image ?? '') && /--js\b/.test(natsCmd) && /nats-config\.conf/.test(natsCmd),
  'db: nats with JetStream and nats-config.conf',
  `db: nats command is "${natsCmd}"`,
);
const roleOf = (s) => {
  const e = s.environment ?? {};
  return Array.isArray(e) ? e.find((x) => x.startsWith('ROLE='))?.slice(5) : e.ROLE;
};
const byRole = {};
for (const [name, s] of Object.entries(app)) (byRole[roleOf(s)] ??= []).push(name);
for (const [role, n] of [
  ['api', 3],
  ['registry', 2],
  ['engine', 3],
  ['executor', 4],
]) {
  check(
    (byRole[role] ?? []).length === n,
    `app: ${n} x ${role} (${(byRole[role] ?? []).join(', ')})`,
    `app: ${(byRole[role] ?? []).length} x ${role}, expected ${n}`,
  );
}
const images = new Set(Object.values(app).map((s) => s.image));
check(images.size === 1, `app: one image for every role (${[...images].join(', ')})`, `app: several images: ${[...images].join(', ')}`);
const pools = Object.values(app).map((s) => {
  const cmd = [].concat(s.command ?? []).join(' ');
  return Number(/database\.max_connections=(\d+)/.exec(cmd)?.[1] ?? 50);
});
const pgMax = Number(/max_connections=(\d+)/.exec([].concat(db.postgres?.command ?? []).join(' '))?.[1] ?? 100);
const poolSum = pools.reduce((a, b) => a + b, 0);
check(
  poolSum < pgMax,
  `app: Postgres pools add up to ${poolSum} < max_connections ${pgMax}`,
  `app: Postgres pools add up to ${poolSum} >= max_connections ${pgMax}`,
);

// ---- HAProxy and Prometheus against the compose ports ----------------------------------
const portsOf = (role, container) =>
  (byRole[role] ?? [])
    .map((n) => {
      const p = (app[n].ports ?? []).map(String).find((x) => x.endsWith(`:${container}`));
      return p ? Number(p.split(':').at(-2)) : NaN;
    })
    .sort();
const apiPorts = portsOf('api', 8080);
const registryPorts = portsOf('registry', 8080);
const enginePorts = portsOf('engine', 9090);
const executorPorts = portsOf('executor', 9090);
const haproxy = read('haproxy/haproxy.cfg');
const backend = (name) => {
  const m = new RegExp(`^backend ${name}\\n([\\s\\S]*?)(?=^\\S|$(?![\\s\\S]))`, 'm').exec(haproxy);
  return m
    ? [...m[1].matchAll(/^\s*server\s+\S+\s+[^:\s]+:(\d+)(.*)$/gm)].map((x) => ({ port: Number(x[1]), backup: /\bbackup\b/.test(x[2]) }))
    : [];
};
const http = backend('http_back')
  .map((s) => s.port)
  .sort();
check(
  JSON.stringify(http) === JSON.stringify(apiPorts),
  `haproxy: http_back = api ports ${apiPorts.join(',')}`,
  `haproxy: http_back ports ${http} != api ports ${apiPorts}`,
);
const reg = backend('registry_back')
  .filter((s) => !s.backup)
  .map((s) => s.port)
  .sort();
check(
  JSON.stringify(reg) === JSON.stringify(registryPorts),
  `haproxy: registry_back = registry ports ${registryPorts.join(',')}`,
  `haproxy: registry_back ports ${reg} != registry ports ${registryPorts}`,
);
check(
  /option httpchk/.test(haproxy) &&
    /http-check send meth GET uri \/health ver HTTP\/1\.1 hdr Host/.test(haproxy) &&
    /^listen stats\n\s+bind \*:8404/m.test(haproxy),
  'haproxy: GET /health checks (HTTP/1.1), stats on 8404',
  'haproxy: health check or stats listener missing',
);

const prom = YAML.parse(read('prometheus/prometheus.yml'));
const targetsOf = (job) =>
  (prom.scrape_configs.find((j) => j.job_name === job)?.static_configs ?? [])
    .flatMap((c) => c.targets)
    .map((t) => Number(t.split(':')[1]))
    .sort();
for (const [job, want] of [
  ['workflow-api', apiPorts],
  ['workflow-registry', registryPorts],
  ['workflow-engine', enginePorts],
  ['workflow-executor', executorPorts],
]) {
  const got = targetsOf(job);
  check(
    want.length > 0 && JSON.stringify(got) === JSON.stringify(want),
    `prometheus: ${job} scrapes ${want.join(',')}`,
    `prometheus: ${job} targets ${got} != compose ports ${want}`,
  );
}
check(
  (prom.rule_files ?? []).includes('alert.rules.yml'),
  'prometheus: loads alert.rules.yml',
  'prometheus: rule_files does not name alert.rules.yml',
);

// ---- metric names used vs exported -------------------------------------------------------
const metricsSrc = readFileSync(`${ROOT}runtime/observability/metrics.ts`, 'utf8');
const exported = new Set([...metricsSrc.matchAll(/name:\s*'([a-z_:][a-z0-9_:]*)'/g)].map((m) => m[1]));
const required = [
  'http_requests_total',
  'http_request_duration_seconds',
  'workflow_runs_started_total',
  'workflow_runs_completed_total',
  'workflow_runs_failed_total',
  'queue_pending',
  'executor_pool_utilization',
  'store_flush_duration_seconds',
];
const missingExport = required.filter((m) => !exported.has(m));
check(
  missingExport.length === 0,
  `runtime exports the ${required.length} metrics the dashboards use`,
  `runtime no longer exports: ${missingExport.join(', ')}`,
);
const RUNTIME_PREFIX = /^(http_|workflow_|queue_|executor_|store_|engine_|admission_|retention_|api_)/;
const base = (n) => n.replace(/_(bucket|count|sum)$/, '');
function metricNames(expr) {
  const words = [...expr.matchAll(/\b([a-z_][a-z0-9_]*)\b(?=\s*[{[)\s]|$)/g)].map((m) => m[1]);
  return words.filter((w) => RUNTIME_PREFIX.test(w));
}
const rules = YAML.parse(read('prometheus/alert.rules.yml'));
const ruleExprs = rules.groups.flatMap((g) => g.rules.map((r) => [r.alert, r.expr]));
const dashboardText = read('grafana/dashboard.json');
let dash = null;
try {
  dash = JSON.parse(dashboardText);
  ok('grafana/dashboard.json: valid JSON');
} catch (err) {
  bad(`grafana/dashboard.json: ${err.message}`);
}
const panels = dash ? (dash.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]) : [];
const dashExprs = panels.flatMap((p) => (p.targets ?? []).map((t) => [p.title, t.expr]));
const unknown = [];
for (const [where, expr] of [...ruleExprs, ...dashExprs]) {
  for (const n of metricNames(expr)) if (!exported.has(base(n)) && !exported.has(n)) unknown.push(`${where}: ${n}`);
}
check(
  unknown.length === 0,
  `alert rules (${ruleExprs.length}) and dashboard queries (${dashExprs.length}) name only exported runtime metrics`,
  `unknown metrics: ${unknown.join('; ')}`,
);
const alertNames = new Set(ruleExprs.map(([a]) => a));
for (const a of ['HighErrorRate', 'HighLatency', 'DatabaseHighConnections', 'ConsumerLagHigh', 'WorkflowRunsFailing']) {
  check(alertNames.has(a), `alert ${a} defined`, `alert ${a} missing`);
}
if (dash) {
  const ids = panels.map((p) => p.id);
  check(
    ids.length > 0 && new Set(ids).size === ids.length,
    `dashboard: ${ids.length} panels, unique ids`,
    'dashboard: no panels or duplicate ids',
  );
  check(
    panels.filter((p) => p.type !== 'row').every((p) => (p.targets ?? []).length > 0 && p.targets.every((t) => t.expr)),
    'dashboard: every panel has queries',
    'dashboard: a panel without queries',
  );
  check(typeof dash.uid === 'string' && typeof dash.title === 'string', `dashboard: uid "${dash.uid}"`, 'dashboard: uid/title missing');
  const usedMetrics = new Set(dashExprs.flatMap(([, e]) => metricNames(e).map(base)));
  const notShown = required.filter((m) => !usedMetrics.has(m));
  check(notShown.length === 0, 'dashboard: shows every runtime metric of the brief', `dashboard: does not show ${notShown.join(', ')}`);
}

console.log(failures ? `check-deploy: ${failures} failed` : 'check-deploy: all passed');
process.exit(failures ? 1 : 0);
