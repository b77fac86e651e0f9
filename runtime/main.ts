#!/usr/bin/env node
/**
 * The one entry point: `node dist/runtime/main.js --role <all|api|registry|engine|executor>`
 * (or ROLE=...). Options: --config <file> (or CONFIG_FILE), --set key.path=value (repeatable),
 * --dev (`npm run dev`: tsc --watch, and functions reload on save).
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { loadConfig, parseAddress, type Config } from './config/index.js';
import { startCompilerWatch, type CompilerWatch } from './dev-compiler.js';
import { createLogger, createMetrics, type Logger } from './observability/index.js';
import { ServicesUnreachableError } from './modes.js';
import { ROLES, startSystem, type Role, type System } from './system.js';

const USAGE = `usage: node dist/runtime/main.js [--role all|api|registry|engine|executor] [--embedded] [--config file.yaml] [--set key.path=value ...] [--dev]`;

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        role: { type: 'string' },
        config: { type: 'string' },
        set: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
        dev: { type: 'boolean' },
        embedded: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(USAGE);
    return;
  }
  // a local .env (never committed) supplies secrets such as DATABASE_URL
  for (const envFile of ['.env', fileURLToPath(new URL('../../.env', import.meta.url))]) {
    if (existsSync(envFile)) {
      process.loadEnvFile(envFile);
      break;
    }
  }
  const role = (args.role ?? process.env.ROLE ?? 'all') as Role;
  if (!ROLES.includes(role)) {
    console.error(`unknown role "${role}"; expected one of ${ROLES.join(', ')}\n${USAGE}`);
    process.exit(2);
  }
  let config;
  try {
    config = loadConfig({
      file: args.config ?? process.env.CONFIG_FILE ?? fileURLToPath(new URL('../../config/default.yaml', import.meta.url)),
      // --embedded is `mode: embedded`, below any --set
      set: [...(args.embedded ? ['mode=embedded'] : []), ...(args.set ?? [])],
    });
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  const log = createLogger(config.logging, { role });
  const metrics = createMetrics();
  let compiler: CompilerWatch | null = null;
  let system;
  try {
    if (args.dev) {
      compiler = startCompilerWatch(fileURLToPath(new URL('../../', import.meta.url)), log);
      await compiler.ready;
    }
    system = await startSystem({ role, config, log, metrics, dev: args.dev });
  } catch (err) {
    // a message a person can act on, on the terminal; the JSON log has it too
    if (err instanceof ServicesUnreachableError) {
      process.stderr.write(`${err.message}\n`);
      log.fatal(
        {
          code: err.code,
          mode: err.plan.mode,
          unreachable: err.unreachable.map(({ name, address, why, variable }) => ({ name, address, why, variable })),
        },
        'start failed: services unreachable',
      );
    } else {
      log.fatal({ err }, 'start failed');
    }
    compiler?.stop();
    await flushed(log);
    process.exit(1);
  }
  announce(system, config, log);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      // a second Ctrl-C: the person does not want to wait; what is not acked is delivered again
      log.warn({ signal }, 'second signal: exiting now (runs in flight are delivered again)');
      void flushed(log).then(() => process.exit(1));
      return;
    }
    stopping = true;
    const graceMs = config.shutdown.grace;
    log.info(
      { signal, grace_ms: graceMs, drain_delay_ms: config.shutdown.drain_delay },
      'stopping: no new runs; runs in flight may finish within shutdown.grace',
    );
    // the last resort, should a step of the stop itself hang (a database that does not answer)
    const force = setTimeout(
      () => {
        log.error(
          { after_ms: graceMs + config.shutdown.drain_delay + 15_000 },
          'stop did not finish; exiting now (runs not acked are delivered again)',
        );
        void flushed(log).then(() => process.exit(1));
      },
      graceMs + config.shutdown.drain_delay + 15_000,
    );
    force.unref();
    compiler?.stop();
    const { handedBack } = await system.stop();
    log.info({ handed_back: handedBack }, 'stopped');
    await flushed(log);
    // no process.exit here: the log's last writes finish by themselves (an exit could cut the
    // 'stopped' line, seen under load); whatever still holds the event loop gets 2 s
    process.exitCode = 0;
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
}

/** The log is written asynchronously: what is buffered must reach stdout before the process exits. */
function flushed(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    log.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * The start banner: one line for a person (on stderr, so stdout stays JSON for log
 * collectors) and the same facts in the JSON log.
 */
function announce(system: System, config: Readonly<Config>, log: Logger): void {
  const { plan } = system;
  const front = system.role === 'all' || system.role === 'api' || system.role === 'registry';
  const host = parseAddress(config.api.address).host;
  const url = system.port === null ? null : `http://${host === '0.0.0.0' || host === '' ? '127.0.0.1' : host}:${system.port}`;
  const facts = {
    mode: plan.mode,
    reason: plan.reason,
    data: system.dataLocation,
    queue: plan.queue === 'nats' ? 'NATS JetStream' : 'PostgreSQL',
    cache: plan.cache === 'redis' ? 'Redis' : 'in-process',
    url,
    api_keys: system.apiKeys,
  };
  log.info(facts, 'started');
  const where = url ? (front ? ` · open ${url}` : ` · ops endpoints on ${url}`) : '';
  const keys = !front ? '' : system.apiKeys.length ? ` · API keys: ${system.apiKeys.join(', ')}` : ' · API open (no API_KEYS)';
  process.stderr.write(
    `workflow runtime (${system.role}) ready: ${plan.mode} mode (${plan.reason}) · data in ${facts.data} · queue: ${facts.queue} · cache: ${facts.cache}${keys}${where}\n`,
  );
}

void main();
