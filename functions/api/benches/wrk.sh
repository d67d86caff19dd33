#!/usr/bin/env bash
# Load benchmark of the API with wrk on loopback:
#   1. GET /v1/workflows/{id} (served from the cache after the first request);
#   2. POST /v1/compile with a 50-node graph.
#
#   functions/api/benches/wrk.sh [WEFT_BINARY]     # default: target/release/weft
#
# Needs WEFT_DATABASE_URL and WEFT_REDIS_URL (scripts/dev-services) and wrk (apt-get install wrk).
# Tunables: DURATION (default 15s), THREADS (2), CONNECTIONS (64).
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
weft=${1:-${CARGO_TARGET_DIR:-$root/target}/release/weft}
: "${WEFT_DATABASE_URL:?set WEFT_DATABASE_URL (scripts/dev-services start prints it)}"
: "${WEFT_REDIS_URL:?set WEFT_REDIS_URL}"
command -v wrk >/dev/null || { echo "wrk.sh: apt-get install wrk" >&2; exit 2; }
[ -x "$weft" ] || (cd "$root" && cargo build --release -p cli)
duration=${DURATION:-15s}
threads=${THREADS:-2}
connections=${CONNECTIONS:-64}

secret=$(openssl rand -hex 32)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WEFT_JWT_SECRET=$secret WEFT_JWT_ISSUER=https://issuer.bench WEFT_JWT_AUDIENCE=weft \
  WEFT_SECRETS_KEY=$(openssl rand -base64 32) WEFT_RATE_LIMIT=100000000 WEFT_RATE_LIMIT_WINDOW_SECONDS=60 \
  RUST_LOG=warn "$weft" serve --port "$port" 2>/tmp/weft-bench-serve.log &
pid=$!
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
payload=$(printf '{"sub":"bench","tenant":"bench-%d","role":"editor","iss":"https://issuer.bench","aud":"weft","exp":%d}' "$now" $((now + 3600)) | b64url)
token="$header.$payload.$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)"

# A 50-node graph: start, 48 function nodes of six kinds in a chain, end.
python3 - "$work/graph.json" <<'PY'
import json, sys
kinds = [
    ("http", {"method": "GET", "url": "https://example.com/items/{{ input.id }}"}),
    ("code", {"expression": "input.id + 1"}),
    ("llm", {"model": "gpt-4o-mini", "prompt": "Summarise {{ input.id }}"}),
    ("delay", {"seconds": 1}),
    ("slack", {"text": "done {{ input.id }}"}),
    ("email", {"to": "ops@example.com", "subject": "hi", "body": "{{ input.id }}"}),
]
nodes = [{"id": "start", "type": "start", "data": {}}]
edges = []
prev = "start"
for i in range(48):
    kind, data = kinds[i % len(kinds)]
    nid = f"{kind}_{i}"
    nodes.append({"id": nid, "type": kind, "data": data})
    edges.append({"id": f"e{i}", "source": prev, "target": nid})
    prev = nid
nodes.append({"id": "done", "type": "end", "data": {}})
edges.append({"id": "e_end", "source": prev, "target": "done"})
graph = {"format": "weft/v1", "id": "bench", "name": "bench 50", "nodes": nodes, "edges": edges}
json.dump({"graph": graph}, open(sys.argv[1], "w"))
PY

code=$(curl -s -o "$work/compile.out" -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/compile" \
  -H "Authorization: Bearer $token" -H 'content-type: application/json' --data @"$work/graph.json")
[ "$code" = 200 ] || { echo "compile of the bench graph failed ($code):" >&2; cat "$work/compile.out" >&2; exit 1; }
id=$(curl -fs -X POST "http://127.0.0.1:$port/v1/workflows" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' --data @"$work/graph.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/graph.json", "r")
wrk.body = f:read("*a")
f:close()
LUA

echo "== GET /v1/workflows/$id (cached), $threads threads, $connections connections, $duration"
wrk -t "$threads" -c "$connections" -d "$duration" --latency -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/v1/workflows/$id"
echo
echo "== POST /v1/compile (50 nodes), $threads threads, $connections connections, $duration"
wrk -t "$threads" -c "$connections" -d "$duration" --latency -H "Authorization: Bearer $token" \
  -s "$work/post.lua" "http://127.0.0.1:$port/v1/compile"
