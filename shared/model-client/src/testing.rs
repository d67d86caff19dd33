//! A scripted OpenAI-compatible server for tests (feature `test-util`), on 127.0.0.1.
//!
//! It speaks the real wire format of `POST /v1/chat/completions` (JSON, or SSE when the body
//! says `stream: true`) and `POST /v1/embeddings`, records every request, and answers from a
//! script: [`ScriptedServer::push`] queues replies for chat completions (and
//! [`ScriptedServer::push_embeddings`] for embeddings), each used once, in order; with the
//! queue empty, chat echoes the last user message (`You said: ...`) and embeddings are computed.
//!
//! Streams are split into many small chunks (1 to 3 characters of text each; tool-call arguments
//! too), start with an SSE comment (a keep-alive, as OpenRouter sends), carry `usage: null` on
//! every chunk and a usage chunk with empty `choices` at the end when the request asked for
//! `stream_options.include_usage`, then `data: [DONE]`. Each written chunk is logged with its
//! [`Instant`] ([`ScriptedServer::emissions`]) for latency measurements.
//!
//! Embeddings: signed feature hashing of the lower-cased text's character trigrams (FNV-1a) into
//! `dim` buckets (default 64, [`ScriptedServer::set_embedding_dim`] or the request's
//! `dimensions`), L2-normalised: deterministic, and texts sharing trigrams are close. The
//! response lists the items in reverse order (with their `index`), as a server may.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::prices::estimate_tokens;

/// A fault the server answers with instead of a completion.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 with `Retry-After: <value>` if given.
    RateLimited { retry_after: Option<String> },
    /// 500, OpenAI's `server_error` body.
    ServerError,
    /// 401, OpenAI's `invalid_api_key` body, quoting the key it received (as some servers do).
    Unauthorized,
    /// 400 with `code: context_length_exceeded`.
    ContextTooLong,
    /// 200 with a body (or stream chunk) that is not valid JSON.
    MalformedJson,
    /// Any status with any JSON body.
    Status { status: u16, body: Value },
}

#[derive(Debug, Clone, PartialEq)]
enum Content {
    Echo,
    Text(String),
    ToolCalls(Vec<(String, String)>),
    Fault(Fault),
}

/// How tool-call chunks carry `id`, `type` and `function.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolCallIds {
    /// Only in the first chunk of each call (OpenAI).
    #[default]
    FirstChunk,
    /// In every chunk (some compatible servers).
    EveryChunk,
}

/// One scripted answer. Build with a constructor, then adjust with the `with_*` methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    content: Content,
    finish_reason: Option<Value>,
    usage: bool,
    header_delay: Duration,
    chunk_delay: Duration,
    ids: ToolCallIds,
    interleave: bool,
    cut_after: Option<usize>,
    crlf: bool,
    no_done: bool,
    ignore_stream: bool,
}

impl Reply {
    fn new(content: Content) -> Self {
        Self {
            content,
            finish_reason: None,
            usage: true,
            header_delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            ids: ToolCallIds::FirstChunk,
            interleave: false,
            cut_after: None,
            crlf: false,
            no_done: false,
            ignore_stream: false,
        }
    }

    /// The default: `You said: <last user message>`.
    pub fn echo() -> Self {
        Self::new(Content::Echo)
    }
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(Content::Text(text.into()))
    }
    /// The text of `value` as JSON (a structured-output reply).
    pub fn json(value: Value) -> Self {
        Self::new(Content::Text(value.to_string()))
    }
    /// Tool calls `(name, arguments)`, with ids `call_0`, `call_1`...
    pub fn tool_calls<N: Into<String>, A: Into<String>>(calls: Vec<(N, A)>) -> Self {
        Self::new(Content::ToolCalls(calls.into_iter().map(|(n, a)| (n.into(), a.into())).collect()))
    }
    pub fn fault(fault: Fault) -> Self {
        Self::new(Content::Fault(fault))
    }
    pub fn rate_limited(retry_after: Option<&str>) -> Self {
        Self::fault(Fault::RateLimited { retry_after: retry_after.map(str::to_owned) })
    }

    /// The finish reason sent instead of `stop`/`tool_calls`: any string (`""` included), or
    /// with `None` a JSON `null`.
    pub fn with_finish_reason(mut self, reason: Option<&str>) -> Self {
        self.finish_reason = Some(reason.map_or(Value::Null, |r| Value::String(r.to_owned())));
        self
    }
    /// No usage: none in the JSON body, no usage chunk in a stream.
    pub fn without_usage(mut self) -> Self {
        self.usage = false;
        self
    }
    /// Waits before sending the headers.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.header_delay = delay;
        self
    }
    /// Waits before each streamed chunk.
    pub fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }
    pub fn with_ids(mut self, ids: ToolCallIds) -> Self {
        self.ids = ids;
        self
    }
    /// Streams the tool calls' argument pieces round-robin rather than one call after the other.
    pub fn interleaved(mut self) -> Self {
        self.interleave = true;
        self
    }
    /// Breaks the connection after `chunks` SSE frames (no `[DONE]`, no clean end of body).
    pub fn cut_after(mut self, chunks: usize) -> Self {
        self.cut_after = Some(chunks);
        self
    }
    /// Ends SSE lines with CRLF.
    pub fn with_crlf(mut self) -> Self {
        self.crlf = true;
        self
    }
    /// Answers with one JSON body even when the request asked for a stream (some servers do).
    pub fn ignoring_stream(mut self) -> Self {
        self.ignore_stream = true;
        self
    }
    /// Ends the stream cleanly but without `data: [DONE]`.
    pub fn without_done(mut self) -> Self {
        self.no_done = true;
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// `/v1/chat/completions` or `/v1/embeddings`.
    pub path: String,
    pub authorization: Option<String>,
    /// The JSON body (`null` if it did not parse).
    pub body: Value,
}

