import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS, databaseUrl, loadConfig, parseAddress, redisUrl } from '../../dist/runtime/config/index.js';
import { RuntimeError } from '../../dist/runtime/errors/index.js';

const dir = mkdtempSync(join(tmpdir(), 'wf-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function yamlFile(text: string): string {
  const path = join(dir, `c${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** Runs `fn`, expects it to throw a RuntimeError E_CONFIG, and returns its message. */
function configError(fn: () => unknown): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'loadConfig should have thrown').toBeInstanceOf(RuntimeError);
  expect((caught as RuntimeError).code).toBe('E_CONFIG');
  return (caught as RuntimeError).message;
}

describe('loadConfig: defaults', () => {
  it('returns the built-in defaults when given no file, no env and no --set', () => {
    const c = loadConfig({ env: {} });
    expect(c).toEqual(DEFAULTS);
    expect(c.api.address).toBe(':8080');
    expect(c.api.max_body_bytes).toBe(1024 * 1024);
    expect(c.api.read_timeout).toBe(30_000);
    expect(c.database.port).toBe(5432);
    expect(c.database.url).toBe('');
    expect(c.redis.ttl).toBe(30 * 60_000);
    expect(c.nats.urls).toEqual(['nats://127.0.0.1:4222']);
    expect(c.registry.endpoint).toBe('');
    expect(c.registry.cache_ttl).toBe(5 * 60_000);
    expect(c.executor.max_retries).toBe(3);
    expect(c.executor.retry_delay).toBe(1000);
    expect(c.logging.level).toBe('info');
  });

  it('returns a new object each time and never mutates DEFAULTS', () => {
    const before = structuredClone(DEFAULTS);
    const a = loadConfig({
      env: { DATABASE_URL: 'postgres://x@h/db', NATS_URL: 'nats://a:1' },
      set: ['api.max_body_bytes=77', 'executor.function_dirs=[only]'],
    });
    expect(a.api.max_body_bytes).toBe(77);
    expect(DEFAULTS).toEqual(before);
    const b = loadConfig({ env: {} });
    expect(b).not.toBe(a);
    expect(b.api.max_body_bytes).toBe(1024 * 1024);
    expect(b.nats.urls).toEqual(['nats://127.0.0.1:4222']);
    expect(b.executor.function_dirs).toEqual(['steps', 'functions']);
  });

  it('reads CONFIG_FILE from the env when no file option is given', () => {
    const file = yamlFile('api:\n  max_body_bytes: 4321\n');
    expect(loadConfig({ env: { CONFIG_FILE: file } }).api.max_body_bytes).toBe(4321);
  });
});

describe('loadConfig: YAML file', () => {
  it('overrides defaults key by key and keeps the keys it does not mention', () => {
    const file = yamlFile(
      [
        'api:',
        '  address: "127.0.0.1:9999"',
        '  debug: true',
        'database:',
        '  host: db.example',
        '  port: 6543',
        '  writer:',
        '    batch_size: 42',
        'nats:',
        '  urls: ["nats://n1:4222", "nats://n2:4222"]',
        'logging:',
        '  level: debug',
      ].join('\n'),
    );
    const c = loadConfig({ file, env: {} });
    expect(c.api.address).toBe('127.0.0.1:9999');
    expect(c.api.debug).toBe(true);
    expect(c.api.max_body_bytes).toBe(DEFAULTS.api.max_body_bytes);
    expect(c.database.host).toBe('db.example');
    expect(c.database.port).toBe(6543);
    expect(c.database.username).toBe('postgres');
    expect(c.database.writer).toEqual({ batch_size: 42, flush_interval: 10, shards: 1 });
    expect(c.nats.urls).toEqual(['nats://n1:4222', 'nats://n2:4222']);
    expect(c.nats.stream_name).toBe('workflow-events');
    expect(c.logging.level).toBe('debug');
  });

  it('resolves a relative file path against cwd', () => {
    writeFileSync(join(dir, 'relative.yaml'), 'redis:\n  port: 6390\n');
    expect(loadConfig({ file: 'relative.yaml', cwd: dir, env: {} }).redis.port).toBe(6390);
  });

  it('accepts an empty file (only comments) as "no overrides"', () => {
    const file = yamlFile('# nothing here\n');
    expect(loadConfig({ file, env: {} })).toEqual(DEFAULTS);
  });

  it('loads the shipped config/default.yaml and config/poc.yaml', () => {
    const root = new URL('../../', import.meta.url).pathname;
    const d = loadConfig({ file: `${root}config/default.yaml`, env: {} });
    expect(d.api.read_timeout).toBe(30_000);
    expect(d.executor.queue_poll_interval).toBe(100);
    const p = loadConfig({ file: `${root}config/poc.yaml`, env: {} });
    expect(p.database.host).toBe('dbserver.poc.local');
    expect(p.nats.subject_prefix).toBe('workflow.poc');
    expect(p.executor.worker_count).toBe(10);
    expect(p.registry.endpoint).toBe('http://workflow-registry:8080');
  });

  it('a missing file is an E_CONFIG error naming the path', () => {
    const missing = join(dir, 'does-not-exist.yaml');
    const msg = configError(() => loadConfig({ file: missing, env: {} }));
    expect(msg).toContain('cannot read config file');
    expect(msg).toContain(missing);
  });

  it('invalid YAML and a non-mapping top level are E_CONFIG errors', () => {
    expect(configError(() => loadConfig({ file: yamlFile('api: [unclosed\n'), env: {} }))).toContain('is not valid YAML');
    expect(configError(() => loadConfig({ file: yamlFile('- a\n- b\n'), env: {} }))).toContain('top level must be a mapping');
    expect(configError(() => loadConfig({ file: yamlFile('just a string\n'), env: {} }))).toContain('top level must be a mapping');
  });
});

describe('loadConfig: environment overrides', () => {
  it('DATABASE_URL, REDIS_URL, NATS_URL (comma list) and REGISTRY_SERVICE_URL override defaults', () => {
    const c = loadConfig({
      env: {
        DATABASE_URL: 'postgres://u:p@db:5432/wf',
        REDIS_URL: 'redis://cache:6380/2',
        NATS_URL: 'nats://a:4222, nats://b:4222 ,,nats://c:4222,',
        REGISTRY_SERVICE_URL: 'http://registry:8080',
      },
    });
    expect(c.database.url).toBe('postgres://u:p@db:5432/wf');
    expect(c.redis.url).toBe('redis://cache:6380/2');
    expect(c.nats.urls).toEqual(['nats://a:4222', 'nats://b:4222', 'nats://c:4222']);
    expect(c.registry.endpoint).toBe('http://registry:8080');
    // the URL wins over the parts
    expect(databaseUrl(c.database)).toBe('postgres://u:p@db:5432/wf');
    expect(redisUrl(c.redis)).toBe('redis://cache:6380/2');
  });

  it('a single NATS_URL becomes a one-element list', () => {
    expect(loadConfig({ env: { NATS_URL: 'nats://only:4222' } }).nats.urls).toEqual(['nats://only:4222']);
  });

  it('env overrides the YAML file', () => {
    const file = yamlFile('nats:\n  urls: ["nats://from-file:4222"]\nregistry:\n  endpoint: "http://from-file"\n');
    const c = loadConfig({ file, env: { NATS_URL: 'nats://from-env:4222', REGISTRY_SERVICE_URL: 'http://from-env' } });
    expect(c.nats.urls).toEqual(['nats://from-env:4222']);
    expect(c.registry.endpoint).toBe('http://from-env');
  });

  it('DATABASE_PASSWORD, REDIS_PASSWORD, LOG_LEVEL and PORT are applied', () => {
    const c = loadConfig({ env: { DATABASE_PASSWORD: 'p@ss/word', REDIS_PASSWORD: 'r', LOG_LEVEL: 'warn', PORT: '7070' } });
    expect(c.database.password).toBe('p@ss/word');
    expect(c.redis.password).toBe('r');
    expect(c.logging.level).toBe('warn');
    expect(c.api.address).toBe(':7070');
    expect(databaseUrl(c.database)).toBe('postgres://postgres:p%40ss%2Fword@127.0.0.1:5432/workflow?sslmode=disable');
    expect(redisUrl(c.redis)).toBe('redis://:r@127.0.0.1:6379/0');
  });

  it('ignores variables it does not know and empty values', () => {
    const c = loadConfig({ env: { DATABASE_URL: '', NATS_URL: '', SOMETHING_ELSE: 'x' } });
    expect(c.database.url).toBe('');
    expect(c.nats.urls).toEqual(['nats://127.0.0.1:4222']);
  });
});

describe('loadConfig: --set overrides', () => {
  it('sets numbers, booleans, lists and strings by key path', () => {
    const c = loadConfig({
      env: {},
      set: [
        'api.max_body_bytes=2048',
        'api.debug=true',
        'nats.urls=[nats://x:1, nats://y:2]',
        'database.writer.shards=5',
        'logging.level=error',
      ],
    });
    expect(c.api.max_body_bytes).toBe(2048);
    expect(c.api.debug).toBe(true);
    expect(c.nats.urls).toEqual(['nats://x:1', 'nats://y:2']);
    expect(c.database.writer.shards).toBe(5);
    expect(c.logging.level).toBe('error');
  });

  it('string keys keep their text as given (no YAML re-reading)', () => {
    const c = loadConfig({
      env: {},
      set: ['redis.key_prefix=wf:a:', 'database.password=123', 'database.username=true', 'api.address=127.0.0.1:0'],
    });
    expect(c.redis.key_prefix).toBe('wf:a:');
    expect(c.database.password).toBe('123');
    expect(c.database.username).toBe('true');
    expect(c.api.address).toBe('127.0.0.1:0');
  });

  it('has the highest precedence: --set > env > file > defaults', () => {
    const file = yamlFile('registry:\n  endpoint: "http://file"\n  cache_ttl: 1m\napi:\n  max_body_bytes: 100\n');
    const c = loadConfig({ file, env: { REGISTRY_SERVICE_URL: 'http://env' }, set: ['registry.endpoint=http://set'] });
    expect(c.registry.endpoint).toBe('http://set');
    expect(c.registry.cache_ttl).toBe(60_000);
    expect(c.api.max_body_bytes).toBe(100);
    const later = loadConfig({ env: {}, set: ['api.max_body_bytes=1', 'api.max_body_bytes=2'] });
    expect(later.api.max_body_bytes).toBe(2);
  });

  it('a --set without "=" or without a key is an E_CONFIG error', () => {
    expect(configError(() => loadConfig({ env: {}, set: ['api.debug'] }))).toContain('--set expects key.path=value');
    expect(configError(() => loadConfig({ env: {}, set: ['=3'] }))).toContain('--set expects key.path=value');
  });

  it('setting a section to a scalar is an E_CONFIG error naming the section', () => {
    expect(configError(() => loadConfig({ env: {}, set: ['database=1'] }))).toContain('"database"');
  });
});

describe('loadConfig: durations', () => {
  it('converts "100ms", "30s", "5m", "1h", "1.5s" and digit strings to milliseconds', () => {
    const file = yamlFile(
      [
        'executor:',
        '  queue_poll_interval: 100ms',
        '  retry_delay: 30s',
        '  step_timeout: "1.5s"',
        'registry:',
        '  cache_ttl: 5m',
        'redis:',
        '  ttl: 1h',
        '  command_timeout: "250"',
        'queue:',
        '  duplicate_window: 700',
      ].join('\n'),
    );
    const c = loadConfig({ file, env: {} });
    expect(c.executor.queue_poll_interval).toBe(100);
    expect(c.executor.retry_delay).toBe(30_000);
    expect(c.executor.step_timeout).toBe(1500);
    expect(c.registry.cache_ttl).toBe(300_000);
    expect(c.redis.ttl).toBe(3_600_000);
    expect(c.redis.command_timeout).toBe(250);
    expect(c.queue.duplicate_window).toBe(700);
  });

  it('converts durations given with --set', () => {
    const c = loadConfig({ env: {}, set: ['api.wait_timeout=2s', 'queue.ack_wait=45s', 'database.writer.flush_interval=20ms'] });
    expect(c.api.wait_timeout).toBe(2000);
    expect(c.queue.ack_wait).toBe(45_000);
    expect(c.database.writer.flush_interval).toBe(20);
  });

  it('a bad duration is an E_CONFIG error naming the key', () => {
    const msg = configError(() => loadConfig({ env: {}, set: ['api.read_timeout=soon'] }));
    expect(msg).toContain('api.read_timeout');
    expect(msg).toContain('soon');
    const fromFile = configError(() => loadConfig({ file: yamlFile('queue:\n  ack_wait: 10 parsecs\n'), env: {} }));
    expect(fromFile).toContain('queue.ack_wait');
  });

  it('a negative duration is an E_CONFIG error naming the key', () => {
    expect(configError(() => loadConfig({ env: {}, set: ['executor.retry_delay=-5s'] }))).toContain('executor.retry_delay');
  });

  it('an empty duration is an E_CONFIG error naming the key (from --set and from YAML)', () => {
    expect(configError(() => loadConfig({ env: {}, set: ['api.read_timeout='] }))).toContain('api.read_timeout');
    expect(configError(() => loadConfig({ file: yamlFile('redis:\n  ttl: ""\n'), env: {} }))).toContain('redis.ttl');
  });

  it('a string on a key that is not a duration is not converted (and fails the type check)', () => {
    const msg = configError(() => loadConfig({ env: {}, set: ['api.max_body_bytes=5m'] }));
    expect(msg).toContain('api.max_body_bytes');
  });
});

describe('loadConfig: validation errors', () => {
  it('an unknown key in the YAML file is an E_CONFIG error naming the full key', () => {
    expect(configError(() => loadConfig({ file: yamlFile('api:\n  adress: ":1"\n'), env: {} }))).toContain('"api.adress"');
    expect(configError(() => loadConfig({ file: yamlFile('databse:\n  port: 1\n'), env: {} }))).toContain('"databse"');
    expect(configError(() => loadConfig({ file: yamlFile('database:\n  writer:\n    batchsize: 1\n'), env: {} }))).toContain(
      '"database.writer.batchsize"',
    );
  });

  it('an unknown key in --set is an E_CONFIG error naming the key', () => {
    expect(configError(() => loadConfig({ env: {}, set: ['api.nope=1'] }))).toContain('"api.nope"');
    expect(configError(() => loadConfig({ env: {}, set: ['nope.x=1'] }))).toContain('"nope"');
  });

  it('a bad type names the key: database.port "abc"', () => {
    const viaSet = configError(() => loadConfig({ env: {}, set: ['database.port=abc'] }));
    expect(viaSet).toContain('database.port');
    expect(viaSet).toContain('"abc"');
    const viaFile = configError(() => loadConfig({ file: yamlFile('database:\n  port: "abc"\n'), env: {} }));
    expect(viaFile).toContain('database.port');
  });

  it('out-of-range values, bad enums and bad patterns name the key', () => {
    expect(configError(() => loadConfig({ env: {}, set: ['database.port=70000'] }))).toContain('database.port');
    expect(configError(() => loadConfig({ env: {}, set: ['logging.level=loud'] }))).toContain('logging.level');
    expect(configError(() => loadConfig({ env: {}, set: ['database.ssl_mode=maybe'] }))).toContain('database.ssl_mode');
    expect(configError(() => loadConfig({ env: {}, set: ['api.address=localhost'] }))).toContain('api.address');
    expect(configError(() => loadConfig({ env: {}, set: ['nats.stream_name=has space'] }))).toContain('nats.stream_name');
    expect(configError(() => loadConfig({ env: {}, set: ['executor.worker_count=0'] }))).toContain('executor.worker_count');
    expect(configError(() => loadConfig({ env: {}, set: ['nats.urls=[]'] }))).toContain('nats.urls');
    expect(configError(() => loadConfig({ env: {}, set: ['api.debug=maybe'] }))).toContain('api.debug');
  });

  it('a bad env value is reported by the key it lands on', () => {
    expect(configError(() => loadConfig({ env: { LOG_LEVEL: 'chatty' } }))).toContain('logging.level');
    expect(configError(() => loadConfig({ env: { PORT: 'http' } }))).toContain('api.address');
  });
});

describe('loadConfig: the result is frozen', () => {
  it('freezes every level, including arrays', () => {
    const c = loadConfig({ env: {} });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.api)).toBe(true);
    expect(Object.isFrozen(c.database.writer)).toBe(true);
    expect(Object.isFrozen(c.nats.urls)).toBe(true);
    expect(Object.isFrozen(c.executor.function_dirs)).toBe(true);
  });

  it('assignments throw (ESM is strict mode) and leave the value unchanged', () => {
    const c = loadConfig({ env: {} }) as any;
    expect(() => {
      c.api.max_body_bytes = 1;
    }).toThrow(TypeError);
    expect(() => {
      c.database.writer.shards = 9;
    }).toThrow(TypeError);
    expect(() => {
      c.nats.urls.push('nats://evil');
    }).toThrow(TypeError);
    expect(() => {
      c.newKey = 1;
    }).toThrow(TypeError);
    expect(c.api.max_body_bytes).toBe(1024 * 1024);
    expect(c.database.writer.shards).toBe(1);
    expect(c.nats.urls).toEqual(['nats://127.0.0.1:4222']);
  });
});

describe('parseAddress', () => {
  it('splits host:port; an empty host listens on all interfaces', () => {
    expect(parseAddress(':8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
  });
});
