#!/usr/bin/env bash
# Memory ceiling of `weft serve` while one execution runs a loop of 80 items that each allocate
# 50 MiB in a `code` node (issue: one execution could take the server's memory). Measures the
# process's resident set before the run and its peak (VmHWM) after, once with the default
# WEFT_CODE_MAX_CONCURRENCY and once with it raised to 80 (every item at once), side by side.
#
#   eval "$(scripts/dev-services start)"
#   cli/benches/code_memory.sh target/release/weft      # or target/debug/weft
#
# A figure, not a test.
set -euo pipefail
weft=${1:?usage: code_memory.sh PATH/TO/weft}
: "${WEFT_DATABASE_URL:?start services first: eval \"\$(scripts/dev-services start)\"}"
: "${WEFT_REDIS_URL:?}"
export WEFT_JWT_SECRET=code-memory-bench-secret-0123456789abcdef WEFT_JWT_ISSUER=https://bench.weft \
       WEFT_JWT_AUDIENCE=weft WEFT_SECRETS_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= WEFT_RATE_LIMIT=0
port=${PORT:-18777}

token=$(python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
p = b64(json.dumps({"sub": "bench", "tenant": "bench", "role": "editor", "iss": os.environ["WEFT_JWT_ISSUER"],
                    "aud": os.environ["WEFT_JWT_AUDIENCE"], "exp": int(time.time()) + 3600}).encode())
s = b64(hmac.new(os.environ["WEFT_JWT_SECRET"].encode(), f"{h}.{p}".encode(), hashlib.sha256).digest())
print(f"{h}.{p}.{s}")
PY
)
graph='{"format":"weft/v1","id":"mem","name":"Memory","nodes":[
 {"id":"start","type":"start","data":{}},
 {"id":"each","type":"loop","data":{"items":"{{ input.items }}"}},
 {"id":"alloc","type":"code","parentId":"each","data":{"source":"const a = new Uint8Array(50 * 1024 * 1024); a.fill(index % 251); let s = 0; for (let i = 0; i < a.length; i += 4096) s += a[i]; return s;"}},
 {"id":"done","type":"end","data":{}}],
 "edges":[{"id":"e1","source":"start","target":"each"},{"id":"e2","source":"each","target":"done"}]}'
items=$(python3 -c 'import json; print(json.dumps({"items": list(range(80))}))')

measure() {
  local label=$1; shift
  env -u WEFT_CODE_MAX_CONCURRENCY "$@" "$weft" serve --port "$port" >/tmp/weft-code-memory.log 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local api="http://127.0.0.1:$port/v1"
  local wf
  wf=$(curl -sf -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"graph\": $graph}" "$api/workflows" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -sf -X POST -H "authorization: Bearer $token" "$api/workflows/$wf/versions" >/dev/null
  local before
  before=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  local t0=$SECONDS
  local ex
  ex=$(curl -sf -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"input\": $items}" "$api/workflows/$wf/executions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  local status=RUNNING
  while [ "$status" = RUNNING ] || [ "$status" = PENDING ]; do
    sleep 0.5
    status=$(curl -sf -H "authorization: Bearer $token" "$api/executions/$ex" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  done
  local peak
  peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  printf '%-34s status %-9s before %5d MiB  peak %5d MiB  run %3d s\n' "$label" "$status" $((before / 1024)) $((peak / 1024)) $((SECONDS - t0))
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "weft serve, loop of 80 x 50 MiB code allocations ($(nproc) CPUs):"
measure "default WEFT_CODE_MAX_CONCURRENCY"
measure "WEFT_CODE_MAX_CONCURRENCY=80" WEFT_CODE_MAX_CONCURRENCY=80