/// One streamed chunk as it was handed to the connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Emission {
    pub at: Instant,
    /// The frame's position in its stream (0 = the keep-alive comment).
    pub frame: usize,
    /// The text delta the frame carries, if any.
    pub text: Option<String>,
}

#[derive(Default)]
struct Shared {
    chat: Mutex<VecDeque<Reply>>,
    embeddings: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    emissions: Mutex<Vec<Emission>>,
    dim: AtomicUsize,
    served: AtomicUsize,
    /// Off: requests and emissions are not logged (benchmarks with many calls).
    quiet: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not hide its own failure behind ours.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The server; stops when dropped.
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedServer {
    /// Binds 127.0.0.1 on a free port and serves in the background.
    ///
    /// # Panics
    /// If no loopback port can be bound (a test environment problem).
    pub async fn start() -> Self {
        let shared = Arc::new(Shared { dim: AtomicUsize::new(64), ..Shared::default() });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .with_state(shared.clone());
        #[allow(clippy::expect_used)]
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        #[allow(clippy::expect_used)]
        let addr = listener.local_addr().expect("local address");
        // TCP_NODELAY: each SSE frame leaves at once, as from a real provider; without it Nagle's
        // algorithm and delayed ACKs hold small frames back ~40 ms and skew latency measurements.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`, the [`crate::Provider::base_url`] to use.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues the answer to a coming chat completion request.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.chat).push_back(reply);
    }

    /// Queues the answer to a coming embeddings request: a fault, or (any other reply) computed
    /// embeddings after the reply's delay.
    pub fn push_embeddings(&self, reply: Reply) {
        lock(&self.shared.embeddings).push_back(reply);
    }

    /// Replies still queued (chat and embeddings).
    pub fn pending(&self) -> usize {
        lock(&self.shared.chat).len() + lock(&self.shared.embeddings).len()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// The last request's body (`null` if none).
    pub fn last_body(&self) -> Value {
        lock(&self.shared.requests).last().map(|r| r.body.clone()).unwrap_or(Value::Null)
    }

    /// How many requests were answered.
    pub fn served(&self) -> usize {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// The chunks streamed so far, with the instant each was written.
    pub fn emissions(&self) -> Vec<Emission> {
        lock(&self.shared.emissions).clone()
    }

    pub fn clear_emissions(&self) {
        lock(&self.shared.emissions).clear();
    }

    /// With `false`, requests and emissions are no longer logged (for benchmarks: the logs grow).
    pub fn set_recording(&self, on: bool) {
        self.shared.quiet.store(!on, Ordering::SeqCst);
    }

    pub fn set_embedding_dim(&self, dim: usize) {
        self.shared.dim.store(dim.max(1), Ordering::SeqCst);
    }
}

/// The embedding the server computes for `text` (so tests can compare).
pub fn hash_embedding(text: &str, dim: usize) -> Vec<f32> {
    let dim = dim.max(1);
    let mut v = vec![0f32; dim];
    let chars: Vec<char> = format!("  {}  ", text.to_lowercase()).chars().collect();
    for gram in chars.windows(3) {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for c in gram {
            for b in c.to_string().bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        let bucket = (h % dim as u64) as usize;
        v[bucket] += if (h >> 63) == 0 { 1.0 } else { -1.0 };
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn record(shared: &Shared, path: &str, headers: &HeaderMap, body: &Bytes) -> Value {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if shared.quiet.load(Ordering::Relaxed) {
        return body;
    }
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    lock(&shared.requests).push(Recorded { path: path.to_owned(), authorization, body: body.clone() });
    body
}

fn error_body(message: &str, kind: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn fault_response(fault: &Fault, headers: &HeaderMap, stream: bool) -> Response {
    let json_response = |status: StatusCode, body: Value| (status, axum::Json(body)).into_response();
    match fault {
        Fault::RateLimited { retry_after } => {
            let mut r = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                error_body(
                    "Rate limit reached for requests. Please try again later.",
                    "requests",
                    json!("rate_limit_exceeded"),
                ),
            );
            if let Some(v) = retry_after.as_deref().and_then(|v| header::HeaderValue::from_str(v).ok()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Fault::ServerError => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_body("The server had an error while processing your request.", "server_error", Value::Null),
        ),
        Fault::Unauthorized => {
            let key = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            json_response(
                StatusCode::UNAUTHORIZED,
                error_body(
                    &format!("Incorrect API key provided: {key}."),
                    "invalid_request_error",
                    json!("invalid_api_key"),
                ),
            )
        }
        Fault::ContextTooLong => json_response(
            StatusCode::BAD_REQUEST,
            error_body(
                "This model's maximum context length is 128000 tokens. However, your messages resulted in 200000 tokens.",
                "invalid_request_error",
                json!("context_length_exceeded"),
            ),
        ),
        Fault::MalformedJson if stream => {
            let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\ndata: {\"choices\": [{\"delta\": {\"content\n\ndata: [DONE]\n\n";
            sse_response(Body::from(body))
        }
        Fault::MalformedJson => {
            ([(header::CONTENT_TYPE, "application/json")], "{\"id\": \"x\", \"choices\": [").into_response()
        }
        Fault::Status { status, body } => {
            json_response(StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body.clone())
        }
    }
}

fn sse_response(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Splits text into pieces of 1, 2, 3, 1, 2, 3... characters.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut at = 0;
    let mut size = 1;
    while at < chars.len() {
        let end = (at + size).min(chars.len());
        out.push(chars[at..end].iter().collect());
        at = end;
        size = size % 3 + 1;
    }
    out
}

fn message_text(m: &Value) -> String {
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect(),
        _ => String::new(),
    }
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = record(&shared, "/v1/chat/completions", &headers, &body);
    shared.served.fetch_add(1, Ordering::SeqCst);
    let reply = lock(&shared.chat).pop_front().unwrap_or_else(Reply::echo);
    if !reply.header_delay.is_zero() {
        tokio::time::sleep(reply.header_delay).await;
    }
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false) && !reply.ignore_stream;
    if request.is_null() {
        return fault_response(
            &Fault::Status {
                status: 400,
                body: error_body("the body is not JSON", "invalid_request_error", Value::Null),
            },
            &headers,
            stream,
        );
    }
    let messages = request.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let model = request.get("model").and_then(Value::as_str).unwrap_or("scripted").to_owned();
    let prompt_tokens: u64 = messages.iter().map(|m| estimate_tokens(&message_text(m))).sum();
    let (text, calls) = match &reply.content {
        Content::Fault(f) => return fault_response(f, &headers, stream),
        Content::Echo => {
            let last = messages.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user"));
            (format!("You said: {}", last.map(message_text).unwrap_or_default()), Vec::new())
        }
        Content::Text(t) => (t.clone(), Vec::new()),
        Content::ToolCalls(c) => (String::new(), c.clone()),
    };
    let completion_tokens =
        estimate_tokens(&text) + calls.iter().map(|(n, a)| estimate_tokens(n) + estimate_tokens(a)).sum::<u64>();
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens});
    let finish =
        reply.finish_reason.clone().unwrap_or_else(|| json!(if calls.is_empty() { "stop" } else { "tool_calls" }));
    let id = format!("chatcmpl-scripted-{}", shared.served.load(Ordering::SeqCst));
    if !stream {
        let mut message =
            json!({"role": "assistant", "content": if calls.is_empty() { json!(text) } else { Value::Null }});
        if !calls.is_empty() {
            message["tool_calls"] = calls
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    json!({"id": format!("call_{i}"), "type": "function", "function": {"name": name, "arguments": args}})
                })
                .collect();
        }
        let mut body = json!({"id": id, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}]});
        if reply.usage {
            body["usage"] = usage;
        }
        return axum::Json(body).into_response();
    }
    let include_usage =
        request.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false) && reply.usage;
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    // (payload, text delta) per frame; `None` payload = the keep-alive comment.
    let mut frames: Vec<(Option<String>, Option<String>)> = vec![(None, None)];
    frames.push((Some(chunk(json!({"role": "assistant", "content": ""}), Value::Null).to_string()), None));
    for p in pieces(&text) {
        frames.push((Some(chunk(json!({"content": p}), Value::Null).to_string()), Some(p)));
    }
    for piece in tool_call_pieces(&calls, reply.ids, reply.interleave) {
        frames.push((Some(chunk(json!({"tool_calls": [piece]}), Value::Null).to_string()), None));
    }
    frames.push((Some(chunk(json!({}), finish).to_string()), None));
    if include_usage {
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [], "usage": usage});
        frames.push((Some(c.to_string()), None));
    }
    if !reply.no_done {
        frames.push((Some("[DONE]".into()), None));
    }
    let nl = if reply.crlf { "\r\n" } else { "\n" };
    let frames: Vec<(Bytes, Option<String>)> = frames
        .into_iter()
        .map(|(payload, text)| {
            let bytes = match payload {
                None => format!(": keep-alive{nl}{nl}"),
                Some(p) => format!("data: {p}{nl}{nl}"),
            };
            (Bytes::from(bytes), text)
        })
        .collect();
    let state = (frames.into_iter().enumerate(), shared.clone(), reply.chunk_delay, reply.cut_after);
    let body = futures::stream::unfold(state, |(mut frames, shared, delay, cut)| async move {
        let (frame, (bytes, text)) = frames.next()?;
        if cut.is_some_and(|n| frame >= n) {
            // Pause first, so hyper writes out the frames before (it flushes when the body is not
            // ready); then an error from the body stream makes it drop the connection.
            tokio::time::sleep(delay.max(Duration::from_millis(50))).await;
            return Some((Err(std::io::Error::other("scripted cut")), (frames, shared, delay, Some(0))));
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if !shared.quiet.load(Ordering::Relaxed) {
            lock(&shared.emissions).push(Emission { at: Instant::now(), frame, text });
        }
        Some((Ok::<_, std::io::Error>(bytes), (frames, shared, delay, cut)))
    });
    sse_response(Body::from_stream(body))
}

