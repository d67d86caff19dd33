//! Secrets end to end on a real `weft serve` (Postgres, Redis, its Step Functions endpoint, the
//! in-process http function) and a real echo server on 127.0.0.1:
//!
//! - tenant A stores `TOKEN` through `/v1/secrets`; a graph sends it to the echo server, which
//!   receives the header; tenant B with the same graph fails with `Secret.NotFound`;
//!   `WEFT_SECRET_TOKEN` in the server's environment is never used;
//! - the values (used in the url path and query, the method, headers, query and body) appear
//!   nowhere after runs that succeed, fail (connection refused, a 4xx echoing the request) and
//!   catch the failure: not in execution output, error or cause, events (JSON and SSE), any
//!   table of the database (`executions`, `execution_events`, `sfn_executions`,
//!   `sfn_history_chunks`, ...), Redis, or the server's log.

mod executions_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use executions_common::{Api, Serve, follow, services};
use reqwest::Method;
use serde_json::{Value, json};

const TOKEN: &str = "tenant-a-token-8d2f41c9";
/// A custom HTTP method is a token too: it takes a secret like every other field.
const VERB: &str = "SECRETVERB7Q";
const ENV_VALUE: &str = "from-the-server-env-0c55e1";

/// Echoes every request (method, path, query, headers, body) as JSON: 200, or 403 under
/// `/reject`. Keeps the Authorization headers it received.
async fn echo_server(seen: Arc<Mutex<Vec<String>>>) -> String {
    let app = axum::Router::new().fallback(move |request: Request| {
        let seen = seen.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let headers: serde_json::Map<String, Value> =
                parts.headers.iter().map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default()))).collect();
            if let Some(auth) = parts.headers.get("authorization").and_then(|v| v.to_str().ok()) {
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(auth.to_owned());
            }
            let status = if parts.uri.path().starts_with("/reject") { StatusCode::FORBIDDEN } else { StatusCode::OK };
            let echo = json!({"method": parts.method.as_str(), "path": parts.uri.path(), "query": parts.uri.query(),
                              "headers": headers, "body": String::from_utf8_lossy(&body)});
            (status, axum::Json(echo)).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// start → `call` (an http node using the secrets everywhere) → done (output `nodes.call`).
fn graph(id: &str, url: &str, method: &str, extra: Value) -> Value {
    let mut data = json!({"method": method, "url": url, "query": {"k": "{{ secrets.TOKEN }}", "n": 1},
        "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}", "X-Token": "{{ secrets.TOKEN }}"},
        "body": {"token": "{{ secrets.TOKEN }}", "list": ["a", "{{ secrets.TOKEN }}:{{ input.n }}"]}});
    let mut call = json!({"id": "call", "type": "http", "data": {}});
    if let (Some(d), Some(x)) = (data.as_object_mut(), extra.get("data").and_then(Value::as_object)) {
        d.extend(x.clone());
    }
    call["data"] = data;
    for key in ["retry", "on_error"] {
        if let Some(v) = extra.get(key) {
            call[key] = v.clone();
        }
    }
    json!({"format": "weft/v1", "id": id, "name": id,
        "nodes": [{"id": "start", "type": "start", "data": {}}, call,
                  {"id": "done", "type": "end", "data": {"output": "{{ nodes.call }}"}}],
        "edges": [{"id": "e1", "source": "start", "target": "call"}, {"id": "e2", "source": "call", "target": "done"}]})
}

/// A Redis reply as text: bulk strings decoded, arrays and maps flattened.
fn redis_text(v: &redis::Value) -> String {
    let mut out = String::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            redis::Value::BulkString(b) => out.push_str(&String::from_utf8_lossy(b)),
            redis::Value::SimpleString(s) => out.push_str(s),
            redis::Value::Array(items) | redis::Value::Set(items) => stack.extend(items.iter()),
            redis::Value::Map(pairs) => stack.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
            other => out.push_str(&format!("{other:?}")),
        }
        out.push('\n');
    }
    out
}

