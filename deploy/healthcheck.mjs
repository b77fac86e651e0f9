// Docker HEALTHCHECK: GET /health on this container's own HTTP port.
// api, registry and all serve on api.address (PORT, default 8080); engine and
// executor serve /health on metrics.port (default 9090). HEALTH_PORT overrides
// both, for a container started with --set api.address=... or --set metrics.port=...
const role = process.env.ROLE ?? 'all';
const port = process.env.HEALTH_PORT ?? (role === 'engine' || role === 'executor' ? '9090' : (process.env.PORT ?? '8080'));
try {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