/// The tool-call delta objects of a stream, in sending order.
fn tool_call_pieces(calls: &[(String, String)], ids: ToolCallIds, interleave: bool) -> Vec<Value> {
    let per_call: Vec<Vec<Value>> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            let head = json!({"index": i, "id": format!("call_{i}"), "type": "function",
                "function": {"name": name, "arguments": ""}});
            let mut out = vec![head];
            for p in pieces(args) {
                out.push(match ids {
                    ToolCallIds::FirstChunk => json!({"index": i, "function": {"arguments": p}}),
                    ToolCallIds::EveryChunk => json!({"index": i, "id": format!("call_{i}"), "type": "function",
                        "function": {"name": name, "arguments": p}}),
                });
            }
            out
        })
        .collect();
    let mut out = Vec::new();
    if interleave {
        let longest = per_call.iter().map(Vec::len).max().unwrap_or(0);
        for step in 0..longest {
            out.extend(per_call.iter().filter_map(|pieces| pieces.get(step).cloned()));
        }
    } else {
        out.extend(per_call.into_iter().flatten());
    }
    out
}

async fn embeddings(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = record(&shared, "/v1/embeddings", &headers, &body);
    shared.served.fetch_add(1, Ordering::SeqCst);
    let reply = lock(&shared.embeddings).pop_front();
    if let Some(r) = &reply {
        if !r.header_delay.is_zero() {
            tokio::time::sleep(r.header_delay).await;
        }
        if let Content::Fault(f) = &r.content {
            return fault_response(f, &headers, false);
        }
    }
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => {
            let body =
                error_body("`input` must be a string or an array of strings", "invalid_request_error", Value::Null);
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    let dim = request
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or_else(|| shared.dim.load(Ordering::SeqCst), |d| d as usize);
    let model = request.get("model").and_then(Value::as_str).unwrap_or("scripted-embedding");
    let tokens: u64 = inputs.iter().map(|t| estimate_tokens(t)).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": hash_embedding(t, dim)}))
        .collect();
    let mut body = json!({"object": "list", "data": data, "model": model});
    if reply.as_ref().is_none_or(|r| r.usage) {
        body["usage"] = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    }
    axum::Json(body).into_response()
}
