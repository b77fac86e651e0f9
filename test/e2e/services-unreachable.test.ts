import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/env.js';

/** Ports on 127.0.0.1 where nothing listens: opened by the OS, then closed again. */
async function closedPorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    ports.push(
      await new Promise<number>((resolve) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      }),
    );
  }
  return ports;
}

function run(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['dist/runtime/main.js', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, ms: Date.now() - t0 });
    }),
  );
}

describe('starting with services that do not answer', () => {
  it('names every unreachable service, the address tried and the variable to set, at once, and exits 1', async () => {
    const [pg, nats, redis] = await closedPorts(3);
    const r = await run({
      DATABASE_URL: `postgres://postgres@127.0.0.1:${pg}/workflow`,
      NATS_URL: `nats://127.0.0.1:${nats}`,
      REDIS_URL: `redis://127.0.0.1:${redis}`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'cannot start in services mode (DATABASE_URL, NATS_URL, REDIS_URL are set): 3 of the services it needs did not answer',
    );
    expect(r.stderr).toContain(`PostgreSQL at 127.0.0.1:${pg}: connection refused; set DATABASE_URL to where it runs`);
    expect(r.stderr).toContain(`NATS at nats://127.0.0.1:${nats}: connection refused; set NATS_URL to where it runs`);
    expect(r.stderr).toContain(`Redis at 127.0.0.1:${redis}: connection refused; set REDIS_URL to where it runs`);
    // one readable line per service, not a stack
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.ms).toBeLessThan(15_000);
  });

  it('in services mode with the postgres queue, needs (and names) only PostgreSQL', async () => {
    const [pg] = await closedPorts(1);
    const r = await run({ DATABASE_URL: `postgres://postgres@127.0.0.1:${pg}/workflow` }, [
      '--set',
      'queue.driver=postgres',
      '--set',
      'cache.driver=memory',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('1 of the services it needs did not answer');
    expect(r.stderr).toContain(`PostgreSQL at 127.0.0.1:${pg}`);
    expect(r.stderr).not.toContain('NATS at');
  });
});
