import type { Metrics } from '../observability/index.js';
import { json } from './body.js';
import type { Route } from './http-server.js';

export type ReadinessCheck = () => Promise<boolean>;

/** Liveness, readiness (each dependency), and Prometheus metrics. */
export function opsRoutes(
  role: string,
  checks: Record<string, ReadinessCheck>,
  metrics: Metrics,
  o: { metricsPath: string; metricsScope: 'public' | 'read'; draining: () => boolean },
): Route[] {
  const started = Date.now();
  return [
    {
      method: 'get',
      pattern: '/health',
      scope: 'public',
      handler: () => json(200, { status: 'ok', role, uptime_s: Math.round((Date.now() - started) / 1000) }),
    },
    {
      method: 'get',
      pattern: '/ready',
      scope: 'public',
      handler: async () => {
        // stopping: a load balancer takes this process out before it stops accepting
        if (o.draining()) return json(503, { status: 'draining', role, checks: {} });
        const entries = await Promise.all(
          Object.entries(checks).map(async ([name, check]) => {
            const t0 = performance.now();
            const ok = await withTimeout(check(), 2000).catch(() => false);
            return [name, { ok, latency_ms: Math.round((performance.now() - t0) * 10) / 10 }] as const;
          }),
        );
        const ready = entries.every(([, v]) => v.ok);
        return json(ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', role, checks: Object.fromEntries(entries) });
      },
    },
    {
      method: 'get',
      pattern: o.metricsPath,
      scope: o.metricsScope,
      handler: async () => ({ status: 200, body: await metrics.registry.metrics(), contentType: metrics.registry.contentType }),
    },
  ];
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error('check failed'))),
    );
  });
}
