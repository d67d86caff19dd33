//! HTTP handlers for executions and their live events (SSE over polling).
//!
//! `GET /v1/executions/{id}/events` answers `text/event-stream`: every node-level event after
//! `Last-Event-ID` (or `?after=`), each an unnamed event (so `EventSource.onmessage` sees them) with
//! `id: <seq>` and data `{"seq", "type", "node_id"?, "payload"}`, then it waits at most
//! `WEFT_SSE_WAIT_MS` (default 20,000; `?timeout_ms=` may shorten it) for more, and ends the
//! response with a `retry:` hint so an EventSource reconnects with the last id it saw. When the
//! execution is over and every event was sent, it sends `event: end` (data: status, output, error,
//! cause) and the client should close. Responses are bounded in time, so this works where a
//! response cannot stay open (API Gateway and Lambda buffer it and deliver it whole).
//!
//! Model nodes' tokens arrive as they are written: `{"type": "node_token", "node_id", "payload":
//! {"text", "agent"?}}` events (`agent`: which agent of a `multi_agent` node wrote it), read from the execution's token stream in Redis
//! ([`node_contract::token_stream_key`]): each response waits on it with `XREAD BLOCK` on a
//! connection of its own ([`AppState::set_token_streams`]), so a token goes out as soon as Redis
//! has it; without one (or once it fails), the stream is polled on the shared connection every
//! 20 ms once it has any (every 200 ms before). Node events are polled from Postgres every 200 ms. Their id is `<seq>:<token id>` (the last node event's seq, then the stream
//! entry's id), so `Last-Event-ID` resumes both: node events after `seq`, tokens after the
//! token id. A new client gets the tokens Redis still keeps (the writer bounds them in count
//! and time); the node events carry the whole text whatever was trimmed.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::SinkExt as _;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json, Path, Query};
use crate::routes::{AuthErrors, BodyErrors};
use auth::Role;
use executions::{Execution, ExecutionPage, Mode, Start};

fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
    Ok((status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// Run an EXPRESS workflow synchronously and answer with its outcome.
    pub wait: Option<bool>,
}

/// The body of `POST /v1/workflows/{id}/executions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    #[serde(default = "empty_object")]
    pub input: Value,
}

fn empty_object() -> Value {
    json!({})
}

/// The body of `POST /v1/executions/{id}/stop`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// Filters of `GET /v1/executions`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// PENDING, RUNNING, SUCCEEDED, FAILED, ABORTED or TIMED_OUT.
    #[param(pattern = "^(PENDING|RUNNING|SUCCEEDED|FAILED|ABORTED|TIMED_OUT)$")]
    pub status: Option<String>,
    pub workflow_id: Option<Uuid>,
    /// RFC 3339: started at or after.
    pub started_after: Option<DateTime<Utc>>,
    /// RFC 3339: started before.
    pub started_before: Option<DateTime<Utc>>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

impl From<ListQuery> for executions::ListFilter {
    fn from(q: ListQuery) -> Self {
        let ListQuery { status, workflow_id, started_after, started_before, cursor, limit } = q;
        Self { status, workflow_id, started_after, started_before, cursor, limit }
    }
}

/// `POST /v1/workflows/{id}/executions`
#[utoipa::path(post, path = "/v1/workflows/{id}/executions", tag = "executions",
    params(("id" = Uuid, Path, description = "workflow id"), StartQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 256 characters; a retry with the same key answers the first execution")),
    security(("bearer" = [])), request_body = StartRequest,
    responses(
        (status = 201, description = "started", body = Execution,
            headers(("location" = String, description = "the execution's URL"))),
        (status = 200, description = "an `Idempotency-Key` replay (header `idempotent-replayed: true`), or the outcome of `?wait=true`", body = Execution),
        (status = 404, description = "no such workflow in this tenant", body = ErrorBody),
        (status = 409, description = "not published, the key was used with another input, or executions are disabled", body = ErrorBody),
        (status = 413, description = "the body, or the input (more than Step Functions' 256 KiB), is too large", body = ErrorBody),
        (status = 422, description = "the input does not match the start node's input_schema", body = ErrorBody),
        (status = 503, description = "Step Functions or the database is unavailable; retrying helps", body = ErrorBody),
        BodyErrors, AuthErrors))]
