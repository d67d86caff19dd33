//! A small implementation of the Lambda Runtime API (the HTTP protocol between the Lambda service
//! and a `bootstrap`), for tests and benchmarks that run a real function binary on 127.0.0.1:
//! start it, set `AWS_LAMBDA_RUNTIME_API` (see [`RuntimeApi::lambda_env`]), spawn the binary and
//! call [`RuntimeApi::invoke`].
//!
//! Implemented endpoints (API version `2018-06-01`): `GET invocation/next`,
//! `POST invocation/{id}/response`, `POST invocation/{id}/error`, `POST init/error`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

/// How one invocation ended, as the function reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST invocation/{id}/response`: the function's JSON output.
    Response(Value),
    /// `POST invocation/{id}/error`: the Lambda error document.
    Error { error_type: String, error_message: String },
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<(String, Value)>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<String>>,
    arrived: Notify,
}

/// A running Runtime API server on 127.0.0.1; stops when dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            // The server only ends when aborted; an accept error ends the test visibly instead.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { address, inner, server, next_id: 0.into() })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The environment the Lambda service gives a function process.
    pub fn lambda_env(&self, function_name: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Queues one event and waits until the function posts its response or error.
    /// Returns `None` if `timeout` passes first (e.g. the process died).
    pub async fn invoke(&self, payload: Value, timeout: Duration) -> Option<Outcome> {
        let id = format!("req-{}", self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(id.clone(), tx);
        lock(&self.inner.queue).push_back((id, payload));
        self.inner.arrived.notify_waiters();
        self.inner.arrived.notify_one();
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }

    /// The error the function reported during initialisation, if any.
    pub fn init_error(&self) -> Option<String> {
        lock(&self.inner.init_error).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another handler panicked; the data is still usable for a test.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn next(State(inner): State<Arc<Inner>>) -> Response {
    loop {
        let notified = inner.arrived.notified();
        if let Some((id, payload)) = lock(&inner.queue).pop_front() {
            let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(900);
            let mut headers = HeaderMap::new();
            let pairs = [
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:local".to_owned(),
                ),
                ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()),
            ];
            for (k, v) in pairs {
                if let Ok(v) = v.parse() {
                    headers.insert(k, v);
                }
            }
            return (headers, axum::Json(payload)).into_response();
        }
        notified.await;
    }
}

async fn response(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let value =
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    finish(&inner, &id, Outcome::Response(value))
}

async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    finish(&inner, &id, Outcome::Error { error_type: field("errorType"), error_message: field("errorMessage") })
}

async fn init_error(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    *lock(&inner.init_error) = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

fn finish(inner: &Inner, id: &str, outcome: Outcome) -> StatusCode {
    match lock(&inner.pending).remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

/// Cold-start measurements of one function binary.
#[derive(Debug, Clone)]
pub struct ColdStarts {
    /// Process spawn → first response posted to the Runtime API, per run, sorted.
    pub cold: Vec<Duration>,
    /// A second invocation on the same, warm process, per run, sorted.
    pub warm: Vec<Duration>,
}

/// Spawns `binary` `runs` times under this Runtime API and times its first and second response,
/// checking each response equals `expected`.
pub async fn measure_cold_starts(
    binary: &str,
    payload: &Value,
    expected: &Value,
    runs: usize,
    env: &[(&str, &str)],
) -> Result<ColdStarts, String> {
    let api = RuntimeApi::start().await.map_err(|e| format!("cannot start the Runtime API: {e}"))?;
    let mut cold = Vec::with_capacity(runs);
    let mut warm = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = std::time::Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .envs(api.lambda_env("bench"))
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {binary}: {e}"))?;
        let first = api.invoke(payload.clone(), Duration::from_secs(10)).await;
        cold.push(started.elapsed());
        let second_started = std::time::Instant::now();
        let second = api.invoke(payload.clone(), Duration::from_secs(10)).await;
        warm.push(second_started.elapsed());
        let _ = child.kill().await;
        for outcome in [first, second] {
            match outcome {
                Some(Outcome::Response(v)) if &v == expected => {}
                other => {
                    return Err(format!("unexpected outcome {other:?} (init error: {:?})", api.init_error()));
                }
            }
        }
    }
    cold.sort();
    warm.sort();
    Ok(ColdStarts { cold, warm })
}

/// The body of a `harness = false` bench: prints binary size and cold/warm start percentiles.
pub fn bench_main(binary: &str, payload: Value, expected: Value) {
    bench_main_with_env(binary, payload, expected, &[]);
}

/// [`bench_main`] with extra environment variables for the function process.
pub fn bench_main_with_env(binary: &str, payload: Value, expected: Value, env: &[(&str, &str)]) {
    let runs = std::env::var("COLD_START_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(30);
    let size = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(measure_cold_starts(binary, &payload, &expected, runs, env)) {
        Ok(m) => {
            let pct = |v: &[Duration], p: usize| {
                v.get((v.len() * p / 100).min(v.len().saturating_sub(1))).copied().unwrap_or_default()
            };
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!("binary   {binary}");
            println!("size     {:.2} MiB ({size} bytes)", size as f64 / (1 << 20) as f64);
            println!(
                "cold     min {:.2} ms  p50 {:.2} ms  p90 {:.2} ms  (spawn -> first response via the Runtime API, {runs} runs)",
                ms(pct(&m.cold, 0)),
                ms(pct(&m.cold, 50)),
                ms(pct(&m.cold, 90))
            );
            println!(
                "warm     min {:.3} ms  p50 {:.3} ms  p90 {:.3} ms  (second invocation, same process)",
                ms(pct(&m.warm, 0)),
                ms(pct(&m.warm, 50)),
                ms(pct(&m.warm, 90))
            );
        }
        Err(e) => {
            eprintln!("cold start bench failed: {e}");
            std::process::exit(1);
        }
    }
}
