//! Shared harness of the `executions_*` and `sse_*` tests: a real `weft serve` process on a fresh
//! database, driven over HTTP on 127.0.0.1 only.
//!
//! Needs `WEFT_TEST_DATABASE_URL` and `WEFT_TEST_REDIS_URL`; without them a test prints a note and
//! passes, unless `WEFT_TEST_STRICT=1`.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use serde_json::{Value, json};

pub const WEFT: &str = env!("CARGO_BIN_EXE_weft");
pub const SECRET: &str = "executions-test-secret-0123456789abcdef-0123";
const ISSUER: &str = "https://issuer.executions.test";

/// A running `weft serve`, killed (SIGKILL) when dropped.
pub struct Serve {
    pub child: std::process::Child,
    /// The API's base URL.
    pub base: String,
    /// The Step Functions endpoint's URL (its own listener).
    pub sfn: String,
    /// The start-up line naming both.
    pub banner: String,
    pub db: String,
    pub redis: String,
    /// Everything the server wrote on stderr so far (its log).
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database and the Redis URL, or `None` (after a note) when not configured.
pub async fn services() -> Option<(String, String)> {
    let admin = store::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    let redis = store::testing::service_url("WEFT_TEST_REDIS_URL")?;
    let db = store::testing::create_database(&admin).await.expect("database");
    Some((db, redis))
}

impl Serve {
    /// Starts `weft serve` on a free port (or `port`) against `db`.
    pub fn start(db: &str, redis: &str, port: u16, env: &[(&str, &str)]) -> Serve {
        let mut cmd = Command::new(WEFT);
        cmd.args(["serve", "--port", &port.to_string()])
            .env("WEFT_DATABASE_URL", db)
            .env("WEFT_REDIS_URL", redis)
            .env("WEFT_JWT_SECRET", SECRET)
            .env("WEFT_JWT_ISSUER", ISSUER)
            .env("WEFT_JWT_AUDIENCE", "weft")
            .env("WEFT_SECRETS_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
            .env("WEFT_RATE_LIMIT", "0")
            .env("WEFT_HTTP_ALLOW", "127.0.0.1")
            .env_remove("WEFT_SFN_ENDPOINT")
            .env_remove("WEFT_SFN_ENABLED")
            .env_remove("WEFT_SFN_ACCESS_KEY_ID")
            .env_remove("WEFT_SFN_SECRET_ACCESS_KEY")
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn weft serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut serve = Serve {
            child,
            base: String::new(),
            sfn: String::new(),
            banner: String::new(),
            db: db.to_owned(),
            redis: redis.to_owned(),
            log: Default::default(),
        };
        // One thread reads stderr for good (so the child never blocks on a full pipe), keeps it in
        // `log` and echoes it; the addresses are taken from the first "listening on" line, waited
        // for with a bound so a server that never starts fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log = serve.log.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
            let mut found = false;
            for line in &mut lines {
                if !found && line.contains("listening on") {
                    found = true;
                    let _ = tx.send(line);
                    continue;
                }
                eprintln!("[weft serve] {line}");
                {
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
                if !found {
                    let _ = tx.send(String::new());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = 0;
        while serve.base.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => {
                    let mut urls = line.split_whitespace().filter(|w| w.starts_with("http://"));
                    serve.base = urls.next().unwrap_or_default().to_owned();
                    serve.sfn = urls.next().unwrap_or_default().to_owned();
                    serve.banner = line.trim().to_owned();
                }
                Ok(_) => seen += 1,
                // Dropping `serve` on these panics kills the child.
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("weft serve did not start listening within 60 s ({seen} lines of log above)")
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("weft serve exited before listening"),
            }
        }
        serve
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }
}

pub fn token(tenant: &str) -> String {
    token_as(tenant, "editor")
}

pub fn token_as(tenant: &str, role: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = json!({"sub": format!("tester@{tenant}"), "tenant": tenant, "role": role, "iss": ISSUER,
                        "aud": "weft", "exp": now + 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).expect("key"),
    )
    .expect("sign")
}

/// An HTTP client for one tenant.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub fn new(base: &str, tenant: &str) -> Api {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        Api { http, base: base.to_owned(), token: token(tenant) }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Creates and publishes `graph`; returns the workflow id.
    pub async fn publish(&self, graph: Value) -> String {
        let (status, created) = self.call(reqwest::Method::POST, "/v1/workflows", Some(json!({"graph": graph}))).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_owned();
        let (status, published) = self.call(reqwest::Method::POST, &format!("/v1/workflows/{id}/versions"), None).await;
        assert_eq!(status, 201, "{published}");
        id
    }

    pub async fn start(&self, workflow: &str, input: Value) -> String {
        let (status, started) = self
            .call(reqwest::Method::POST, &format!("/v1/workflows/{workflow}/executions"), Some(json!({"input": input})))
            .await;
        assert_eq!(status, 201, "{started}");
        started["id"].as_str().expect("id").to_owned()
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Polls the execution until `done(status)`, at most `limit`.
    pub async fn wait_status(&self, execution: &str, limit: Duration, done: impl Fn(&str) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let e = self.get(&format!("/v1/executions/{execution}")).await;
            if done(e["status"].as_str().unwrap_or("")) {
                return e;
            }
            assert!(Instant::now() < deadline, "execution {execution} still {} after {limit:?}", e["status"]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

/// Reads one SSE response from `path`, resuming after `last_event_id`. Stops early (dropping
/// the connection) after `max_events` data events, if given.
pub async fn read_sse(api: &Api, path: &str, last_event_id: Option<&str>, max_events: Option<usize>) -> Vec<Sse> {
    let mut req =
        api.http.get(format!("{}{path}", api.base)).bearer_auth(&api.token).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = req.send().await.expect("sse request");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/event-stream"));
    let mut stream = res.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut ev = Sse { id: None, event: None, data: String::new(), retry: None };
            let mut any = false;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    ev.id = Some(v.to_owned());
                    any = true;
                } else if let Some(v) = line.strip_prefix("event: ") {
                    ev.event = Some(v.to_owned());
                    any = true;
                } else if let Some(v) = line.strip_prefix("data: ") {
                    ev.data.push_str(v);
                    any = true;
                } else if let Some(v) = line.strip_prefix("retry: ") {
                    ev.retry = v.trim().parse().ok();
                    any = true;
                }
            }
            if any {
                out.push(ev);
                if max_events.is_some_and(|m| out.iter().filter(|e| e.id.is_some()).count() >= m) {
                    return out;
                }
            }
        }
    }
    out
}

/// Follows an execution's events to the final `end` event, reconnecting after `retry:` hints as
/// an EventSource does. Returns the data events (parsed) and the `end` event's data.
pub async fn follow(api: &Api, execution: &str, limit: Duration) -> (Vec<Value>, Value) {
    let deadline = Instant::now() + limit;
    let mut last: Option<String> = None;
    let mut events = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no end event within {limit:?}");
        let got =
            read_sse(api, &format!("/v1/executions/{execution}/events?timeout_ms=2000"), last.as_deref(), None).await;
        for ev in got {
            if ev.event.as_deref() == Some("end") {
                return (events, serde_json::from_str(&ev.data).expect("end data"));
            }
            if let Some(id) = ev.id {
                events.push(serde_json::from_str::<Value>(&ev.data).expect("event data"));
                last = Some(id);
            }
        }
    }
}

/// The events' `(type, node_id)` pairs.
pub fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e["type"].as_str().unwrap_or("").to_owned(), e["node_id"].as_str().unwrap_or("").to_owned()))
        .collect()
}