pub async fn start_execution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<StartQuery>,
    headers: HeaderMap,
    Json(body): Json<StartRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    // Inputs over Step Functions' limit are refused (413) by `Executions::start`.
    let mode = if q.wait == Some(true) {
        Mode::Sync { wait: state.waits().sync }
    } else {
        let key = match headers.get("idempotency-key") {
            Some(v) => {
                Some(v.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?.to_owned())
            }
            None => None,
        };
        Mode::Async { idempotency_key: key }
    };
    let sync = matches!(mode, Mode::Sync { .. });
    let start = Start {
        tenant: caller.tenant.clone(),
        started_by: caller.subject.clone(),
        workflow_id: id,
        input: body.input,
        mode,
    };
    let execution = state.executions().start(start).await?;
    if sync {
        return json_response(StatusCode::OK, &execution);
    }
    let status = if execution.replayed { StatusCode::OK } else { StatusCode::CREATED };
    let mut response = json_response(status, &execution)?;
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/executions/{}", execution.id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    if execution.replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `GET /v1/executions`
#[utoipa::path(get, path = "/v1/executions", tag = "executions", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "newest first", body = ExecutionPage),
        (status = 400, description = "invalid query", body = ErrorBody),
        (status = 503, description = "the database is unavailable; retrying helps", body = ErrorBody), AuthErrors))]
pub async fn list_executions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    json_response(StatusCode::OK, &state.executions().list(&caller.tenant, q.into()).await?)
}

/// `GET /v1/executions/{id}`
#[utoipa::path(get, path = "/v1/executions/{id}", tag = "executions",
    params(("id" = Uuid, Path, description = "execution id")), security(("bearer" = [])),
    responses((status = 200, description = "with input and per-node summary", body = Execution),
        (status = 400, description = "invalid id", body = ErrorBody),
        (status = 404, description = "no such execution in this tenant", body = ErrorBody),
        (status = 503, description = "the database is unavailable; retrying helps", body = ErrorBody), AuthErrors))]
pub async fn get_execution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    json_response(StatusCode::OK, &state.executions().get(&caller.tenant, id).await?)
}

/// `POST /v1/executions/{id}/stop`
#[utoipa::path(post, path = "/v1/executions/{id}/stop", tag = "executions",
    params(("id" = Uuid, Path, description = "execution id")), security(("bearer" = [])),
    request_body(content = Option<StopRequest>, description = "optional; an empty body stops without an error name"),
    responses((status = 200, description = "stopped (ABORTED)", body = Execution),
        (status = 400, description = "invalid id or body", body = ErrorBody),
        (status = 404, description = "no such execution in this tenant", body = ErrorBody),
        (status = 409, description = "not started yet, already over, or executions are disabled", body = ErrorBody),
        (status = 413, description = "the body is larger than the server accepts", body = ErrorBody),
        (status = 503, description = "Step Functions or the database is unavailable; retrying helps", body = ErrorBody), AuthErrors))]
pub async fn stop_execution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    // The body is optional: an empty one stops without an error name.
    let StopRequest { error, cause } = if body.iter().all(u8::is_ascii_whitespace) {
        StopRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    // Postgres text cannot hold NUL; refuse it here rather than fail the write with a 500.
    if error.iter().chain(cause.iter()).any(|s| s.contains('\0')) {
        return Err(ApiError::bad_request(r"strings must not contain the NUL character (\u0000)"));
    }
    // Step Functions' limits for StopExecution.
    if error.as_ref().is_some_and(|e| e.chars().count() > 256) {
        return Err(ApiError::bad_request("`error` must be at most 256 characters"));
    }
    if cause.as_ref().is_some_and(|c| c.chars().count() > 32_768) {
        return Err(ApiError::bad_request("`cause` must be at most 32768 characters"));
    }
    json_response(StatusCode::OK, &state.executions().stop(&caller.tenant, id, error, cause).await?)
}

/// `POST /v1/executions/{id}/redrive`
#[utoipa::path(post, path = "/v1/executions/{id}/redrive", tag = "executions",
    params(("id" = Uuid, Path, description = "execution id")), security(("bearer" = [])),
    responses((status = 200, description = "running again from the node that failed", body = Execution),
        (status = 400, description = "invalid id", body = ErrorBody),
        (status = 404, description = "no such execution in this tenant", body = ErrorBody),
        (status = 409, description = "not failed, not redrivable, or executions are disabled", body = ErrorBody),
        (status = 503, description = "Step Functions or the database is unavailable; retrying helps", body = ErrorBody), AuthErrors))]
