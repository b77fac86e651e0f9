import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import ms from 'ms';
import YAML from 'yaml';
import { RuntimeError } from '../errors/index.js';
import { compiled } from '../schema/index.js';
import { ConfigSchema, DURATION_KEYS, type Config } from './schema.js';
import { DEFAULTS } from './defaults.js';

type Tree = Record<string, unknown>;

export interface LoadOptions {
  /** Path of a YAML file; relative paths resolve against `cwd`. */
  file?: string;
  /** Environment to read overrides from (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
  /** `key.path=value` overrides, highest precedence (from --set). */
  set?: string[];
  cwd?: string;
}

/**
 * Resolves the configuration once: defaults, then the YAML file, then the
 * seed's environment variables, then --set overrides; converts durations,
 * validates, and returns a frozen object. Throws E_CONFIG naming the bad key.
 */
export function loadConfig(opts: LoadOptions = {}): Readonly<Config> {
  const env = opts.env ?? process.env;
  const tree = structuredClone(DEFAULTS) as Tree;
  const file = opts.file ?? env.CONFIG_FILE;
  if (file) merge(tree, readYaml(resolve(opts.cwd ?? process.cwd(), file)), '');
  applyEnv(tree, env);
  for (const kv of opts.set ?? []) applySet(tree, kv);
  convertDurations(tree, '');
  const errors = [...compiled(ConfigSchema).Errors(tree)];
  if (errors.length) {
    const lines = errors
      .slice(0, 10)
      .map((e) => `${e.path.slice(1).replaceAll('/', '.') || '(root)'}: ${e.message} (got ${JSON.stringify(e.value)})`);
    throw new RuntimeError('E_CONFIG', `invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return deepFreeze(tree) as Readonly<Config>;
}

function readYaml(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RuntimeError('E_CONFIG', `cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const doc: unknown = YAML.parse(text) ?? {};
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error('top level must be a mapping');
    return doc as Tree;
  } catch (err) {
    throw new RuntimeError('E_CONFIG', `config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
}

/** Keys that moved, so that an old file gets told the new name instead of "unknown". */
const MOVED: Record<string, string> = {
  'nats.ack_wait': 'queue.ack_wait',
  'nats.max_deliver': 'queue.max_deliver',
  'nats.duplicate_window': 'queue.duplicate_window',
  'nats.max_pending_publishes': 'queue.max_pending_publishes',
};

/** Copies `src` into `dst`; unknown keys are an error so typos do not pass silently. */
function merge(dst: Tree, src: Tree, path: string): void {
  for (const [k, v] of Object.entries(src)) {
    const key = path ? `${path}.${k}` : k;
    if (MOVED[key])
      throw new RuntimeError('E_CONFIG', `configuration key "${key}" is now "${MOVED[key]}" (it applies to every queue driver)`);
    if (!(k in dst)) throw new RuntimeError('E_CONFIG', `unknown configuration key "${key}"`);
    const cur = dst[k];
    if (isTree(cur) && isTree(v)) merge(cur, v, key);
    else if (isTree(cur)) throw new RuntimeError('E_CONFIG', `configuration key "${key}" must be a mapping`);
    else dst[k] = v;
  }
}

function applyEnv(tree: Tree, env: NodeJS.ProcessEnv): void {
  const db = tree.database as Tree;
  const redis = tree.redis as Tree;
  const nats = tree.nats as Tree;
  const registry = tree.registry as Tree;
  if (env.DATABASE_URL) db.url = env.DATABASE_URL;
  if (env.REDIS_URL) redis.url = env.REDIS_URL;
  if (env.NATS_URL)
    nats.urls = env.NATS_URL.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (env.REGISTRY_SERVICE_URL) registry.endpoint = env.REGISTRY_SERVICE_URL;
  if (env.DATABASE_PASSWORD) db.password = env.DATABASE_PASSWORD;
  if (env.REDIS_PASSWORD) redis.password = env.REDIS_PASSWORD;
  if (env.LOG_LEVEL) (tree.logging as Tree).level = env.LOG_LEVEL;
  if (env.PORT) (tree.api as Tree).address = `:${env.PORT}`;
  if (env.WF_MODE) tree.mode = env.WF_MODE;
  if (env.API_KEYS !== undefined) (tree.auth as Tree).api_keys = env.API_KEYS;
}

function applySet(tree: Tree, kv: string): void {
  const eq = kv.indexOf('=');
  if (eq < 1) throw new RuntimeError('E_CONFIG', `--set expects key.path=value, got "${kv}"`);
  const path = kv.slice(0, eq).split('.');
  const raw = kv.slice(eq + 1);
  // string keys take the text as it is ("wf:a:" stays a string); others read it as YAML
  const current = path.reduce<unknown>((o, k) => (isTree(o) ? o[k] : undefined), tree);
  let value: unknown = raw;
  if (typeof current !== 'string') {
    try {
      value = YAML.parse(raw);
    } catch {
      /* keep the raw string */
    }
  }
  const obj: Tree = {};
  let cur = obj;
  path.forEach((p, i) => {
    if (i === path.length - 1) cur[p] = value ?? '';
    else cur = cur[p] = {} as Tree;
  });
  merge(tree, obj, '');
}

function convertDurations(tree: Tree, path: string): void {
  for (const [k, v] of Object.entries(tree)) {
    const key = path ? `${path}.${k}` : k;
    if (isTree(v)) convertDurations(v, key);
    else if (DURATION_KEYS.has(key) && typeof v === 'string') {
      let n: number | undefined;
      try {
        // "off" (a retention that keeps forever, a delay not wanted) is 0
        n = v.trim() === 'off' ? 0 : /^\d+$/.test(v.trim()) ? Number(v) : ms(v as ms.StringValue);
      } catch {
        n = undefined; // ms('') throws
      }
      if (typeof n !== 'number' || !Number.isFinite(n)) {
        throw new RuntimeError(
          'E_CONFIG',
          `configuration key "${key}" must be a duration such as "100ms", "30s" or "5m" (got ${JSON.stringify(v)})`,
        );
      }
      tree[k] = Math.round(n);
    }
  }
}

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
