#!/usr/bin/env bash
# What sub-workflows cost under `weft serve` (a figure, not a test; not in CI).
#
#   cli/benches/subworkflow_chain.sh PATH/TO/weft [RUNS]     # build with: cargo build --release -p cli
#
# The same three small `code` steps, run two ways, side by side in one run:
#   chain:  parent (code -> workflow node) -> child (code -> workflow node) -> grandchild (code);
#           `.sync` makes the parent and the child STANDARD, so this is three executions;
#   inline: one workflow, code -> code -> code, forced STANDARD (settings.type) like the chain's
#           parent, so the difference is the two sub-workflow hops;
#   inline-auto: the same inline workflow left to `auto` (EXPRESS), for reference.
# RUNS (default 50) sequential runs of each, interleaved (chain, inline, inline-auto, chain, ...),
# after 3 warm-up runs each. Each run: asynchronous start (POST /v1/workflows/{id}/executions),
# then GET /v1/executions/{id} every 5 ms until SUCCEEDED; client latency = start request sent ->
# SUCCEEDED seen. Also the recorded latency (executions.stopped_at - started_at, the parent's
# row). Prints p50/p90 (ms) of each and the chain/inline ratios.
#
# Starts its own Postgres (default durability) and Redis, like executions_load.sh.
# Ports: 25395 (Postgres), 25396 (Redis), 25397 (API); override with BENCH_PORT_BASE.
set -euo pipefail
weft=$(realpath "${1:?usage: subworkflow_chain.sh PATH/TO/weft [RUNS]}")
runs=${2:-50}
base=${BENCH_PORT_BASE:-25395}
pg_port=$base redis_port=$((base + 1)) api_port=$((base + 2))
dir=$(mktemp -d /tmp/weft-chain.XXXXXX)
export WEFT_JWT_SECRET=subworkflow-chain-bench-secret-0123456789
source "$(dirname "$0")/serve_env.sh"
bench_serve_start
export BENCH_TOKEN=$(bench_token)

echo "== weft serve ($("$weft" --version 2>/dev/null || echo weft)), $runs runs each, $(nproc) cores"
export BENCH_API="http://127.0.0.1:$api_port" BENCH_RUNS=$runs
python3 - "$dir/ids" <<'PY'
import base64, hashlib, hmac, http.client, json, os, statistics, sys, time

token = os.environ["BENCH_TOKEN"]
host, port = os.environ["BENCH_API"].removeprefix("http://").split(":")
conn = http.client.HTTPConnection(host, int(port), timeout=60)