async fn finish(api: &Api, execution: &str) -> Value {
    api.wait_status(execution, Duration::from_secs(60), |s| s != "RUNNING" && s != "PENDING").await
}

fn assert_clean(what: &str, text: &str) {
    for value in [TOKEN, VERB, ENV_VALUE] {
        assert!(!text.contains(value), "{what} contains `{value}`:\n{text}");
        // The forms a URL or a JSON string would give these values (they are plain tokens, so
        // encoded forms are the same text; lower case is what a host would make of them).
        assert!(
            !text.to_ascii_lowercase().contains(&value.to_ascii_lowercase()),
            "{what} contains `{value}` (any case)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_resolve_per_tenant_and_never_leak() {
    let Some((db, redis)) = services().await else { return };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (tenant_a, tenant_b) = (format!("sec-a-{run}"), format!("sec-b-{run}"));
    let serve = Serve::start(
        &db,
        &redis,
        0,
        &[("WEFT_SECRET_TOKEN", ENV_VALUE), ("WEFT_SECRET_VERB", ENV_VALUE), ("RUST_LOG", "debug")],
    );
    let a = Api::new(&serve.base, &tenant_a);
    let b = Api::new(&serve.base, &tenant_b);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let echo = echo_server(seen.clone()).await;

    // Storing secrets takes an admin; running workflows an editor.
    let admin = Api { token: executions_common::token_as(&tenant_a, "admin"), ..a.clone() };
    for (name, value) in [("TOKEN", TOKEN), ("VERB", VERB)] {
        let (status, body) = admin.call(Method::POST, "/v1/secrets", Some(json!({"name": name, "value": value}))).await;
        assert_eq!(status, 201, "{body}");
        assert_clean("the create-secret response", &body.to_string());
    }
    let (_, listed) = admin.call(Method::GET, "/v1/secrets", None).await;
    assert_clean("the secret list", &listed.to_string());

    // 1. Success: every field carries a secret; the server gets them, the output has `***`.
    let ok_graph = graph(
        "sec-ok",
        &format!("{echo}/echo/{{{{ secrets.TOKEN }}}}?q={{{{ secrets.TOKEN }}}}"),
        "{{ secrets.VERB }}",
        json!({}),
    );
    let wf_a = a.publish(ok_graph.clone()).await;
    let ok = a.start(&wf_a, json!({"n": 7})).await;
    let ok_done = finish(&a, &ok).await;
    assert_eq!(ok_done["status"], "SUCCEEDED", "{ok_done}");
    assert_eq!(seen.lock().unwrap_or_else(|e| e.into_inner()).as_slice(), [format!("Bearer {TOKEN}")]);
    let out = &ok_done["output"];
    assert_eq!(out["status"], 200);
    assert_eq!(out["body"]["method"], "***");
    assert_eq!(out["body"]["headers"]["authorization"], "Bearer ***");
    assert_eq!(out["body"]["path"], "/echo/***");

    // 2. Tenant B, the very same graph: B has no TOKEN, and the environment is no fallback.
    let wf_b = b.publish(ok_graph).await;
    let denied = b.start(&wf_b, json!({"n": 7})).await;
    let denied_done = finish(&b, &denied).await;
    assert_eq!(denied_done["status"], "FAILED", "{denied_done}");
    assert_eq!(denied_done["error"], "Secret.NotFound", "{denied_done}");
    assert_eq!(seen.lock().unwrap_or_else(|e| e.into_inner()).len(), 1, "B's run must not reach the server");

    // 3. Failure: connection refused on a URL holding the secret (no retries).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let refused = graph(
        "sec-refused",
        &format!("http://{closed}/x/{{{{ secrets.TOKEN }}}}?q={{{{ secrets.TOKEN }}}}"),
        "GET",
        json!({"retry": {"max_attempts": 1}}),
    );
    let wf = a.publish(refused).await;
    let refused_id = a.start(&wf, json!({"n": 1})).await;
    let refused_done = finish(&a, &refused_id).await;
    assert_eq!(refused_done["status"], "FAILED", "{refused_done}");
    assert_eq!(refused_done["error"], "Http.Connect", "{refused_done}");
    assert!(refused_done["cause"].as_str().unwrap_or("").contains("/x/***?q=***"), "{refused_done}");

    // 4. Failure caught: a 403 that echoes the whole request; its cause becomes the output.
    let rejected = graph(
        "sec-4xx",
        &format!("{echo}/reject/{{{{ secrets.TOKEN }}}}"),
        "{{ secrets.VERB }}",
        json!({"on_error": "continue", "retry": {"max_attempts": 1}}),
    );
    let wf = a.publish(rejected).await;
    let rejected_id = a.start(&wf, json!({"n": 2})).await;
    let rejected_done = finish(&a, &rejected_id).await;
    assert_eq!(rejected_done["status"], "SUCCEEDED", "{rejected_done}");
    assert_eq!(rejected_done["output"]["error"], "Http.Status4xx", "{rejected_done}");
    assert!(rejected_done["output"]["cause"].as_str().unwrap_or("").contains("Bearer ***"), "{rejected_done}");

    // Everything the API shows about these executions.
    let mut shown = String::new();
    for (api, id) in [(&a, &ok), (&b, &denied), (&a, &refused_id), (&a, &rejected_id)] {
        shown.push_str(&api.get(&format!("/v1/executions/{id}")).await.to_string());
        let (_, events) = api.call(Method::GET, &format!("/v1/executions/{id}/events"), None).await;
        shown.push_str(&events.to_string());
        let (events, end) = follow(api, id, Duration::from_secs(30)).await;
        assert!(!events.is_empty());
        shown.push_str(&Value::Array(events).to_string());
        shown.push_str(&end.to_string());
    }
    shown.push_str(&a.get("/v1/executions").await.to_string());
    shown.push_str(&b.get("/v1/executions").await.to_string());
    assert!(shown.contains("Secret.NotFound") && shown.contains("Http.Connect") && shown.contains("Http.Status4xx"));
    assert_clean("the API's executions and events", &shown);

    // Every table of the database, as text (the sealed values are bytea, never the plain text).
    let pool = sqlx::PgPool::connect(&db).await.expect("connect");
    let tables: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .fetch_all(&pool)
        .await
        .expect("tables");
    for t in ["executions", "execution_event_chunks", "sfn_executions", "sfn_history_chunks"] {
        assert!(tables.iter().any(|x| x == t), "no table {t}");
    }
    for table in &tables {
        let dump: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM \"{table}\" t"
        )))
        .fetch_one(&pool)
        .await
        .expect("dump");
        assert_clean(&format!("table {table}"), &dump);
        if table == "sfn_history_chunks" {
            // The history does hold the run: the masked value and the templates, not the secret.
            assert!(dump.contains("***") && dump.contains("secrets.TOKEN"), "history lacks the run");
        }
    }

    // Redis: the event streams and cache entries of both tenants.
    let client = redis::Client::open(redis.as_str()).expect("redis");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis connection");
    for tenant in [&tenant_a, &tenant_b] {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("*{tenant}*")).query_async(&mut conn).await.expect("keys");
        assert!(!keys.is_empty(), "no Redis keys for {tenant}");
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.expect("type");
            let text = match kind.as_str() {
                "stream" => {
                    let v: redis::Value =
                        redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query_async(&mut conn).await.expect("xrange");
                    redis_text(&v)
                }
                "string" => {
                    let v: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("get");
                    String::from_utf8_lossy(&v).into_owned()
                }
                _ => continue,
            };
            assert_clean(&format!("Redis key {key}"), &text);
        }
    }

    // The server's own log, at debug level.
    let log = serve.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(log.contains("DEBUG"), "the log is not at debug level");
    assert_clean("the server log", &log);
}