pub async fn redrive_execution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    json_response(StatusCode::OK, &state.executions().redrive(&caller.tenant, id).await?)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Like `Last-Event-ID` (the header wins).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Wait at most this long for new events (capped by `WEFT_SSE_WAIT_MS`, default 20,000).
    pub timeout_ms: Option<u64>,
}

/// One server-sent event as a client parses it; the `text/event-stream` body is a series of them.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SseEvent {
    /// The event's `seq` (node-level events), or `<seq>:<token id>` (`node_token` events); a
    /// reconnect sends it back as `Last-Event-ID`.
    pub id: Option<String>,
    /// `message` (a node-level event) or `end` (the execution is over).
    #[schema(pattern = "^(message|end)$")]
    pub event: Option<String>,
    /// JSON: `{"seq", "type", "node_id"?, "payload"}`, or for `end` `{"status", "output", "error", "cause"}`.
    pub data: Option<String>,
    /// The reconnection delay in milliseconds, sent when the bounded wait is over.
    pub retry: Option<u64>,
}

/// `GET /v1/executions/{id}/events`
#[utoipa::path(get, path = "/v1/executions/{id}/events", tag = "executions",
    params(("id" = Uuid, Path, description = "execution id"), EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "the last event id received: `<seq>`, or `<seq>:<token id>` after a `node_token` event")),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", body = SseEvent,
            description = "`id: <seq>` / `data: {\"seq\", \"type\", \"node_id\"?, \"payload\"}` events after the given id; \
                then `retry: 500` after a bounded wait, or `event: end` (data: status, output, error, cause) when the execution is over"),
        (status = 400, description = "invalid id, query or Last-Event-ID", body = ErrorBody),
        (status = 404, description = "no such execution in this tenant", body = ErrorBody),
        (status = 503, description = "the database is unavailable; retrying helps", body = ErrorBody), AuthErrors))]
