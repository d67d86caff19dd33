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
    Error {
        error_type: String,
        error_message: String,
    },
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
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            // The server only ends when aborted; an accept error ends the test visibly instead.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            inner,
            server,
            next_id: 0.into(),
        })
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
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            ),
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
        let id = format!(
            "req-{}",
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
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
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                + Duration::from_secs(900);
            let mut headers = HeaderMap::new();
            let pairs = [
                ("lambda-runtime-aws-request-id", id),
                (
                    "lambda-runtime-deadline-ms",
                    deadline.as_millis().to_string(),
                ),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:local".to_owned(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
                ),
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

async fn response(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    finish(&inner, &id, Outcome::Response(value))
}

async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |k: &str| {
        doc.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    finish(
        &inner,
        &id,
        Outcome::Error {
            error_type: field("errorType"),
            error_message: field("errorMessage"),
        },
    )
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
