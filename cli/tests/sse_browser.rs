//! A real browser's `EventSource` (headless Chromium) follows a whole execution over SSE,
//! reconnecting after each bounded response with `Last-Event-ID`, and receives every event
//! exactly once, in order, then the `end` event.
//!
//! EventSource cannot send an `Authorization` header, so the test serves the page from a small
//! same-origin proxy on 127.0.0.1 that adds the bearer token (as a BFF or API Gateway authorizer
//! with a cookie would). Needs `chromium` (Debian: `apt-get install -y chromium`) or
//! `WEFT_CHROMIUM=/path`; skipped with a note when missing unless `WEFT_TEST_STRICT=1`.

mod executions_common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use executions_common::{Api, Serve, read_sse, services};
use serde_json::{Value, json};

const PAGE: &str = r#"<!doctype html><html><body><pre id="log"></pre><script>
const log = [];
const es = new EventSource('/events');
es.onmessage = (e) => { log.push({id: e.lastEventId, data: JSON.parse(e.data)}); };
es.addEventListener('end', (e) => {
  es.close();
  fetch('/result', {method: 'POST', headers: {'content-type': 'application/json'},
    body: JSON.stringify({events: log, end: JSON.parse(e.data)})});
});
</script></body></html>"#;

#[derive(Clone)]
struct Proxy {
    api: Api,
    /// Set once the browser is connected, so the execution runs while the browser listens.
    execution: Arc<Mutex<Option<String>>>,
    result: Arc<Mutex<Option<Value>>>,
    requests: Arc<Mutex<Vec<Option<String>>>>,
}

async fn events(State(p): State<Proxy>, headers: HeaderMap) -> Response {
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    p.requests.lock().unwrap_or_else(|e| e.into_inner()).push(last.clone());
    let mut execution = None;
    for _ in 0..1200 {
        execution = p.execution.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if execution.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(execution) = execution else { return StatusCode::SERVICE_UNAVAILABLE.into_response() };
    // Short responses, so the browser reconnects several times during the execution.
    let mut req = p
        .api
        .http
        .get(format!("{}/v1/executions/{execution}/events?timeout_ms=700", p.api.base))
        .bearer_auth(&p.api.token);
    if let Some(id) = last {
        req = req.header("last-event-id", id);
    }
    match req.send().await {
        Ok(res) => {
            let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            (
                status,
                [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")],
                Body::from_stream(res.bytes_stream()),
            )
                .into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

fn chromium() -> Option<String> {
    if let Ok(path) = std::env::var("WEFT_CHROMIUM") {
        return Some(path);
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| (*p).to_owned())
}

struct Browser(std::process::Child, std::path::PathBuf);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_browser_eventsource_receives_a_whole_execution() {
    let Some(browser_path) = chromium() else {
        test_skip::skip("chromium not found (apt-get install -y chromium, or set WEFT_CHROMIUM)");
        return;
    };
    let Some((db, redis)) = services().await else { return };
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let graph = json!({"format": "weft/v1", "id": "browser", "name": "Browser",
        "nodes": [
            {"id": "start", "type": "start", "data": {}},
            {"id": "greet", "type": "code", "data": {"source": "return { text: 'hello ' + input.name };"}},
            {"id": "pause", "type": "delay", "data": {"seconds": 2}},
            {"id": "shout", "type": "code", "data": {"source": "return { text: nodes.greet.text.toUpperCase() };"}},
            {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "greet"}, {"id": "e2", "source": "greet", "target": "pause"},
                  {"id": "e3", "source": "pause", "target": "shout"}, {"id": "e4", "source": "shout", "target": "done"}]});
    let workflow = api.publish(graph).await;

    let proxy = Proxy { api: api.clone(), execution: Arc::default(), result: Arc::default(), requests: Arc::default() };
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { ([(header::CONTENT_TYPE, "text/html")], PAGE) }))
        .route("/events", axum::routing::get(events))
        .route(
            "/result",
            axum::routing::post(|State(p): State<Proxy>, body: axum::body::Bytes| async move {
                *p.result.lock().unwrap_or_else(|e| e.into_inner()) = serde_json::from_slice(&body).ok();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(proxy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let page = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let profile = std::env::temp_dir().join(format!("weft-sse-chromium-{}", uuid_like()));
    let child = Command::new(&browser_path)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--remote-debugging-port=0",
            &format!("--user-data-dir={}", profile.display()),
            &page,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let _browser = Browser(child, profile);

    // Start the execution once the browser's EventSource is connected.
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.requests.lock().map(|r| r.is_empty()).unwrap_or(true) {
        assert!(Instant::now() < deadline, "the browser never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let execution = api.start(&workflow, json!({"name": "browser"})).await;
    *proxy.execution.lock().unwrap_or_else(|e| e.into_inner()) = Some(execution.clone());

    let deadline = Instant::now() + Duration::from_secs(90);
    let result = loop {
        if let Some(r) = proxy.result.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the browser reported nothing; requests: {:?}",
            proxy.requests.lock().map(|r| r.clone())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(result["end"]["status"], "SUCCEEDED", "{result}");
    assert_eq!(result["end"]["output"], json!({"text": "HELLO BROWSER"}));

    let whole = read_sse(&api, &format!("/v1/executions/{execution}/events"), None, None).await;
    let expected: Vec<Value> = whole
        .into_iter()
        .filter_map(|e| {
            e.id.map(|id| json!({"id": id, "data": serde_json::from_str::<Value>(&e.data).unwrap_or_default()}))
        })
        .collect();
    assert_eq!(result["events"], Value::Array(expected.clone()), "the browser saw other events");
    assert!(expected.len() >= 12);
    let requests = proxy.requests.lock().map(|r| r.clone()).unwrap_or_default();
    assert!(requests.len() >= 2, "the browser should have reconnected: {requests:?}");
    assert_eq!(requests[0], None);
    assert!(requests[1..].iter().all(Option::is_some), "reconnects carry Last-Event-ID: {requests:?}");
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}
