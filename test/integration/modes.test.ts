import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../dist/runtime/config/index.js';
import { onThisMachineOnly, planServices, ServicesUnreachableError } from '../../dist/runtime/modes.js';
import { ROOT } from '../helpers/env.js';

/**
 * Which mode a start takes. Probes go to 127.0.0.1 only: ports where this test listens
 * (something answers) and ports it has just closed (nothing does).
 */
describe('planServices', () => {
  const listening: Server[] = [];
  let up: number[] = [];
  let down: number[] = [];
  const port = (s: Server) => (s.address() as { port: number }).port;

  beforeAll(async () => {
    const open = () =>
      new Promise<Server>((resolve) => {
        const s = createServer((c) => c.destroy()).listen(0, '127.0.0.1', () => resolve(s));
      });
    for (let i = 0; i < 3; i++) listening.push(await open());
    up = listening.map(port);
    const closed = [await open(), await open(), await open()];
    down = closed.map(port);
    await Promise.all(closed.map((s) => new Promise((r) => s.close(r))));
  });
  afterAll(async () => {
    await Promise.all(listening.map((s) => new Promise((r) => s.close(r))));
  });

  const config = (ports: number[], set: string[] = []) =>
    loadConfig({
      file: `${ROOT}config/default.yaml`,
      env: {},
      set: [
        `database.port=${ports[0]}`,
        `nats.urls=[nats://127.0.0.1:${ports[1]}]`,
        `redis.port=${ports[2]}`,
        'nats.connect_timeout=500ms',
        ...set,
      ],
    });

  it('auto: services when every service answers', async () => {
    const plan = await planServices(config(up), {});
    expect(plan).toMatchObject({ mode: 'services', queue: 'nats', cache: 'redis', database: { kind: 'server' } });
  });

  it('auto: embedded when nothing answers, with the postgres queue and the in-process cache', async () => {
    const plan = await planServices(config(down), {});
    expect(plan).toMatchObject({ mode: 'embedded', queue: 'postgres', cache: 'memory', database: { kind: 'embedded' } });
    expect(plan.reason).toContain(`127.0.0.1:${down[0]}`);
  });

  it('auto: refuses to guess when some services answer, naming each one that does not and the variable to set', async () => {
    const err = await planServices(config([up[0], down[1], down[2]]), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServicesUnreachableError);
    const e = err as ServicesUnreachableError;
    expect(e.unreachable.map((u) => u.name)).toEqual(['NATS', 'Redis']);
    expect(e.message).toContain(`NATS at nats://127.0.0.1:${down[1]}: connection refused; set NATS_URL`);
    expect(e.message).toContain(`Redis at 127.0.0.1:${down[2]}: connection refused; set REDIS_URL`);
    expect(e.message).toContain('--embedded');
  });

  it('auto with only PostgreSQL needed (queue.driver postgres, cache.driver memory): postgres-only services', async () => {
    const plan = await planServices(config([up[0], down[1], down[2]], ['queue.driver=postgres', 'cache.driver=memory']), {});
    expect(plan).toMatchObject({ mode: 'services', queue: 'postgres', cache: 'memory' });
  });

  it('a service URL in the environment means services mode, without probing', async () => {
    const plan = await planServices(config(down), { DATABASE_URL: `postgres://postgres@127.0.0.1:${down[0]}/x` });
    expect(plan).toMatchObject({ mode: 'services', reason: 'DATABASE_URL is set' });
  });

  it('mode: embedded and mode: services are taken as said; explicit drivers win over the mode', async () => {
    expect((await planServices(config(up, ['mode=embedded']), {})).mode).toBe('embedded');
    expect(await planServices(config(down, ['mode=services']), {})).toMatchObject({ mode: 'services', queue: 'nats' });
    expect(await planServices(config(down, ['mode=embedded', 'cache.driver=redis']), {})).toMatchObject({
      mode: 'embedded',
      cache: 'redis',
    });
  });

  it('auto: services configured elsewhere that do not answer are an outage, never an empty embedded start', async () => {
    // 127.0.0.2 is loopback (nothing leaves the machine), but not the local defaults: it stands for another host
    const elsewhere = loadConfig({
      file: `${ROOT}config/default.yaml`,
      env: {},
      set: [`database.host=127.0.0.2`, `database.port=${down[0]}`, 'queue.driver=postgres', 'cache.driver=memory'],
    });
    const err = await planServices(elsewhere, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServicesUnreachableError);
    expect((err as Error).message).toContain(`PostgreSQL at 127.0.0.2:${down[0]}`);
    expect((err as Error).message).not.toContain('--embedded');
    const at = (host: string) => ({ name: 'PostgreSQL' as const, address: host, variable: 'DATABASE_URL', probe: [{ host, port: 5432 }] });
    expect(onThisMachineOnly([at('127.0.0.1'), at('localhost'), at('::1')])).toBe(true);
    expect(onThisMachineOnly([at('127.0.0.1'), at('10.0.0.5')])).toBe(false);
    expect(onThisMachineOnly([{ ...at('x'), probe: null }])).toBe(false);
  });
});
