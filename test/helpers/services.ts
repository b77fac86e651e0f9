import { tcpProbe } from '../../dist/runtime/modes.js';

/**
 * Which of the machine's shared services answer on 127.0.0.1 (PostgreSQL 5432, NATS 4222,
 * Redis 6379). On a machine with nothing but Node, the suites that need one are skipped and
 * the rest run in embedded mode; CI sets WF_TEST_REQUIRE_SERVICES=1, so there a service that
 * does not answer fails the run instead of skipping what needs it.
 */
export type SharedService = 'postgres' | 'nats' | 'redis';

const PORTS: Record<SharedService, number> = { postgres: 5432, nats: 4222, redis: 6379 };

const answers = async (port: number) => (await tcpProbe('127.0.0.1', port, 500)) === null;

const found = Object.fromEntries(
  await Promise.all((Object.keys(PORTS) as SharedService[]).map(async (k) => [k, await answers(PORTS[k])] as const)),
) as Record<SharedService, boolean>;

if (process.env.WF_TEST_REQUIRE_SERVICES === '1') {
  const missing = (Object.keys(found) as SharedService[]).filter((k) => !found[k]);
  if (missing.length)
    throw new Error(
      `WF_TEST_REQUIRE_SERVICES=1, but nothing answers for ${missing.map((m) => `${m} on 127.0.0.1:${PORTS[m]}`).join(', ')}`,
    );
}

/** Whether every named shared service answers. */
export function has(...services: SharedService[]): boolean {
  return services.every((s) => found[s]);
}
