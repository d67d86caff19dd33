//! Executions end to end through HTTP only, against a real `weft serve` (its own Step Functions
//! endpoint, the engine and the in-process node functions), real Postgres and Redis: create,
//! publish, start, follow the SSE stream to the end, read the output; retries, a caught failure,
//! a failed execution redriven; idempotency keys, input validation, listing and tenancy.

mod executions_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use executions_common::{Api, Serve, follow, kinds, services};
use reqwest::Method;
use serde_json::{Value, json};

/// An HTTP server on 127.0.0.1 whose `/fail/{n}/{key}` fails with 503 the first `n` calls per
/// key, then answers 200; `/down` always answers 500.
async fn flaky_server() -> String {
    let counts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/fail/{n}/{key}",
            axum::routing::any(move |axum::extract::Path((n, key)): axum::extract::Path<(u32, String)>| {
                let counts = counts.clone();
                async move {
                    let seen = {
                        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
                        let e = c.entry(key).or_insert(0);
                        *e += 1;
                        *e
                    };
                    if seen <= n {
                        (StatusCode::SERVICE_UNAVAILABLE, format!("attempt {seen} fails"))
                    } else {
                        (StatusCode::OK, format!("{{\"attempt\": {seen}}}"))
                    }
                }
            }),
        )
        .route("/down", axum::routing::any(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "down") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn double_graph() -> Value {
    json!({"format": "weft/v1", "id": "double", "name": "Double",
        "nodes": [
            {"id": "start", "type": "start", "data": {"input_schema": {"type": "object", "required": ["n"],
                "properties": {"n": {"type": "number"}}}}},
            {"id": "double", "type": "code", "data": {"source": "return { n: input.n * 2 };"}},
            {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "double"}, {"id": "e2", "source": "double", "target": "done"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_run_end_to_end_over_http() {
    let Some((db, redis)) = services().await else { return };
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let workflow = api.publish(double_graph()).await;

    let execution = api.start(&workflow, json!({"n": 21})).await;
    let (events, end) = follow(&api, &execution, Duration::from_secs(60)).await;
    assert_eq!(end["status"], "SUCCEEDED", "{end}");
    assert_eq!(end["output"], json!({"n": 42}));
    let expected: Vec<(String, String)> = [
        ("execution_started", ""),
        ("node_started", "start"),
        ("node_succeeded", "start"),
        ("node_started", "double"),
        ("node_succeeded", "double"),
        ("node_started", "done"),
        ("node_succeeded", "done"),
        ("execution_succeeded", ""),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds(&events), expected);
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>(), "ids are dense and ordered");

    let got = api.get(&format!("/v1/executions/{execution}")).await;
    assert_eq!(got["status"], "SUCCEEDED");
    assert_eq!(got["input"], json!({"n": 21}));
    assert_eq!(got["output"], json!({"n": 42}));
    assert!(got["stopped_at"].is_string());
    let double = got["nodes"].as_array().expect("nodes").iter().find(|n| n["node_id"] == "double").expect("double");
    assert_eq!(double["status"], "SUCCEEDED");
    assert_eq!(double["attempts"], 1);

    // The same events went to the execution's Redis stream, in order.
    let client = redis::Client::open(redis.as_str()).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(format!("weft:exec:acme:{execution}"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("xrange");
    let stream_kinds: Vec<String> = entries
        .iter()
        .map(|(_, fields)| {
            let at = fields.iter().position(|f| f == "type").map_or(usize::MAX, |i| i + 1);
            fields.get(at).cloned().unwrap_or_default()
        })
        .collect();
    assert_eq!(stream_kinds, expected.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());

    // Idempotency: the same key answers the same execution; another input with it is refused.
    let key = [("idempotency-key", "order-7")];
    let body = json!({"input": {"n": 1}});
    let path = format!("/v1/workflows/{workflow}/executions");
    let (s1, first) = api.call_with(Method::POST, &path, Some(body.clone()), &key).await;
    let (s2, second) = api.call_with(Method::POST, &path, Some(body), &key).await;
    assert_eq!((s1, s2), (201, 200), "{first} {second}");
    assert_eq!(first["id"], second["id"]);
    let (s3, conflict) = api.call_with(Method::POST, &path, Some(json!({"input": {"n": 2}})), &key).await;
    assert_eq!(s3, 409);
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");

    // The start node's input_schema is enforced.
    let (status, invalid) = api.call(Method::POST, &path, Some(json!({"input": {"n": "x"}}))).await;
    assert_eq!(status, 422, "{invalid}");
    assert_eq!(invalid["error"]["code"], "invalid_input");
    assert!(invalid["error"]["message"].as_str().unwrap_or("").contains("$.n: expected number"));
    let (status, _) = api.call(Method::POST, &path, Some(json!({"input": {}}))).await;
    assert_eq!(status, 422);

    // Listing filters by status and workflow; pages with a cursor.
    let first_id = first["id"].as_str().expect("id").to_owned();
    api.wait_status(&first_id, Duration::from_secs(30), |s| s == "SUCCEEDED").await;
    let page = api.get(&format!("/v1/executions?workflow_id={workflow}&status=SUCCEEDED&limit=1")).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let next =
        api.get(&format!("/v1/executions?workflow_id={workflow}&status=SUCCEEDED&limit=1&cursor={cursor}")).await;
    let mut both = vec![page["items"][0]["id"].clone(), next["items"][0]["id"].clone()];
    both.sort_by_key(|v| v.to_string());
    let mut want = vec![json!(execution), json!(first_id)];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(both, want);
    let running = api.get(&format!("/v1/executions?workflow_id={workflow}&status=RUNNING")).await;
    assert_eq!(running["items"], json!([]));

    // Another tenant sees none of it.
    let other = Api::new(&serve.base, "globex");
    let (status, _) = other.call(Method::GET, &format!("/v1/executions/{execution}"), None).await;
    assert_eq!(status, 404);
    let (status, _) = other.call(Method::GET, &format!("/v1/executions/{execution}/events"), None).await;
    assert_eq!(status, 404);
    assert_eq!(other.get("/v1/executions").await["items"], json!([]));
    let (status, _) = other.call(Method::POST, &path, Some(json!({"input": {"n": 1}}))).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_report_retries_and_caught_failures() {
    let Some((db, redis)) = services().await else { return };
    let target = flaky_server().await;
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let graph = json!({"format": "weft/v1", "id": "flaky", "name": "Flaky",
        "nodes": [
            {"id": "start", "type": "start", "data": {}},
            {"id": "call", "type": "http", "retry": {"max_attempts": 4, "interval_seconds": 1, "backoff_rate": 1},
             "data": {"method": "GET", "url": format!("{target}/fail/2/call"), "fail_on_status": true}},
            {"id": "broken", "type": "http", "retry": {"max_attempts": 2, "interval_seconds": 1}, "on_error": "continue",
             "data": {"method": "GET", "url": format!("{target}/down"), "fail_on_status": true}},
            {"id": "done", "type": "end", "data": {"output": {"call": "{{ nodes.call.status }}", "broken": "{{ nodes.broken.error }}"}}}],
        "edges": [{"id": "e1", "source": "start", "target": "call"}, {"id": "e2", "source": "call", "target": "broken"},
                  {"id": "e3", "source": "broken", "target": "done"}]});
    let workflow = api.publish(graph).await;
    let execution = api.start(&workflow, json!({})).await;
    let (events, end) = follow(&api, &execution, Duration::from_secs(90)).await;
    assert_eq!(end["status"], "SUCCEEDED", "{end}");
    assert_eq!(end["output"], json!({"call": 200, "broken": "Http.Status5xx"}));
    let call: Vec<String> = kinds(&events).into_iter().filter(|(_, n)| n == "call").map(|(k, _)| k).collect();
    assert_eq!(call, ["node_started", "node_retried", "node_retried", "node_succeeded"]);
    let broken: Vec<String> = kinds(&events).into_iter().filter(|(_, n)| n == "broken").map(|(k, _)| k).collect();
    assert_eq!(broken, ["node_started", "node_retried", "node_failed"]);
    let failed = events.iter().find(|e| e["type"] == "node_failed").expect("node_failed");
    assert_eq!(failed["payload"]["error"], "Http.Status5xx");
    assert_eq!(failed["payload"]["attempt"], 2);

    let got = api.get(&format!("/v1/executions/{execution}")).await;
    let nodes = got["nodes"].as_array().expect("nodes");
    let node = |id: &str| nodes.iter().find(|n| n["node_id"] == id).cloned().unwrap_or_default();
    assert_eq!((node("call")["status"].clone(), node("call")["attempts"].clone()), (json!("SUCCEEDED"), json!(3)));
    assert_eq!((node("broken")["status"].clone(), node("broken")["attempts"].clone()), (json!("FAILED"), json!(2)));
    assert_eq!(node("broken")["error"], "Http.Status5xx");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_that_fail_can_be_redriven_and_stopped() {
    let Some((db, redis)) = services().await else { return };
    let target = flaky_server().await;
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    // One attempt only: the first call fails the execution; the second (after redrive) succeeds.
    let graph = json!({"format": "weft/v1", "id": "once", "name": "Fails once",
        "nodes": [
            {"id": "start", "type": "start", "data": {}},
            {"id": "call", "type": "http", "retry": {"max_attempts": 1},
             "data": {"method": "GET", "url": format!("{target}/fail/1/redrive"), "fail_on_status": true}},
            {"id": "done", "type": "end", "data": {"output": {"status": "{{ nodes.call.status }}"}}}],
        "edges": [{"id": "e1", "source": "start", "target": "call"}, {"id": "e2", "source": "call", "target": "done"}]});
    let workflow = api.publish(graph).await;
    let execution = api.start(&workflow, json!({})).await;
    let (_, end) = follow(&api, &execution, Duration::from_secs(60)).await;
    assert_eq!(end["status"], "FAILED", "{end}");
    assert_eq!(end["error"], "Http.Status5xx");
    let got = api.get(&format!("/v1/executions/{execution}")).await;
    assert_eq!((got["status"].clone(), got["error"].clone()), (json!("FAILED"), json!("Http.Status5xx")));

    let (status, redriven) = api.call(Method::POST, &format!("/v1/executions/{execution}/redrive"), None).await;
    assert_eq!(status, 200, "{redriven}");
    let (events, end) = follow(&api, &execution, Duration::from_secs(60)).await;
    assert_eq!(end["status"], "SUCCEEDED", "{end}");
    assert_eq!(end["output"], json!({"status": 200}));
    let k: Vec<String> = kinds(&events).into_iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let redrive_at = k.iter().position(|x| x == "execution_redriven:").expect("redriven event");
    assert_eq!(k[redrive_at - 1], "execution_failed:");
    assert_eq!(&k[redrive_at + 1..redrive_at + 3], ["node_started:call", "node_succeeded:call"]);
    let (status, again) = api.call(Method::POST, &format!("/v1/executions/{execution}/redrive"), None).await;
    assert_eq!((status, again["error"]["code"].clone()), (409, json!("not_redrivable")));

    // Stop: a long delay, stopped, ends ABORTED with the given error.
    let slow = json!({"format": "weft/v1", "id": "slow", "name": "Slow",
        "nodes": [{"id": "start", "type": "start", "data": {}}, {"id": "nap", "type": "delay", "data": {"seconds": 120}},
                  {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "nap"}, {"id": "e2", "source": "nap", "target": "done"}]});
    let slow = api.publish(slow).await;
    let execution = api.start(&slow, json!({})).await;
    api.wait_status(&execution, Duration::from_secs(10), |s| s == "RUNNING").await;
    let (status, stopped) = api
        .call(Method::POST, &format!("/v1/executions/{execution}/stop"), Some(json!({"error": "User.Cancelled"})))
        .await;
    assert_eq!(status, 200, "{stopped}");
    let (_, end) = follow(&api, &execution, Duration::from_secs(30)).await;
    assert_eq!((end["status"].clone(), end["error"].clone()), (json!("ABORTED"), json!("User.Cancelled")));
    let (status, _) = api.call(Method::POST, &format!("/v1/executions/{execution}/stop"), None).await;
    assert_eq!(status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_wait_runs_express_workflows_synchronously() {
    let Some((db, redis)) = services().await else { return };
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let graph = json!({"format": "weft/v1", "id": "quick", "name": "Quick", "settings": {"type": "express"},
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "sq", "type": "code", "data": {"source": "return { sq: input.n * input.n };"}},
                  {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "sq"}, {"id": "e2", "source": "sq", "target": "done"}]});
    let workflow = api.publish(graph).await;
    let path = format!("/v1/workflows/{workflow}/executions?wait=true");
    let (status, done) = api.call(Method::POST, &path, Some(json!({"input": {"n": 7}}))).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!((done["status"].clone(), done["output"].clone()), (json!("SUCCEEDED"), json!({"sq": 49})));
    let id = done["id"].as_str().expect("id");
    let got = api.get(&format!("/v1/executions/{id}")).await;
    assert_eq!(got["output"], json!({"sq": 49}));
    let (events, end) = follow(&api, id, Duration::from_secs(10)).await;
    assert_eq!(end["status"], "SUCCEEDED");
    assert_eq!(kinds(&events).last().map(|(k, _)| k.clone()), Some("execution_succeeded".to_owned()));

    // A STANDARD workflow cannot be waited for.
    let mut standard = double_graph();
    standard["settings"] = json!({"type": "standard"});
    let standard = api.publish(standard).await;
    let (status, refused) = api
        .call(Method::POST, &format!("/v1/workflows/{standard}/executions?wait=true"), Some(json!({"input": {"n": 1}})))
        .await;
    assert_eq!(status, 400, "{refused}");
}
