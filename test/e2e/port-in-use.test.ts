import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, createMetrics } from '../../dist/runtime/observability/index.js';
import { startSystem } from '../../dist/runtime/system.js';
import { cleanup, ROOT, testConfig } from '../helpers/env.js';
import { api, startTestSystem, type TestSystem } from '../helpers/system.js';

// A second process on a port that is taken must fail to start, not share the port silently.
describe('a taken port', () => {
  let first: TestSystem | undefined;
  afterAll(async () => {
    await first?.stop();
  });

  it('fails the second start with a clear error and leaves the first one serving', async () => {
    first = await startTestSystem();
    const port = first.system.port!;
    const { config } = testConfig([`api.address=127.0.0.1:${port}`]);
    try {
      await expect(
        startSystem({ role: 'all', config, log: createLogger({ ...config.logging }), metrics: createMetrics(), root: ROOT }),
      ).rejects.toThrow(`cannot listen on 127.0.0.1:${port}`);
    } finally {
      await cleanup(config);
    }
    const health = await api(first.url, 'GET', '/health');
    expect(health.status).toBe(200);
  });
});