pub async fn execution_events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let (last, token_cursor) = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| parse_event_id(s.trim()))
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be an event id"))?,
        None => match q.after {
            Some(n) if n < 0 => return Err(ApiError::bad_request("`after` must be an event id")),
            n => (n.unwrap_or(0), None),
        },
    };
    // Existence and tenant check before the stream starts, so a wrong id is a plain 404.
    status_of(&state, &caller.tenant, id).await?.ok_or_else(|| ApiError::not_found("execution"))?;
    let wait = state.waits().sse.min(Duration::from_millis(q.timeout_ms.unwrap_or(u64::MAX)));
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<String, std::convert::Infallible>>(64);
    let tenant = caller.tenant.clone();
    tokio::spawn(async move {
        let deadline = Instant::now() + wait;
        let mut last = last;
        let mut last_write = Instant::now();
        let mut tokens = Tokens::new(&state, id, token_cursor);
        loop {
            let Ok(Some(status)) = status_of(&state, &tenant, id).await else { break };
            let terminal = executions::is_terminal(&status);
            if !terminal {
                let _ = state.executions().record(id).await;
            }
            let Ok(events) = state.executions().events_after(&tenant, id, last, 500).await else { break };
            let full_page = events.len() == 500;
            let mut chunk = String::new();
            for e in &events {
                let data = serde_json::to_string(e).unwrap_or_default();
                chunk.push_str(&format!("id: {}\ndata: {data}\n\n", e.seq));
                last = e.seq;
            }
            if !chunk.is_empty() {
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
                last_write = Instant::now();
            }
            if full_page {
                continue;
            }
            if terminal {
                // The status was read before the events, and the recorder commits both together,
                // so every event of a finished execution has been sent. Its tokens too, before
                // `end`: those written since the last read (the last node's final tokens, for a
                // client that followed the run), or all Redis still keeps (a client that came
                // after the end).
                loop {
                    let chunk = tokens.read(last).await;
                    if chunk.is_empty() {
                        break;
                    }
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
                let summary = state.executions().get(&tenant, id).await.ok();
                let data = json!({
                    "status": status,
                    "output": summary.as_ref().and_then(|s| s.output.clone()),
                    "error": summary.as_ref().and_then(|s| s.error.clone()),
                    "cause": summary.as_ref().and_then(|s| s.cause.clone()),
                });
                let _ = tx.send(Ok(format!("event: end\ndata: {data}\n\n"))).await;
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            if last_write.elapsed() > Duration::from_secs(10) {
                if tx.send(Ok(": keep-alive\n\n".to_owned())).await.is_err() {
                    return;
                }
                last_write = Instant::now();
            }
            // Until the next look at Postgres, 200 ms from now: tokens every 20 ms once this
            // execution has streamed any (before that, once per look, so an execution without
            // model nodes costs its watchers one Redis read per 200 ms, not ten).
            let next_poll = (Instant::now() + Duration::from_millis(200)).min(deadline);
            // With a connection of its own, the handler waits on the stream until the next look
            // at Postgres: a token goes out as soon as Redis has it.
            while tokens.can_block() {
                let chunk = tokens.wait(last, next_poll).await;
                if !chunk.is_empty() {
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                    last_write = Instant::now();
                }
                if Instant::now() >= next_poll {
                    break;
                }
            }
            while Instant::now() < next_poll {
                let chunk = tokens.read(last).await;
                if !chunk.is_empty() {
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                    last_write = Instant::now();
                }
                let now = Instant::now();
                if now >= next_poll {
                    break;
                }
                let pause = if tokens.seen_any { Duration::from_millis(20) } else { next_poll - now };
                tokio::time::sleep(pause.min(next_poll - now)).await;
            }
        }
        let _ = tx.send(Ok("retry: 500\n\n".to_owned())).await;
    });
    let mut response = Response::new(Body::from_stream(rx));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// `Last-Event-ID`: `<seq>` or `<seq>:<token id>` (a Redis stream id, `<ms>-<n>`).
fn parse_event_id(s: &str) -> Option<(i64, Option<String>)> {
    let (seq, token) = match s.split_once(':') {
        Some((seq, token)) => (seq, Some(token)),
        None => (s, None),
    };
    let seq = seq.parse::<i64>().ok().filter(|n| *n >= 0)?;
    match token {
        None => Some((seq, None)),
        Some(t) => {
            let (ms, n) = t.split_once('-')?;
            ms.parse::<u64>().ok()?;
            n.parse::<u64>().ok()?;
            Some((seq, Some(t.to_owned())))
        }
    }
}

/// The token stream of one execution, read from where the client left off (the stream's
/// start for a new client: tokens are kept only briefly).
struct Tokens {
    redis: Option<redis::aio::ConnectionManager>,
    /// The server to open this handler's own connection to, for `XREAD BLOCK`; `None` once
    /// that failed (the handler polls `redis` then).
    blocking: Option<redis::Client>,
    own: Option<redis::aio::MultiplexedConnection>,
    key: String,
    cursor: String,
    /// Whether any token has been read (then the stream is polled every 20 ms).
    seen_any: bool,
}

/// How long opening a handler's own connection may take before it polls instead.
const TOKEN_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Tokens {
    fn new(state: &AppState, id: Uuid, cursor: Option<String>) -> Self {
        Self {
            redis: state.redis(),
            blocking: state.redis().and(state.token_streams().cloned()),
            own: None,
            key: node_contract::token_stream_key(&id.to_string()),
            seen_any: cursor.is_some(),
            cursor: cursor.unwrap_or_else(|| "0-0".to_owned()),
        }
    }

    fn can_block(&self) -> bool {
        self.blocking.is_some()
    }

    /// Like [`Self::read`], but waits until a token arrives or `until` (`XREAD BLOCK` on this
    /// handler's own connection). A failure to connect or read switches to polling for the
    /// rest of this response.
    async fn wait(&mut self, seq: i64, until: Instant) -> String {
        let Some(client) = &self.blocking else { return String::new() };
        if self.own.is_none() {
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(TOKEN_CONNECT_TIMEOUT))
                .set_response_timeout(None);
            match client.get_multiplexed_async_connection_with_config(&config).await {
                Ok(c) => self.own = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "token stream: cannot open a connection; polling instead");
                    self.blocking = None;
                    return String::new();
                }
            }
        }
        let Some(conn) = &mut self.own else { return String::new() };
        let block_ms = until.saturating_duration_since(Instant::now()).as_millis().max(1);
        let cmd = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1000)
            .arg("BLOCK")
            .arg(block_ms as u64)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(&self.cursor)
            .to_owned();
        // The server answers by `until`; a second more and the connection is deemed lost.
        let limit = Duration::from_millis(block_ms as u64) + Duration::from_secs(1);
        match tokio::time::timeout(limit, cmd.query_async::<TokenReply>(conn)).await {
            Ok(Ok(reply)) => self.frames(seq, reply),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "token stream: read failed; polling instead");
                (self.blocking, self.own) = (None, None);
                String::new()
            }
            Err(_) => {
                tracing::warn!("token stream: no answer from Redis; polling instead");
                (self.blocking, self.own) = (None, None);
                String::new()
            }
        }
    }

    /// The SSE text of the tokens after the cursor (at most 1,000), each with the id
    /// `<seq>:<token id>`; empty when there are none or Redis is unavailable (tokens are a live
    /// view: the node events hold the text).
    async fn read(&mut self, seq: i64) -> String {
        let Some(redis) = &mut self.redis else { return String::new() };
        let reply: Result<TokenReply, _> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1000)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(&self.cursor)
            .query_async(redis)
            .await;
        match reply {
            Ok(reply) => self.frames(seq, reply),
            Err(_) => String::new(),
        }
    }

    /// The SSE frames of an XREAD reply, advancing the cursor.
    fn frames(&mut self, seq: i64, reply: TokenReply) -> String {
        let Some(streams) = reply else { return String::new() };
        let mut out = String::new();
        for (id, fields) in streams.into_iter().flat_map(|(_, entries)| entries) {
            if let Some(data) = token_event(&fields) {
                out.push_str(&format!("id: {seq}:{id}\ndata: {data}\n\n"));
            }
            self.cursor = id;
            self.seen_any = true;
        }
        out
    }
}

