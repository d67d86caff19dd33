#!/usr/bin/env bash
# n8n's counterpart of executions_load.sh (optional; not in CI): the same workflow shape
# (Webhook -> Code -> IF -> Set, responding with the last node's output, i.e. a synchronous
# execution), the same wrk load (POST with a JSON body, concurrency 1 and 16), on the same machine.
#
#   cli/benches/n8n_load.sh [SECONDS]      # installs n8n 2.8.4 into $N8N_DIR the first time (~9 min)
#
# n8n 2.8.4 is the newest release that runs on Node 20 (see ../shared/DEPENDENCIES.md for the
# install notes this follows). Its default SQLite database keeps every execution (full persistence).
# Port: 25395 (override with N8N_BENCH_PORT); runner broker 25396.
set -euo pipefail
secs=${1:-10}
port=${N8N_BENCH_PORT:-25395}
dir=${N8N_DIR:-/var/tmp/weft-n8n}
command -v wrk >/dev/null || { echo "n8n_load: needs wrk (apt-get install wrk)" >&2; exit 2; }
mkdir -p "$dir"
if [ ! -x "$dir/node_modules/.bin/n8n" ]; then
  echo '{"name": "n8n-bench", "private": true, "dependencies": {"n8n": "2.8.4"}, "overrides": {"xlsx": "0.18.5"}}' >"$dir/package.json"
  (cd "$dir" && npm_config_nodedir=/usr npm install --no-audit --no-fund >"$dir/install.log" 2>&1)
fi
n8n="$dir/node_modules/.bin/n8n"
home=$(mktemp -d /tmp/weft-n8n-home.XXXXXX)
export N8N_USER_FOLDER=$home N8N_PORT=$port N8N_LISTEN_ADDRESS=127.0.0.1 N8N_DIAGNOSTICS_ENABLED=false \
       N8N_RUNNERS_BROKER_PORT=$((port + 1)) N8N_PERSONALIZATION_ENABLED=false N8N_VERSION_NOTIFICATIONS_ENABLED=false \
       EXECUTIONS_DATA_SAVE_ON_SUCCESS=all N8N_LOG_LEVEL=warn DB_SQLITE_POOL_SIZE=4
cat >"$home/workflow.json" <<'JSON'
{"id": "weftload0000001", "name": "Load", "active": false, "settings": {"executionOrder": "v1"},
 "nodes": [
  {"id": "a1", "name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2, "position": [0, 0],
   "webhookId": "7f3c9a52-3b1e-4d7e-9c2a-0c5d1e9b7a11",
   "parameters": {"httpMethod": "POST", "path": "load", "responseMode": "lastNode", "options": {}}},
  {"id": "a2", "name": "Code", "type": "n8n-nodes-base.code", "typeVersion": 2, "position": [200, 0],
   "parameters": {"jsCode": "const i = $input.first().json.body.input.i;\nreturn [{ json: { i, sq: i * i, big: i % 2 === 0 } }];"}},
  {"id": "a3", "name": "IF", "type": "n8n-nodes-base.if", "typeVersion": 2, "position": [400, 0],
   "parameters": {"conditions": {"options": {"caseSensitive": true, "leftValue": "", "typeValidation": "strict"},
     "conditions": [{"id": "c1", "leftValue": "={{ $json.big }}", "rightValue": true,
       "operator": {"type": "boolean", "operation": "true", "singleValue": true}}], "combinator": "and"}, "options": {}}},
  {"id": "a4", "name": "Even", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "position": [600, -100],
   "parameters": {"assignments": {"assignments": [{"id": "s1", "name": "i", "value": "={{ $json.i }}", "type": "number"},
     {"id": "s2", "name": "kind", "value": "even", "type": "string"}]}, "options": {}}},
  {"id": "a5", "name": "Odd", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "position": [600, 100],
   "parameters": {"assignments": {"assignments": [{"id": "s3", "name": "i", "value": "={{ $json.i }}", "type": "number"},
     {"id": "s4", "name": "kind", "value": "odd", "type": "string"}]}, "options": {}}}],
 "connections": {
  "Webhook": {"main": [[{"node": "Code", "type": "main", "index": 0}]]},
  "Code": {"main": [[{"node": "IF", "type": "main", "index": 0}]]},
  "IF": {"main": [[{"node": "Even", "type": "main", "index": 0}], [{"node": "Odd", "type": "main", "index": 0}]]}}}
JSON
"$n8n" import:workflow --input="$home/workflow.json" >"$home/import.log" 2>&1
"$n8n" publish:workflow --id=weftload0000001 >>"$home/import.log" 2>&1 || "$n8n" update:workflow --id=weftload0000001 --active=true >>"$home/import.log" 2>&1
"$n8n" start >"$home/n8n.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$home"' EXIT
url="http://127.0.0.1:$port/webhook/load"
for _ in $(seq 120); do
  out=$(curl -s -X POST -H 'content-type: application/json' -d '{"input":{"i":4}}' "$url" || true)
  case "$out" in *even*) break ;; esac
  sleep 1
done
echo "$out" | grep -q even || { echo "n8n did not answer the webhook: $out" >&2; tail -20 "$home/n8n.log" >&2; exit 1; }
cat >"$home/post.lua" <<'LUA'
local n = 0
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, '{"input":{"i":' .. n .. '}}')
end
LUA
echo "== n8n 2.8.4 (SQLite), ${secs}s per phase, $(nproc) cores"
for c in 1 16; do
  wrk -t$(( c < 2 ? 1 : 2 )) -c"$c" -d"${secs}s" --latency -s "$home/post.lua" "$url" >"$home/wrk.txt"
  echo "sync (webhook, last node) c=$c: $(awk '/^Requests\/sec/ {print $2}' "$home/wrk.txt") req/s, p50 $(awk '$1 == "50%" {print $2}' "$home/wrk.txt"), p99 $(awk '$1 == "99%" {print $2}' "$home/wrk.txt"), non-2xx $(awk '/Non-2xx/ {print $NF}' "$home/wrk.txt" | grep . || echo 0)"
done
rss=0; for p in $pid $(pgrep -P $pid); do rss=$((rss + $(awk '/VmHWM/ {print $2}' /proc/$p/status 2>/dev/null || echo 0))); done
echo "n8n peak RSS (main + children): $rss kB"
