#!/bin/bash
# The API and the executor as two processes on this machine, against the local PostgreSQL, NATS
# and Redis on resources of their own (database wf_split, stream wf-split, keys wfsplit:*, all
# dropped first), driven by the harness with --url; --runtime-pid names both processes, so CPU
# per run covers both (bench/README.md "Two processes").
#
#   npm run build && bench/split.sh "3500:15s,4000:15s" bench/results/perf/split-one [one|three]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo 'usage: bench/split.sh "<stages>" <out dir> [one|three|flow|thread]' >&2
  exit 2
fi
STAGES="$1"
OUT="$2"
WF="${3:-one}"
cd "$(dirname "$0")/.."
psql -h 127.0.0.1 -U postgres -qc 'DROP DATABASE IF EXISTS wf_split WITH (FORCE)' postgres
node -e "const { connect } = require('nats');
(async () => {
  const nc = await connect({ servers: '127.0.0.1:4222' });
  const m = await nc.jetstreamManager();
  await m.streams.delete('wf-split').catch(() => {});
  await nc.close();
})();"
redis-cli --scan --pattern 'wfsplit:*' | xargs -r redis-cli del > /dev/null
SETS=(--set mode=services --set database.database=wf_split --set nats.stream_name=wf-split --set nats.subject_prefix=wf.split
  --set redis.key_prefix=wfsplit: --set metrics.port=0)
LOG_LEVEL=warn node dist/runtime/main.js --role api --set api.address=127.0.0.1:18701 "${SETS[@]}" > "${TMPDIR:-/tmp}/split-api.log" 2>&1 &
API=$!
trap 'kill $API ${EX:-} 2>/dev/null || true; wait' EXIT
sleep 3 # the api creates the database and the stream; the executor then finds them
LOG_LEVEL=warn node dist/runtime/main.js --role executor "${SETS[@]}" > "${TMPDIR:-/tmp}/split-executor.log" 2>&1 &
EX=$!
for _ in $(seq 1 50); do
  curl -sf http://127.0.0.1:18701/ready > /dev/null && break
  sleep 0.2
done
node dist/bench/run.js --url http://127.0.0.1:18701 --db postgres://postgres@127.0.0.1:5432/wf_split \
  --runtime-pid "$API,$EX" --stages "$STAGES" --workflow "$WF" --out "$OUT"
