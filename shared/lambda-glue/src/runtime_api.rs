//! A small implementation of the Lambda Runtime API (the HTTP protocol between the Lambda service
//! and a `bootstrap`), for tests and benchmarks that run a real function binary on 127.0.0.1:
//! start it, spawn the binary under it ([`RuntimeApi::spawn`]: Lambda's environment, see
//! [`RuntimeApi::lambda_env`]) and call [`RuntimeApi::invoke`].
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
    /// `GET invocation/next` requests received: a bootstrap that failed its initialisation never
    /// asks for an event.
    polls: std::sync::atomic::AtomicUsize,
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

    /// How many times a function asked for its next event (`GET invocation/next`).
    pub fn polls(&self) -> usize {
        self.inner.polls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Spawns `binary` as the Lambda service would: an environment of only Lambda's variables
    /// ([`Self::lambda_env`]) and `env`, stdout (the JSON logs) and stderr collected.
    pub fn spawn(&self, binary: &str, function_name: &str, env: &[(&str, &str)]) -> std::io::Result<Bootstrap> {
        let mut child = tokio::process::Command::new(binary)
            .env_clear()
            .envs(self.lambda_env(function_name))
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = collect(child.stdout.take());
        let stderr = collect(child.stderr.take());
        Ok(Bootstrap { child, stdout, stderr })
    }

    /// Spawns `binary` expecting its initialisation to fail, as a bootstrap's does when `main`
    /// returns an error before `run` (a missing or invalid setting): the process exits non-zero
    /// within `limit` without asking for an event and without posting `init/error` (lambda_runtime
    /// posts that only for its SnapStart hooks; Lambda reports such an exit as `Runtime.ExitError`).
    /// Returns what it wrote on stderr, or what happened instead.
    pub async fn init_failure(
        &self,
        binary: &str,
        function_name: &str,
        env: &[(&str, &str)],
        limit: Duration,
    ) -> Result<String, String> {
        let polls = self.polls();
        let bootstrap = self.spawn(binary, function_name, env).map_err(|e| format!("cannot start {binary}: {e}"))?;
        let exited = match bootstrap.exit_within(limit).await {
            Some(exited) => exited.map_err(|e| format!("waiting for {binary}: {e}"))?,
            None => return Err(format!("{binary} still runs after {limit:?}")),
        };
        let seen = format!("exit code {:?}, stdout {:?}, stderr {:?}", exited.code, exited.stdout, exited.stderr);
        match exited.code {
            Some(0) | None => Err(format!("{binary} did not fail: {seen}")),
            Some(_) if self.polls() != polls => Err(format!("{binary} asked for an event: {seen}")),
            Some(_) if self.init_error().is_some() => Err(format!("{binary} posted {:?}: {seen}", self.init_error())),
            Some(_) => Ok(exited.stderr),
        }
    }
}

/// A function process started by [`RuntimeApi::spawn`]; killed when dropped.
pub struct Bootstrap {
    child: tokio::process::Child,
    stdout: tokio::task::JoinHandle<String>,
    stderr: tokio::task::JoinHandle<String>,
}

/// How a [`Bootstrap`] ended and what it wrote.
#[derive(Debug)]
pub struct Exited {
    /// `None` when it was killed (by [`Bootstrap::stop`]).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Bootstrap {
    /// Kills the process (a Lambda environment being shut down) and returns what it wrote.
    pub async fn stop(mut self) -> std::io::Result<Exited> {
        self.child.start_kill()?;
        self.finish().await
    }

    /// Waits at most `limit` for the process to end by itself, e.g. after a failed
    /// initialisation; `None` if it is still running then (it is killed when dropped).
    pub async fn exit_within(mut self, limit: Duration) -> Option<std::io::Result<Exited>> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(_) => Some(self.finish().await),
            Err(_) => None,
        }
    }

    async fn finish(mut self) -> std::io::Result<Exited> {
        let status = self.child.wait().await?;
        let text = |r: Result<String, tokio::task::JoinError>| r.unwrap_or_default();
        Ok(Exited {
            code: status.code(),
            stdout: text((&mut self.stdout).await),
            stderr: text((&mut self.stderr).await),
        })
    }
}

/// Reads a child's pipe to its end on a task of its own, so a chatty process never blocks on a
/// full pipe.
fn collect<R: tokio::io::AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut bytes).await;
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another handler panicked; the data is still usable for a test.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn next(State(inner): State<Arc<Inner>>) -> Response {
    inner.polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        let env: Vec<(&str, &str)> = [("RUST_LOG", "warn")].into_iter().chain(env.iter().copied()).collect();
        let child = api.spawn(binary, "bench", &env).map_err(|e| format!("cannot start {binary}: {e}"))?;
        let first = api.invoke(payload.clone(), Duration::from_secs(10)).await;
        cold.push(started.elapsed());
        let second_started = std::time::Instant::now();
        let second = api.invoke(payload.clone(), Duration::from_secs(10)).await;
        warm.push(second_started.elapsed());
        let _ = child.stop().await;
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
