#!/usr/bin/env bash
# Execution throughput of `weft serve` with full persistence (a figure, not a test; not in CI).
#
#   cli/benches/executions_load.sh PATH/TO/weft [SECONDS]     # build with: cargo build --release --bin weft
#
# Starts its own Postgres with the default durability (fsync and synchronous_commit on; the dev
# services run with fsync=off) and its own Redis, then `weft serve`, and publishes the workflow
# n8n's counterpart (cli/benches/n8n_load.sh) runs: webhook -> Code -> IF -> Set, here
# start -> code -> condition -> end (one of two `end` nodes shapes the output). With wrk it measures:
#   1. `POST /v1/workflows/{id}/executions?wait=true` at concurrency 1 and 16 (runs/s, p50, p99);
#   2. asynchronous starts at concurrency 16 for the same time, then waits until every execution is
#      recorded as over: starts/s, completions/s (runs / (last recorded stop - first start)) and the
#      median start -> recorded stop;
#   3. bytes written per run: WAL bytes, growth of all tables, and Redis memory, per execution.
# Ports: 25390 (Postgres), 25391 (Redis), 25392 (API); override with BENCH_PORT_BASE.
set -euo pipefail
weft=$(realpath "${1:?usage: executions_load.sh PATH/TO/weft [SECONDS]}")
secs=${2:-10}
base=${BENCH_PORT_BASE:-25390}
pg_port=$base redis_port=$((base + 1)) api_port=$((base + 2))
command -v wrk >/dev/null || { echo "executions_load: needs wrk (apt-get install wrk)" >&2; exit 2; }
dir=$(mktemp -d /tmp/weft-load.XXXXXX)
# BENCH_PG_STATS=1: also print the statements Postgres spent its time on (pg_stat_statements).
[ -n "${BENCH_PG_STATS:-}" ] && BENCH_PG_OPTS="-c shared_preload_libraries=pg_stat_statements"
export WEFT_JWT_SECRET=executions-load-bench-secret-0123456789
source "$(dirname "$0")/serve_env.sh"
bench_serve_start
[ -n "${BENCH_PG_STATS:-}" ] && psql_ "CREATE EXTENSION pg_stat_statements" >/dev/null
token=$(bench_token)
api="http://127.0.0.1:$api_port/v1"
graph='{"format":"weft/v1","id":"load","name":"Load","nodes":[
 {"id":"start","type":"start","data":{}},
 {"id":"work","type":"code","data":{"source":"return { i: input.i, sq: input.i * input.i, big: input.i % 2 === 0 };"}},
 {"id":"check","type":"condition","data":{"expression":"nodes.work.big === true"}},
 {"id":"even","type":"end","data":{"output":{"i":"{{ nodes.work.i }}","kind":"even"}}},
 {"id":"odd","type":"end","data":{"output":{"i":"{{ nodes.work.i }}","kind":"odd"}}}],
 "edges":[{"id":"e1","source":"start","target":"work"},{"id":"e2","source":"work","target":"check"},
  {"id":"e3","source":"check","sourceHandle":"true","target":"even"},{"id":"e4","source":"check","sourceHandle":"false","target":"odd"}]}'
# BENCH_GRAPH=minimal: start -> end only (what the platform costs without node work).
if [ "${BENCH_GRAPH:-}" = minimal ]; then
  graph='{"format":"weft/v1","id":"load","name":"Load","nodes":[{"id":"start","type":"start","data":{}},
   {"id":"done","type":"end","data":{"output":{"i":"{{ input.i }}","kind":"even"}}}],"edges":[{"id":"e1","source":"start","target":"done"}]}'
