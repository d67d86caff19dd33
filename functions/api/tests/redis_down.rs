//! Redis down: cached reads stay correct (the cache falls back to Postgres), rate limiting lets
//! requests through, SSE replays events from Postgres, the warnings about it are rate-limited,
//! and the cache is used again once Redis is back. Each test runs a `redis-server` of its own on
//! a fixed port of 127.0.0.1 (23011, 23012) and kills it mid-test.

mod common;
mod trig_support;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt as _;
use serde_json::json;
use tower::ServiceExt as _;
use trig_support::*;

/// A `redis-server` this test started; killed (by its own pid) when dropped.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    /// `None` when the shared services are not configured (the harness skips such tests too).
    async fn start(port: u16) -> Option<Self> {
        store::testing::service_url("WEFT_TEST_REDIS_URL")?;
        let mut redis = Self { port, child: None };
        redis.restart().await;
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--daemonize",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("url");
        // Room for a loaded machine; a redis-server that never answers still fails the test.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut c).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn exists(&self, key: &str) -> bool {
        let client = redis::Client::open(self.url()).expect("url");
        let mut c = client.get_multiplexed_async_connection().await.expect("connect");
        redis::cmd("EXISTS").arg(key).query_async::<i64>(&mut c).await.expect("EXISTS") == 1
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Log lines written while the guard lives (on this thread, which runs the whole test).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn count(&self, needle: &str) -> usize {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
        text.lines().filter(|l| l.contains(needle)).count()
    }
}

#[tokio::test]
async fn with_redis_down_reads_stay_correct_and_rate_limiting_lets_requests_through() {
    let Some(mut redis) = OwnRedis::start(23011).await else { return };
    let logs = Logs::default();
    let _guard = logs.capture();
    let Some(app) = setup_with(Options { redis_url: Some(redis.url()), ..Options::default() }).await else { return };
    let limited = setup_with(Options { redis_url: Some(redis.url()), rate_limit: 3, ..Options::default() })
        .await
        .expect("limited app");
    // Another process on the same database and Redis, started while Redis is up.
    let other = second_instance(&app).await;
    let t = token("acme", "editor");

    // Redis up: the cache is used, and the limit holds.
    let id = app.create("acme", graph("before")).await;
    let r = app.call("GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let key = format!("{}:c:wf:acme:{id}", app.namespace);
    assert!(redis.exists(&key).await, "the workflow is cached in Redis");
    for _ in 0..3 {
        assert_eq!(limited.call("GET", "/v1/workflows", Some(&t), None).await.status, StatusCode::OK);
    }
    assert_eq!(limited.call("GET", "/v1/workflows", Some(&t), None).await.status, StatusCode::TOO_MANY_REQUESTS);

    redis.kill();

    // Reads answer what Postgres holds, writes go through, from either process.
    let r = app.call("GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "before");
    let r = app.call("PUT", &format!("/v1/workflows/{id}"), Some(&t), Some(json!({"graph": graph("after")}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.call("GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(r.body["name"], "after", "the writer reads its write");
    let r = call(&other, "GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "after", "another process reads it from Postgres");
    let r = app.call("POST", "/v1/workflows", Some(&t), Some(json!({"graph": graph("created while down")}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let created = r.body["id"].as_str().expect("id").to_owned();
    let r = call(&other, "GET", &format!("/v1/workflows/{created}"), Some(&t), None).await;
    assert_eq!(r.body["name"], "created while down", "{}", r.body);
    let r = app.call("DELETE", &format!("/v1/workflows/{created}"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        call(&other, "GET", &format!("/v1/workflows/{created}"), Some(&t), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call("GET", &format!("/v1/workflows/{created}"), Some(&t), None).await.status,
        StatusCode::NOT_FOUND
    );

    // The limiter fails open; the failures are logged once, not once per request.
    for i in 0..50 {
        let r = limited.call("GET", "/v1/workflows", Some(&t), None).await;
        assert_eq!(r.status, StatusCode::OK, "request {i} with Redis down: {}", r.body);
        let r = call(&other, "GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
        assert_eq!(r.body["name"], "after");
    }
    // One line per limiter and per cache (two caches saw failures), or one more each if a
    // 30-second interval passed on a slow machine; never one per failure.
    let limiter_warnings = logs.count("rate limiter unavailable");
    assert!((1..=2).contains(&limiter_warnings), "{limiter_warnings} warnings for 50 requests");
    let cache_warnings = logs.count("cache read failed");
    assert!((1..=4).contains(&cache_warnings), "{cache_warnings} warnings for more than 50 cache reads");

    // Redis back (empty): the cache fills again.
    redis.restart().await;
    // (Readers leave Redis alone for a second after a failure, so this takes a few rounds.)
    let mut cached = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let r = app.call("GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
        assert_eq!(r.body["name"], "after");
        if redis.exists(&key).await {
            cached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cached, "the cache is used again once Redis is back");
}

async fn sse(env: &Env, execution: &str) -> (StatusCode, Option<String>, String) {
    let request = Request::builder()
        .uri(format!("/v1/executions/{execution}/events?timeout_ms=0"))
        .header(header::AUTHORIZATION, format!("Bearer {}", token("acme", "viewer")))
        .body(Body::empty())
        .expect("request");
    let response = env.app.router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, content_type, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn with_redis_down_sse_replays_events_from_postgres() {
    let Some(mut redis) = OwnRedis::start(23012).await else { return };
    let Some(env) = env_with(Options { redis_url: Some(redis.url()), ..Options::default() }).await else { return };
    env.app.state.set_redis(cache::connect(&redis.url()).await.expect("redis"));
    let wf = env.publish("acme", graph("streamed")).await;
    let before = env.start("acme", &wf, json!({"name": "before"})).await;
    assert_eq!(env.finish("acme", &before).await["status"], "SUCCEEDED");
    let stream = format!("weft:exec:acme:{before}");
    assert!(redis.exists(&stream).await, "events went to the Redis stream too");

    redis.kill();

    // An execution recorded before the outage, and one that ran entirely during it.
    let during = env.start("acme", &wf, json!({"name": "during"})).await;
    assert_eq!(env.finish("acme", &during).await["output"], "during");
    for (execution, output) in [(&before, "before"), (&during, "during")] {
        let (status, content_type, body) = sse(&env, execution).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(content_type.as_deref(), Some("text/event-stream"));
        assert!(body.starts_with("id: 1\n"), "replayed from the first event: {body}");
        assert!(body.contains("node_succeeded"), "{body}");
        let end = body.split("event: end\ndata: ").nth(1).expect("an end event");
        let end: serde_json::Value = serde_json::from_str(end.trim()).expect("end data");
        assert_eq!(end["status"], "SUCCEEDED");
        assert_eq!(end["output"], output);
    }
}