/// XREAD's reply: `[[key, [[id, [field, value, ...]], ...]]]`, or nil when nothing is new.
type TokenReply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;

/// The `node_token` event of one token stream entry (its fields and values, alternating):
/// `{"type": "node_token", "node_id", "payload": {"text", "agent"?}}`, `agent` naming the agent of
/// a `multi_agent` node that wrote it. `None` for an entry without `node_id` or `text`.
fn token_event(fields: &[String]) -> Option<Value> {
    let field = |name: &str| fields.chunks(2).find(|kv| kv[0] == name).and_then(|kv| kv.get(1)).cloned();
    let (node, text) = (field("node_id")?, field("text")?);
    let mut payload = json!({"text": text});
    if let Some(agent) = field("agent") {
        payload["agent"] = Value::String(agent);
    }
    Some(json!({"type": "node_token", "node_id": node, "payload": payload}))
}

async fn status_of(state: &AppState, tenant: &str, id: Uuid) -> Result<Option<String>, ApiError> {
    sqlx::query_scalar("SELECT status FROM executions WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_optional(state.store().pool())
        .await
        .map_err(ApiError::unavailable)
}

#[cfg(test)]
mod tests {
    use super::{parse_event_id, token_event};
    use serde_json::json;

    fn fields(kv: &[&str]) -> Vec<String> {
        kv.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn token_entries_become_node_token_events_naming_a_multi_agent_nodes_agent() {
        // As fn-llm's RedisSink writes them: node_id [agent] seq reply text.
        let plain = fields(&["node_id", "ask", "seq", "0", "reply", "0", "text", "Hel"]);
        assert_eq!(
            token_event(&plain),
            Some(json!({"type": "node_token", "node_id": "ask", "payload": {"text": "Hel"}}))
        );
        let agent = fields(&["node_id", "team", "agent", "researcher", "seq", "3", "reply", "0", "text", "lo"]);
        assert_eq!(
            token_event(&agent),
            Some(json!({"type": "node_token", "node_id": "team", "payload": {"text": "lo", "agent": "researcher"}}))
        );
        assert_eq!(token_event(&fields(&["node_id", "ask", "seq", "0"])), None);
        assert_eq!(token_event(&fields(&["text", "x"])), None);
    }

    #[test]
    fn event_ids_are_a_seq_or_a_seq_and_a_token_id() {
        assert_eq!(parse_event_id("0"), Some((0, None)));
        assert_eq!(parse_event_id("42"), Some((42, None)));
        assert_eq!(parse_event_id("42:1700000000000-3"), Some((42, Some("1700000000000-3".to_owned()))));
        for bad in ["", "-1", "x", "4:", "4:abc", "4:1-", "4:-1", "4:1-2-3", "4:1-2:3"] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }
}
