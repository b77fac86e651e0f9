// The seed plan's k6 load test (section 6.2), fixed so that it runs against this runtime:
//  - setup() registers a workflow through POST /api/v1/workflows and every iteration
//    executes that workflow's real id (the seed posted a placeholder 'test-workflow-id');
//  - the target comes from BASE_URL (default http://127.0.0.1:8080), not a load balancer name;
//  - the load is open-model: the seed's stages drive a ramping-arrival-rate executor, so the
//    targets are requests per second whatever the latency (the seed's ramping VUs with
//    sleep(0.1) made the rate depend on the response time, and 200 VUs was not 200 TPS).
//
// Run:  k6 run bench/k6/load-test.js
//       k6 run -e BASE_URL=http://127.0.0.1:8080 bench/k6/load-test.js
// Keep it on this machine: BASE_URL must be a loopback address.
import http from 'k6/http';
import { check, fail } from 'k6';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const JSON_HEADERS = { headers: { 'Content-Type': 'application/json' } };

export const options = {
  scenarios: {
    seed_stages: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      preAllocatedVUs: 50,
      maxVUs: 500,
      stages: [
        { duration: '1m', target: 50 }, // ramp up to 50 TPS
        { duration: '3m', target: 100 }, // ramp up to 100 TPS
        { duration: '5m', target: 200 }, // up to 200 TPS
        { duration: '1m', target: 0 }, // ramp down
      ],
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'], // <1% errors
    http_req_duration: ['p(95)<500'], // P95 < 500ms
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  setupTimeout: '30s',
};

export function setup() {
  if (!/^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(BASE_URL)) {
    fail(`BASE_URL must point at this machine (loopback), got ${BASE_URL}`);
  }
  const name = `k6-load-test-${Date.now()}`;
  const res = http.post(
    `${BASE_URL}/api/v1/workflows`,
    JSON.stringify({
      name,
      description: 'k6 load test workflow (seed plan section 6.2)',
      definition: { steps: [{ name: 'echo-step', type: 'echo', config: { message: 'Hello POC' } }] },
      version: '1.0.0',
    }),
    JSON_HEADERS,
  );
  if (res.status !== 201) fail(`registering the workflow: HTTP ${res.status} ${res.body}`);
  const workflowId = res.json('id');
  if (!workflowId) fail(`registering the workflow: no id in ${res.body}`);
  return { workflowId };
}

export default function (data) {
  const res = http.post(
    `${BASE_URL}/api/v1/execute`,
    JSON.stringify({ workflow_id: data.workflowId, input_data: { test: 'load-test' } }),
    JSON_HEADERS,
  );
  check(res, {
    'status is 200': (r) => r.status === 200,
    'has a run_id': (r) => r.status === 200 && typeof r.json('run_id') === 'string',
    'response time < 500ms': (r) => r.timings.duration < 500,
  });
}
