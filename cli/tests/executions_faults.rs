//! Faults a running `weft serve` must survive with every execution reaching a terminal state that
//! the API shows: node outputs Postgres' `jsonb` cannot hold (NUL, lone surrogates), clients that
//! hang up mid-start, a kill during a burst of starts, a Postgres outage and a Redis kill in the
//! middle of a run, and starts interrupted between the row's INSERT and `StartExecution`.
//!
//! Deterministic, not timed: runs block on a local HTTP gate that the test opens when it wants.
//! The outage tests start their own Postgres or Redis (ports 24xxx) so they can stop them.

mod executions_common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use executions_common::{Api, Serve, follow, services};
use reqwest::Method;
use serde_json::{Value, json};

fn terminal(s: &str) -> bool {
    matches!(s, "SUCCEEDED" | "FAILED" | "ABORTED" | "TIMED_OUT")
}

/// An HTTP server on 127.0.0.1: `/gate` answers `{"passed": true}` once the gate is open (and
/// counts arrivals), `/nul` and `/surrogate` answer JSON bodies `jsonb` refuses.
struct Gate {
    addr: SocketAddr,
    open: tokio::sync::watch::Sender<bool>,
    arrived: Arc<AtomicUsize>,
}

impl Gate {
    async fn start() -> Gate {
        use axum::routing::get;
        let (open, rx) = tokio::sync::watch::channel(false);
        let arrived = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&arrived);
        let app = axum::Router::new()
            .route(
                "/gate",
                get(move || {
                    let mut rx = rx.clone();
                    let count = Arc::clone(&count);
                    async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        let _ = rx.wait_for(|o| *o).await;
                        ([("content-type", "application/json")], r#"{"passed": true}"#)
                    }
                }),
            )
            .route("/nul", get(|| async { ([("content-type", "application/json")], r#"{"v": "a\u0000b"}"#) }))
            .route("/surrogate", get(|| async { ([("content-type", "application/json")], r#"{"v": "x\ud800y"}"#) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Gate { addr, open, arrived }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn wait_arrivals(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.arrived.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests reached the gate",
                self.arrived.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn release(&self) {
        let _ = self.open.send(true);
    }
}

fn chain(nodes: Value) -> Value {
    let list = nodes.as_array().cloned().unwrap_or_default();
    let mut all = vec![json!({"id": "start", "type": "start", "data": {}})];
    all.extend(list);
    all.push(json!({"id": "done", "type": "end", "data": {}}));
    let edges: Vec<Value> = all
        .windows(2)
        .enumerate()
        .map(|(i, w)| json!({"id": format!("e{i}"), "source": w[0]["id"], "target": w[1]["id"]}))
        .collect();
    json!({"format": "weft/v1", "id": "faults", "name": "Faults", "nodes": all, "edges": edges})
}

/// Waits until every execution of `workflow` is terminal; returns them.
async fn all_terminal(api: &Api, workflow: &str, expected: usize, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let listed = api.get(&format!("/v1/executions?workflow_id={workflow}&limit=200")).await;
        let mut items = listed["items"].as_array().cloned().unwrap_or_default();
        let mut cursor = listed["next_cursor"].as_str().map(str::to_owned);
        while let Some(c) = cursor {
            let page = api.get(&format!("/v1/executions?workflow_id={workflow}&limit=200&cursor={c}")).await;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            cursor = page["next_cursor"].as_str().map(str::to_owned);
        }
        let open: Vec<_> = items.iter().filter(|e| !terminal(e["status"].as_str().unwrap_or(""))).collect();
        if open.is_empty() && items.len() >= expected {
            return items;
        }
        // Reading an execution records it (readers never wait for the recorder loop).
        for e in open.iter().take(20) {
            let _ =
                api.call(Method::GET, &format!("/v1/executions/{}", e["id"].as_str().unwrap_or_default()), None).await;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} executions still not terminal after {limit:?}: {:?}",
            open.len(),
            items.len(),
            open.iter().take(3).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_postgres_jsonb_refuses_still_finish_and_stop_works() {
    let Some((db, redis)) = services().await else { return };
    let gate = Gate::start().await;
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let graph = chain(json!([
        {"id": "nul_code", "type": "code", "data": {"source": "return { s: 'a\\u0000b', k: { 'x\\u0000': 1 } };"}},
        {"id": "sur_code", "type": "code", "data": {"source": "return { s: 'x' + String.fromCharCode(0xd800) + 'y' };"}, "on_error": "continue"},
        {"id": "nul_http", "type": "http", "data": {"method": "GET", "url": gate.url("/nul")}},
        {"id": "sur_http", "type": "http", "data": {"method": "GET", "url": gate.url("/surrogate")}}
    ]));
    let mut graph = graph;
    let end = graph["nodes"].as_array_mut().and_then(|n| n.last_mut()).expect("end node");
    end["data"] = json!({"output": {"code": "{{ nodes.nul_code }}", "http": "{{ nodes.nul_http.body }}",
                                    "surrogate_code": "{{ nodes.sur_code }}", "surrogate_http": "{{ nodes.sur_http.body }}"}});
    let workflow = api.publish(graph).await;
    let id = api.start(&workflow, json!({})).await;
    let e = api.wait_status(&id, Duration::from_secs(60), terminal).await;
    assert_eq!(e["status"], "SUCCEEDED", "{e}");
    let (_, end) = follow(&api, &id, Duration::from_secs(30)).await;
    assert_eq!(end["status"], "SUCCEEDED", "{end}");
    let output = &e["output"];
    assert_eq!(output["code"], json!({"s": "a\u{0}b", "k": {"x\u{0}": 1}}), "NUL survives in values and keys: {e}");
    assert_eq!(output["http"], json!({"v": "a\u{0}b"}), "{e}");
    // A lone surrogate cannot be a JSON string: code fails with a named error (caught here by
    // `on_error: continue`), an HTTP body that holds one is kept as its text.
    assert_eq!(output["surrogate_code"]["error"], "Code.InvalidResult", "{e}");
    assert_eq!(output["surrogate_http"], r#"{"v": "x\ud800y"}"#, "{e}");

    // Stop ends a RUNNING execution whose earlier outputs hold NUL, even mid-Task.
    let graph = chain(json!([
        {"id": "nul_code", "type": "code", "data": {"source": "return { s: 'a\\u0000b' };"}},
        {"id": "wait", "type": "http", "data": {"method": "GET", "url": gate.url("/gate"), "timeout_seconds": 120}}
    ]));
    let workflow = api.publish(graph).await;
    let id = api.start(&workflow, json!({})).await;
    gate.wait_arrivals(1).await;
    let (status, body) = api.call(Method::POST, &format!("/v1/executions/{id}/stop"), Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ABORTED", "{body}");
    let (_, end) = follow(&api, &id, Duration::from_secs(30)).await;
    assert_eq!(end["status"], "ABORTED");
    gate.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_hang_up_mid_start_leave_no_execution_behind() {
    let Some((db, redis)) = services().await else { return };
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let graph = chain(json!([{"id": "work", "type": "code", "data": {"source": "return { i: input.i };"}}]));
    let workflow = api.publish(graph).await;
    // 200 starts, half of them `?wait=true`, each abandoned after 1 to 1,000 ms: some before the
    // request is read, some between the row's INSERT and StartExecution, some after.
    let hangups = (0..200u64).map(|i| {
        let base = serve.base.clone();
        let token = api.token.clone();
        let workflow = workflow.clone();
        async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(1 + (i * 7919) % 1000))
                .build()
                .expect("client");
            let wait = if i % 2 == 0 { "?wait=true" } else { "" };
            let _ = client
                .post(format!("{base}/v1/workflows/{workflow}/executions{wait}"))
                .bearer_auth(token)
                .json(&json!({"input": {"i": i}}))
                .send()
                .await;
        }
    });
    futures::future::join_all(hangups).await;
    // Whatever got started ends: nothing is left PENDING, or RUNNING without an ARN.
    let items = all_terminal(&api, &workflow, 0, Duration::from_secs(120)).await;
    for e in &items {
        assert_eq!(e["status"], "SUCCEEDED", "a start whose client hung up still runs to the end: {e}");
    }
    let orphans = psql(&db, "SELECT count(*) FROM executions WHERE execution_arn IS NULL");
    assert_eq!(orphans, "0", "no execution row without an ARN");
    // Not vacuous: a good part of the abandoned requests got as far as writing their row.
    assert!(items.len() >= 5, "only {} of 200 abandoned starts got a row; widen the hang-up times", items.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_burst_of_starts_does_not_stop_the_restart() {
    let Some((db, redis)) = services().await else { return };
    let mut first = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&first.base, "acme");
    let graph = chain(json!([{"id": "work", "type": "code", "data": {"source": "return { i: input.i };"}}]));
    let workflow = api.publish(graph).await;
    let answered = Arc::new(AtomicUsize::new(0));
    let burst: Vec<_> = (0..100)
        .map(|i| {
            let api = api.clone();
            let workflow = workflow.clone();
            let answered = Arc::clone(&answered);
            tokio::spawn(async move {
                let r = api
                    .http
                    .post(format!("{}/v1/workflows/{workflow}/executions", api.base))
                    .bearer_auth(&api.token)
                    .json(&json!({"input": {"i": i}}))
                    .send()
                    .await;
                if r.is_ok() {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Kill once the burst is under way: some starts answered, most in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::SeqCst) < 5 {
        assert!(Instant::now() < deadline, "no start answered");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    first.child.kill().expect("SIGKILL weft serve");
    let _ = first.child.wait();
    for b in burst {
        let _ = b.await;
    }

    let spawned = Instant::now();
    let second = Serve::start(&db, &redis, 0, &[]);
    let health = tokio::time::timeout(Duration::from_secs(10), reqwest::get(format!("{}/healthz", second.base)))
        .await
        .expect("/healthz did not answer within 10 s of the restart")
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let took = spawned.elapsed();
    assert!(took < Duration::from_secs(10), "/healthz answered only after {took:?}");
    let api = Api::new(&second.base, "acme");
    let items = all_terminal(&api, &workflow, 1, Duration::from_secs(60)).await;
    for e in &items {
        let s = e["status"].as_str().unwrap_or("");
        assert!(
            s == "SUCCEEDED"
                || (s == "FAILED"
                    && matches!(e["error"].as_str(), Some("Weft.EngineRestarted" | "Weft.StartInterrupted"))),
            "{e}"
        );
    }
    eprintln!("after the kill: {} executions, all terminal", items.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_starts_are_adopted_or_failed_at_restart() {
    let Some((db, redis)) = services().await else { return };
    let mut first = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&first.base, "acme");
    let graph = chain(json!([{"id": "work", "type": "code", "data": {"source": "return { ok: true };"}}]));
    let workflow = api.publish(graph).await;
    let done = api.start(&workflow, json!({})).await;
    api.wait_status(&done, Duration::from_secs(30), terminal).await;
    first.child.kill().expect("SIGKILL");
    let _ = first.child.wait();

    // Two rows as a process that died right after the INSERT leaves them: one whose execution
    // Step Functions never saw, one whose StartExecution went through before the death (the
    // execution itself is started through the store the endpoint reads at restart).
    let never = uuid::Uuid::new_v4();
    let ran = uuid::Uuid::new_v4();
    for id in [never, ran] {
        psql(
            &db,
            &format!(
                "INSERT INTO executions (id, tenant_id, workflow_id, version, status, input, started_by) \
                 SELECT '{id}', tenant_id, workflow_id, version, 'PENDING', '{{}}'::json, 'test' FROM executions WHERE id = '{done}'"
            ),
        );
    }
    // The `ran` one: a copy of the finished execution's Step Functions record under its name.
    let done_arn = psql(&db, &format!("SELECT execution_arn FROM executions WHERE id = '{done}'"));
    let ran_arn = done_arn.replace(&done, &ran.to_string());
    psql(
        &db,
        &format!(
            "INSERT INTO sfn_executions (arn, state_machine, status, start_date, doc) \
             SELECT '{ran_arn}', state_machine, status, start_date, \
                    (replace(doc::text, '{done}', '{ran}'))::json FROM sfn_executions WHERE arn = '{done_arn}'"
        ),
    );
    psql(
        &db,
        &format!(
            "INSERT INTO sfn_history_chunks (execution_arn, first_id, last_id, events) \
             SELECT '{ran_arn}', first_id, last_id, events FROM sfn_history_chunks WHERE execution_arn = '{done_arn}'"
        ),
    );

    let second = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&second.base, "acme");
    let e = api.wait_status(&never.to_string(), Duration::from_secs(30), terminal).await;
    assert_eq!(e["status"], "FAILED", "{e}");
    assert_eq!(e["error"], "Weft.StartInterrupted", "{e}");
    let e = api.wait_status(&ran.to_string(), Duration::from_secs(30), terminal).await;
    assert_eq!(e["status"], "SUCCEEDED", "the started one is adopted and recorded: {e}");
    assert_eq!(e["output"], json!({"ok": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_mid_run_loses_no_event_and_no_status() {
    if services().await.is_none() {
        return;
    }
    let Some(pg) = OwnPostgres::start(24_432) else { return };
    let redis = std::env::var("WEFT_TEST_REDIS_URL").expect("redis");
    let gate = Gate::start().await;
    let serve = Serve::start(&pg.url, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let graph = chain(json!([
        {"id": "wait", "type": "http", "data": {"method": "GET", "url": gate.url("/gate"), "timeout_seconds": 120}},
        {"id": "after", "type": "code", "data": {"source": "return { n: input.n, after: true };"}}
    ]));
    let workflow = api.publish(graph).await;
    let ids: Vec<String> = futures::future::join_all((0..5).map(|n| {
        let api = api.clone();
        let workflow = workflow.clone();
        async move { api.start(&workflow, json!({"n": n})).await }
    }))
    .await;
    gate.wait_arrivals(ids.len()).await;
    pg.stop();
    // The runs finish in the engine while Postgres is down.
    gate.release();
    tokio::time::sleep(Duration::from_secs(20)).await;
    pg.start_again();
    for (n, id) in ids.iter().enumerate() {
        let e = api.wait_status(id, Duration::from_secs(90), terminal).await;
        assert_eq!(e["status"], "SUCCEEDED", "{e}");
        assert_eq!(e["output"], json!({"n": n, "after": true}));
        let (events, end) = follow(&api, id, Duration::from_secs(30)).await;
        assert_eq!(end["status"], "SUCCEEDED");
        let kinds: Vec<String> = events
            .iter()
            .map(|e| format!("{}:{}", e["type"].as_str().unwrap_or(""), e["node_id"].as_str().unwrap_or("")))
            .collect();
        for want in ["node_succeeded:wait", "node_succeeded:after", "execution_succeeded:"] {
            assert!(kinds.iter().any(|k| k == want), "{want} missing from {kinds:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_killed_mid_run_changes_nothing_visible() {
    let Some((db, _)) = services().await else { return };
    let Some(redis) = OwnRedis::start(24_379) else { return };
    let gate = Gate::start().await;
    let serve = Serve::start(&db, &redis.url, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let graph = chain(json!([
        {"id": "wait", "type": "http", "data": {"method": "GET", "url": gate.url("/gate"), "timeout_seconds": 120}}
    ]));
    let workflow = api.publish(graph).await;
    let id = api.start(&workflow, json!({})).await;
    gate.wait_arrivals(1).await;
    redis.kill();
    gate.release();
    let e = api.wait_status(&id, Duration::from_secs(60), terminal).await;
    assert_eq!(e["status"], "SUCCEEDED", "{e}");
    let (events, end) = follow(&api, &id, Duration::from_secs(30)).await;
    assert_eq!(end["status"], "SUCCEEDED", "SSE replays from Postgres without Redis");
    assert!(!events.is_empty());
    // New work goes on too.
    let again = api.start(&workflow, json!({})).await;
    let e = api.wait_status(&again, Duration::from_secs(60), terminal).await;
    assert_eq!(e["status"], "SUCCEEDED", "{e}");
}

// --- own services, for the outage tests ---

fn as_postgres(cmd: &str, args: &[&str]) -> Command {
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", cmd]).args(args);
        c
    } else {
        let mut c = Command::new(cmd);
        c.args(args);
        c
    }
}

struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    url: String,
}

impl OwnPostgres {
    fn start(port: u16) -> Option<OwnPostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.filter_map(Result::ok).map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).max()
        });
        let Some(bin) = bin else {
            test_skip::skip("no Postgres binaries under /usr/lib/postgresql (apt-get install -y postgresql)");
            return None;
        };
        let data = std::env::temp_dir().join(format!("weft-outage-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data).expect("dir");
        let _ = Command::new("chown").args(["postgres", data.to_str().unwrap_or_default()]).status();
        let initdb = bin.join("initdb");
        let ok = as_postgres(
            initdb.to_str().unwrap_or_default(),
            &["-D", data.to_str().unwrap_or_default(), "-U", "postgres", "--auth=trust"],
        )
        .output()
        .expect("initdb");
        assert!(ok.status.success(), "initdb: {}", String::from_utf8_lossy(&ok.stderr));
        let pg = OwnPostgres { bin, data, port, url: format!("postgres://postgres@127.0.0.1:{port}/postgres") };
        pg.start_again();
        Some(pg)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data.to_str().unwrap_or_default().to_owned();
        let mut all = vec!["-D", &data];
        all.extend_from_slice(args);
        let out = as_postgres(pg_ctl.to_str().unwrap_or_default(), &all).output().expect("pg_ctl");
        assert!(out.status.success(), "pg_ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn start_again(&self) {
        let opts =
            format!("-h 127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200", self.port, self.data.display());
        let log = self.data.join("log");
        self.pg_ctl(&["-w", "-l", log.to_str().unwrap_or_default(), "-o", &opts, "start"]);
    }

    fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = as_postgres(
            pg_ctl.to_str().unwrap_or_default(),
            &["-D", self.data.to_str().unwrap_or_default(), "-m", "immediate", "stop"],
        )
        .output();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

struct OwnRedis {
    child: std::sync::Mutex<Option<std::process::Child>>,
    url: String,
}

impl OwnRedis {
    fn start(port: u16) -> Option<OwnRedis> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            test_skip::skip("redis-server is not installed (apt-get install -y redis-server)");
            return None;
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(OwnRedis { child: std::sync::Mutex::new(Some(child)), url: format!("redis://127.0.0.1:{port}") })
    }

    fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

// --- direct SQL for setting up and checking rows ---

fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql").args([db, "-v", "ON_ERROR_STOP=1", "-tAc", sql]).output().expect("psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_over_step_functions_limit_is_the_clients_mistake() {
    let Some((db, redis)) = services().await else { return };
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let graph = chain(json!([{"id": "work", "type": "code", "data": {"source": "return 1;"}}]));
    let workflow = api.publish(graph).await;
    // 300 KiB: under the API's 1 MiB body limit, over Step Functions' 256 KiB input limit.
    let input = json!({"blob": "x".repeat(300 * 1024)});
    for wait in ["", "?wait=true"] {
        let (status, body) = api
            .call(Method::POST, &format!("/v1/workflows/{workflow}/executions{wait}"), Some(json!({"input": input})))
            .await;
        assert_eq!(status, 413, "{wait}: {body}");
        assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("262144")), "names the limit: {body}");
    }
    let listed = api.get(&format!("/v1/executions?workflow_id={workflow}")).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(0), "nothing was written: {listed}");
}

/// A kill while a Task is in flight, and while a Map (loop) and a Parallel wait on their
/// iterations and branches: each execution fails visibly with `Weft.EngineRestarted`, and a
/// redrive after the restart finishes it. Deterministic: every run blocks on the gate until the
/// test opens it, after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_task_mid_map_and_mid_parallel_fails_visibly_and_redrives() {
    let Some((db, redis)) = services().await else { return };
    let gate = Gate::start().await;
    let mut first = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&first.base, "acme");
    let wait = |id: &str, parent: Option<&str>| {
        let mut n = json!({"id": id, "type": "http", "data": {"method": "GET", "url": gate.url("/gate"), "timeout_seconds": 300}});
        if let Some(p) = parent {
            n["parentId"] = json!(p);
        }
        n
    };
    let task = chain(json!([wait("call", None)]));
    let map = json!({"format": "weft/v1", "id": "map", "name": "Map",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "each", "type": "loop", "data": {"items": "{{ input.items }}"}},
                  wait("call", Some("each")),
                  {"id": "done", "type": "end", "data": {"output": "{{ nodes.each }}"}}],
        "edges": [{"id": "e1", "source": "start", "target": "each"}, {"id": "e2", "source": "each", "target": "done"}]});
    let parallel = json!({"format": "weft/v1", "id": "par", "name": "Parallel",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "fork", "type": "parallel", "data": {}},
                  wait("left", None), wait("right", None),
                  {"id": "meet", "type": "join", "data": {}},
                  {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "fork"},
                  {"id": "e2", "source": "fork", "target": "left"}, {"id": "e3", "source": "fork", "target": "right"},
                  {"id": "e4", "source": "left", "target": "meet"}, {"id": "e5", "source": "right", "target": "meet"},
                  {"id": "e6", "source": "meet", "target": "done"}]});
    let mut runs = Vec::new();
    for (graph, input) in [(task, json!({})), (map, json!({"items": [1, 2, 3]})), (parallel, json!({}))] {
        let workflow = api.publish(graph).await;
        runs.push(api.start(&workflow, input).await);
    }
    // 1 Task + 3 iterations + 2 branches are inside their HTTP calls.
    gate.wait_arrivals(6).await;
    first.child.kill().expect("SIGKILL weft serve");
    let _ = first.child.wait();

    let second = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&second.base, "acme");
    for id in &runs {
        let e = api.wait_status(id, Duration::from_secs(30), terminal).await;
        assert_eq!(e["status"], "FAILED", "{e}");
        assert_eq!(e["error"], "Weft.EngineRestarted", "{e}");
    }
    gate.release();
    for id in &runs {
        let (status, body) = api.call(Method::POST, &format!("/v1/executions/{id}/redrive"), None).await;
        assert_eq!(status, 200, "{body}");
        let (_, end) = follow(&api, id, Duration::from_secs(60)).await;
        assert_eq!(end["status"], "SUCCEEDED", "{end}");
    }
}
