//! Shared harness of the AI-node tests (`ai_run`, `ai_examples`): real peers on 127.0.0.1 only.
//!
//! - The model provider: `model_client::testing::ScriptedServer` (`OPENAI_BASE_URL`).
//! - Milvus: a real `milvus-lite server` on a port of 29530-29539 (never the default 19530, which
//!   a developer's own Milvus may use), killed and its data removed on drop. `python3 -m pip
//!   install milvus-lite==3.2.2 pymilvus` provides it; without it a test skips (fails under
//!   `WEFT_TEST_STRICT=1`).
//! - HTTP tools and sources: [`Peer`], an axum server answering from a route table and recording
//!   every request.
//! - `weft run` itself, as a process ([`run`]).

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// The ports milvus-lite may use in these tests.
const MILVUS_PORTS: std::ops::RangeInclusive<u16> = 29530..=29539;

#[path = "../../../functions/vector/tests/common/milvus.rs"]
mod milvus_lite;

/// milvus-lite on the first free port of 29530-29539.
pub struct MilvusLite(milvus_lite::MilvusLite);

impl MilvusLite {
    pub fn start() -> Option<Self> {
        milvus_lite::MilvusLite::start_on(MILVUS_PORTS, "weft-cli-milvus").map(Self)
    }

    pub fn url(&self) -> String {
        self.0.url()
    }
}

/// One request a [`Peer`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    pub body: String,
}

/// An HTTP server on 127.0.0.1: `GET`/`POST` of a path in its table answers that JSON (or, for a
/// string value, that text); anything else 404. Every request is recorded.
#[derive(Clone)]
pub struct Peer {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

type Routes = Arc<HashMap<String, Value>>;

impl Peer {
    pub async fn start(routes: &[(&str, Value)]) -> Peer {
        let routes: Routes = Arc::new(routes.iter().map(|(p, v)| ((*p).to_owned(), v.clone())).collect());
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let record = received.clone();
        let app = axum::Router::new().fallback(move |State(routes): State<Routes>, request: Request| {
            let record = record.clone();
            async move {
                let method = request.method().to_string();
                let uri = request.uri().to_string();
                let path = request.uri().path().to_owned();
                let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap_or_default();
                record.lock().unwrap().push(Received {
                    method,
                    uri,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let answer: Response = match routes.get(&path) {
                    Some(Value::String(text)) => text.clone().into_response(),
                    Some(v) => axum::Json(v.clone()).into_response(),
                    None => (StatusCode::NOT_FOUND, axum::Json(json!({"error": "no such page"}))).into_response(),
                };
                answer
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app.with_state(routes)).await });
        Peer { url: format!("http://{addr}"), received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// What it received since the last call, forgetting it.
    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().unwrap())
    }
}

/// What one `weft run` did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The output JSON (the run must have succeeded).
    pub fn output(&self) -> Value {
        assert_eq!(self.code, Some(0), "weft run failed:\n{}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// The `model usage:` line's numbers: (input tokens, output tokens, cost in USD).
    pub fn usage_line(&self) -> Option<(u64, u64, f64)> {
        let line = self.stderr.lines().find_map(|l| l.trim().strip_prefix("model usage: "))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        // "<in> input tokens, <out> output tokens, $<cost>"
        let input = words.first()?.parse().ok()?;
        let output = words.get(3)?.parse().ok()?;
        let cost = words.get(6)?.trim_start_matches('$').parse().ok()?;
        Some((input, output, cost))
    }
}

/// Writes `graph` to a scratch file and runs `weft run` on it with `input`, `args` and `env`
/// (the model at `model_url`, `WEFT_HTTP_ALLOW=127.0.0.1`), on a blocking thread so the peers of
/// this test's runtime keep serving.
pub async fn run(graph: &Value, input: &Value, model_url: &str, env: &[(&str, String)], args: &[&str]) -> Run {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("weft-ai-{}-{n}.json", std::process::id()));
    std::fs::write(&path, graph.to_string()).unwrap();
    let out = run_file(&path, input, model_url, env, args).await;
    let _ = std::fs::remove_file(&path);
    out
}

/// `weft run PATH` (see [`run`]).
pub async fn run_file(
    path: &std::path::Path,
    input: &Value,
    model_url: &str,
    env: &[(&str, String)],
    args: &[&str],
) -> Run {
    let mut cmd = Command::new(WEFT);
    cmd.arg("run").arg(path).args(["--input", &input.to_string()]).args(args);
    cmd.env("OPENAI_BASE_URL", model_url)
        .env("OPENAI_API_KEY", "sk-test")
        .env("WEFT_HTTP_ALLOW", "127.0.0.1")
        // A Milvus nobody runs, unless the test gives one: a vector node must not find a
        // developer's own.
        .env("WEFT_MILVUS_URL", "http://127.0.0.1:9")
        .envs(env.iter().map(|(k, v)| (*k, v)));
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run weft")).await.unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The repository's `examples/<name>.json`.
pub fn example(name: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(format!("{name}.json"))
}

/// A graph `start → <nodes in order> → done` whose output is `output`.
pub fn linear(id: &str, nodes: Vec<Value>, output: Value) -> Value {
    let mut all = vec![json!({"id": "start", "type": "start", "data": {}})];
    all.extend(nodes);
    all.push(json!({"id": "done", "type": "end", "data": {"output": output}}));
    let edges: Vec<Value> = all
        .windows(2)
        .enumerate()
        .map(|(i, w)| json!({"id": format!("e{i}"), "source": w[0]["id"], "target": w[1]["id"]}))
        .collect();
    json!({"format": "weft/v1", "id": id, "name": id, "nodes": all, "edges": edges})
}