fi
wf=$(curl -sf -H "authorization: Bearer $token" -H 'content-type: application/json' -d "{\"graph\": $graph}" \
  "$api/workflows" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -sf -X POST -H "authorization: Bearer $token" "$api/workflows/$wf/versions" >/dev/null
# One run checks the result before anything is timed.
out=$(curl -sf -X POST -H "authorization: Bearer $token" -H 'content-type: application/json' -d '{"input":{"i":4}}' \
  "$api/workflows/$wf/executions?wait=true")
python3 -c 'import json,sys; e=json.loads(sys.argv[1]); assert e["status"]=="SUCCEEDED" and e["output"]=={"i":4,"kind":"even"}, e' "$out"

cat >"$dir/post.lua" <<LUA
local n = 0
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $token"
wrk.headers["content-type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, '{"input":{"i":' .. n .. '}}')
end
LUA

# bytes MARK: WAL position, total table size, Redis memory.
mark() { echo "$(psql_ "SELECT pg_current_wal_lsn()") $(psql_ "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'") $(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')"; }
per_run() { # per_run "MARK_BEFORE" "MARK_AFTER" RUNS
  read -r w0 t0 r0 <<<"$1"; read -r w1 t1 r1 <<<"$2"
  local wal; wal=$(psql_ "SELECT pg_wal_lsn_diff('$w1', '$w0')")
  python3 -c 'import sys; wal,t,r,n=map(float,sys.argv[1:]); print(f"bytes per run: WAL {wal/n:,.0f}, tables {t/n:,.0f}, Redis {r/n:,.0f}")' "$wal" "$((t1 - t0))" "$((r1 - r0))" "$3"
}
# CPU seconds so far of weft serve, and of Postgres (the postmaster, its reaped children, its live backends).
ticks=$(getconf CLK_TCK)
cpu() {
  local pm; pm=$(head -n 1 "$dir/pg/postmaster.pid")
  local w p
  w=$(awk '{print $14 + $15}' "/proc/$serve_pid/stat")
  p=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat")
  for c in $(pgrep -P "$pm"); do p=$((p + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0))); done
  echo "$w $p"
}
cpu_per_run() { # cpu_per_run "CPU_BEFORE" "CPU_AFTER" RUNS
  read -r w0 p0 <<<"$1"; read -r w1 p1 <<<"$2"
  python3 -c 'import sys; w,p,n,t=map(float,sys.argv[1:]); print(f"CPU per run: weft {w/n/t*1000:.2f} ms, Postgres {p/n/t*1000:.2f} ms")' "$((w1 - w0))" "$((p1 - p0))" "$3" "$ticks"
}
wrk_run() { # wrk_run LABEL CONNECTIONS URL
  local label=$1 c=$2 url=$3 threads=$(( $2 < 2 ? 1 : 2 ))
  local before after count0 count1
  count0=$(psql_ "SELECT count(*) FROM executions")
  before=$(mark)
  LAST_CPU=$(cpu)
  wrk -t"$threads" -c"$c" -d"${secs}s" --latency -s "$dir/post.lua" "$url" >"$dir/wrk.txt"
  count1=$(psql_ "SELECT count(*) FROM executions")
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' "$dir/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$dir/wrk.txt"); p99=$(awk '$1 == "99%" {print $2}' "$dir/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$dir/wrk.txt"); non2xx=${non2xx:-0}
  echo "$label: $rps req/s, p50 $p50, p99 $p99, non-2xx $non2xx, executions $((count1 - count0))"
  LAST_BEFORE=$before LAST_RUNS=$((count1 - count0))
}

echo "== weft serve ($("$weft" --version 2>/dev/null || echo weft)), ${secs}s per phase, $(nproc) cores"
# BENCH_PERF=FILE: also sample weft serve's stacks into FILE (perf record) while the load runs.
if [ -n "${BENCH_PERF:-}" ]; then
  perf record -F 199 --call-graph dwarf,16384 -o "$BENCH_PERF" -p "$serve_pid" >/dev/null 2>&1 &
  perf_pid=$!
fi
for c in 1 16; do
  wrk_run "sync (?wait=true) c=$c" "$c" "$api/workflows/$wf/executions?wait=true"
  failed=$(psql_ "SELECT count(*) FROM executions WHERE status <> 'SUCCEEDED'")
  [ "$failed" = 0 ] || echo "  !! $failed executions not SUCCEEDED"
  per_run "$LAST_BEFORE" "$(mark)" "$LAST_RUNS"
  cpu_per_run "$LAST_CPU" "$(cpu)" "$LAST_RUNS"
done

t_start=$(psql_ "SELECT now()")
wrk_run "async starts c=16" 16 "$api/workflows/$wf/executions"
before=$LAST_BEFORE runs=$LAST_RUNS cpu0=$LAST_CPU
for _ in $(seq 600); do
  open=$(psql_ "SELECT count(*) FROM executions WHERE started_at >= '$t_start' AND status IN ('PENDING', 'RUNNING')")
  [ "$open" = 0 ] && break
  sleep 1
done
psql_ "SELECT 'completions: ' || count(*) || ' runs, ' || round((count(*) / extract(epoch FROM max(stopped_at) - min(started_at)))::numeric, 1) || '/s, median start -> recorded stop ' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stopped_at - started_at)) * 1000)::numeric, 1) || ' ms, not SUCCEEDED: ' || count(*) FILTER (WHERE status <> 'SUCCEEDED') FROM executions WHERE started_at >= '$t_start'"
per_run "$before" "$(mark)" "$runs"
cpu_per_run "$cpu0" "$(cpu)" "$runs"
echo "weft serve peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$serve_pid/status)"
[ -n "${perf_pid:-}" ] && kill -INT "$perf_pid" && wait "$perf_pid" 2>/dev/null
# Where the bytes go: the size of each table per execution, and of the documents in them.
echo "== table sizes per execution (heap + indexes + TOAST)"
total=$(psql_ "SELECT count(*) FROM executions")
psql_ "SELECT c.relname || ': ' || round(pg_total_relation_size(c.oid)::numeric / $total) || ' B' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public' AND pg_total_relation_size(c.oid) > 100000 ORDER BY pg_total_relation_size(c.oid) DESC"
psql_ "SELECT 'sfn_executions.doc ' || avg(length(doc::text))::int || ' B, of which definition ' || avg(length(doc->>'definition'))::int || ' B; sfn_history_chunks.events ' || (SELECT sum(length(events::text)) FROM sfn_history_chunks) / count(*) || ' B; execution_event_chunks.events ' || (SELECT sum(length(events::text)) FROM execution_event_chunks) / count(*) || ' B per execution' FROM sfn_executions"
if [ -n "${BENCH_PG_STATS:-}" ]; then
  total=$(psql_ "SELECT count(*) FROM executions")
  echo "== statements per execution ($total executions), by total time"
  psql_ "SELECT round(calls::numeric / $total, 2) || ' calls, ' || round((total_exec_time / $total * 1000)::numeric) || ' us: ' || left(regexp_replace(query, '\s+', ' ', 'g'), 110) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'weft') ORDER BY total_exec_time DESC LIMIT 25"
fi