def call(method, path, body=None):
    headers = {"authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    conn.request(method, "/v1" + path, body=data, headers=headers)
    r = conn.getresponse()
    text = r.read()
    return r.status, (json.loads(text) if text else None)

def publish(graph):
    st, w = call("POST", "/workflows", {"graph": graph})
    assert st == 201, (st, w)
    st, v = call("POST", f"/workflows/{w['id']}/versions")
    assert st == 201, (st, v)
    return w["id"], v["workflow_type"]

def step(name, source):
    return {"id": name, "type": "code", "data": {"source": source}}
def edges(*pairs):
    return [{"id": f"e{i}", "source": a, "target": b} for i, (a, b) in enumerate(pairs)]
def graph(name, nodes, pairs, settings=None):
    g = {"format": "weft/v1", "id": name, "name": name, "nodes": nodes, "edges": edges(*pairs)}
    if settings:
        g["settings"] = settings
    return g
START = {"id": "start", "type": "start", "data": {}}
def end(output): return {"id": "done", "type": "end", "data": {"output": output}}
def caller(name, child):
    # code (i + 1) -> workflow node (the child gets {i: the code's v}) -> output: the child's.
    return graph(name, [START, step("work", "return { v: input.i + 1 };"),
                        {"id": "call", "type": "workflow", "data": {"workflow_id": child, "input": {"i": "{{ nodes.work.v }}"}}},
                        end("{{ nodes.call }}")],
                 [("start", "work"), ("work", "call"), ("call", "done")])

grandchild, gc_type = publish(graph("grandchild", [START, step("work", "return { v: input.i + 1 };"), end("{{ nodes.work }}")],
                                    [("start", "work"), ("work", "done")]))
child, child_type = publish(caller("child", grandchild))
parent, parent_type = publish(caller("parent", child))
inline_nodes = [START, step("s1", "return { v: input.i + 1 };"), step("s2", "return { v: nodes.s1.v + 1 };"),
                step("s3", "return { v: nodes.s2.v + 1 };"), end({"v": "{{ nodes.s3.v }}"})]
inline_pairs = [("start", "s1"), ("s1", "s2"), ("s2", "s3"), ("s3", "done")]
inline, inline_type = publish(graph("inline", inline_nodes, inline_pairs, {"type": "standard"}))
auto, auto_type = publish(graph("inline-auto", inline_nodes, inline_pairs))
print(f"types: parent {parent_type}, child {child_type}, grandchild {gc_type}; inline {inline_type}; inline-auto {auto_type}")
variants = [("chain", parent), ("inline", inline), ("inline-auto", auto)]

def one(wf, i):
    t0 = time.perf_counter()
    st, e = call("POST", f"/workflows/{wf}/executions", {"input": {"i": i}})
    assert st == 201, (st, e)
    while True:
        st, got = call("GET", f"/executions/{e['id']}")
        assert st == 200, (st, got)
        if got["status"] not in ("PENDING", "RUNNING"):
            break
        time.sleep(0.005)
    ms = (time.perf_counter() - t0) * 1000
    assert got["status"] == "SUCCEEDED" and got["output"] == {"v": i + 3}, got
    return e["id"], ms

for name, wf in variants:          # warm-up (and the check of each output)
    for i in range(3):
        one(wf, i)
runs = int(os.environ["BENCH_RUNS"])
times = {name: [] for name, _ in variants}
ids = {name: [] for name, _ in variants}
for i in range(runs):
    for name, wf in variants:
        eid, ms = one(wf, 100 + i)
        times[name].append(ms)
        ids[name].append(eid)
with open(sys.argv[1], "w") as f:
    json.dump(ids, f)

def pct(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
print("client latency, start request -> SUCCEEDED seen (polling every 5 ms):")
for name, _ in variants:
    xs = times[name]
    print(f"  {name:12s} p50 {pct(xs, .5):7.1f} ms   p90 {pct(xs, .9):7.1f} ms   mean {statistics.mean(xs):7.1f} ms")
for q, label in ((.5, "p50"), (.9, "p90")):
    print(f"  chain / inline {label}: {pct(times['chain'], q) / pct(times['inline'], q):.2f}x; "
          f"chain / inline-auto {label}: {pct(times['chain'], q) / pct(times['inline-auto'], q):.2f}x")
PY

# The recorded latency of the same runs: the top-level row's stopped_at - started_at.
echo "recorded latency (executions.stopped_at - started_at of the started execution):"
ids=$(cat "$dir/ids")
for name in chain inline inline-auto; do
  list=$(python3 -c 'import json,sys; print(",".join("'"'"'%s'"'"'" % i for i in json.loads(sys.argv[1])[sys.argv[2]]))' "$ids" "$name")
  psql_ "SELECT '  ' || rpad('$name', 12) || ' p50 ' || lpad(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stopped_at - started_at)) * 1000)::numeric, 1)::text, 7) || ' ms   p90 ' || lpad(round((percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM stopped_at - started_at)) * 1000)::numeric, 1)::text, 7) || ' ms   (' || count(*) || ' runs, not SUCCEEDED: ' || count(*) FILTER (WHERE status <> 'SUCCEEDED') || ')' FROM executions WHERE id IN ($list)"
done
psql_ "SELECT 'executions recorded: ' || count(*) || ' (' || count(*) FILTER (WHERE parent_execution_id IS NOT NULL) || ' children), not SUCCEEDED: ' || count(*) FILTER (WHERE status <> 'SUCCEEDED') FROM executions"
