# Sourced by the `weft serve` bench scripts: a throwaway Postgres and Redis, `weft serve` on them,
# and a JWT for the API. Expects `weft`, `pg_port`, `redis_port`, `api_port`, `dir` (a fresh
# folder) and `WEFT_JWT_SECRET` set; `BENCH_PG_OPTS` adds Postgres server options. Sets
# `serve_pid`, installs the cleanup trap, and defines `psql_ SQL` and `bench_token`.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_() { as_pg "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d weft -tAqc "$1"; }
cleanup() {
  set +e
  [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -m immediate stop >/dev/null 2>&1 || true
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

# Postgres (default durability) and Redis on their ports, then `weft serve` on them.
bench_serve_start() {
  [ "$(id -u)" = 0 ] && chmod 777 "$dir"
  as_pg "$pg_bin/initdb" -D "$dir/pg" -U postgres --auth=trust -E UTF8 >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w \
    -o "-h 127.0.0.1 -p $pg_port -k $dir/pg -c max_connections=200 ${BENCH_PG_OPTS:-}" start >/dev/null
  as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres weft
  redis-server --bind 127.0.0.1 --port "$redis_port" --daemonize yes --save '' --appendonly no \
    --logfile "$dir/redis.log" --dir "$dir" >/dev/null
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export WEFT_DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/weft WEFT_REDIS_URL=redis://127.0.0.1:$redis_port
  export WEFT_JWT_ISSUER=https://bench.weft WEFT_JWT_AUDIENCE=weft \
         WEFT_SECRETS_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= WEFT_RATE_LIMIT=0
  RUST_LOG=${RUST_LOG:-warn} "$weft" serve --port "$api_port" >"$dir/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$api_port/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$api_port/healthz" >/dev/null || { cat "$dir/serve.log" >&2; exit 1; }
}

# An HS256 JWT for tenant `bench` (role editor), valid for two hours.
bench_token() {
  python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
p = b64(json.dumps({"sub": "bench", "tenant": "bench", "role": "editor", "iss": os.environ["WEFT_JWT_ISSUER"],
                    "aud": os.environ["WEFT_JWT_AUDIENCE"], "exp": int(time.time()) + 7200}).encode())
s = b64(hmac.new(os.environ["WEFT_JWT_SECRET"].encode(), f"{h}.{p}".encode(), hashlib.sha256).digest())
print(f"{h}.{p}.{s}")
PY
}
