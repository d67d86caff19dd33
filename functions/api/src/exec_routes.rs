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

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::SinkExt as _;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::executions::{self, ListQuery, StartRequest, StopRequest};
use crate::extract::{Caller, Json, Path, Query};
use auth::Role;

fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
    Ok((status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// Run an EXPRESS workflow synchronously and answer with its outcome.
    pub wait: Option<bool>,
}

fn env_ms(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn sync_wait() -> Duration {
    static V: OnceLock<u64> = OnceLock::new();
    Duration::from_millis(*V.get_or_init(|| env_ms("WEFT_SYNC_WAIT_MS", 30_000)))
}

fn sse_wait() -> u64 {
    static V: OnceLock<u64> = OnceLock::new();
    *V.get_or_init(|| env_ms("WEFT_SSE_WAIT_MS", 20_000))
}

/// `POST /v1/workflows/{id}/executions`
pub async fn start_execution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<StartQuery>,
    headers: HeaderMap,
    Json(body): Json<StartRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    if q.wait == Some(true) {
        let execution =
            executions::start_sync(&state, &caller.tenant, &caller.subject, id, body.input, sync_wait()).await?;
        return json_response(StatusCode::OK, &execution);
    }
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?.to_owned()),
        None => None,
    };
    let execution = executions::start(&state, &caller.tenant, &caller.subject, id, body.input, key).await?;
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
pub async fn list_executions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    json_response(StatusCode::OK, &executions::list(&state, &caller.tenant, q).await?)
}

/// `GET /v1/executions/{id}`
pub async fn get_execution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    json_response(StatusCode::OK, &executions::get(&state, &caller.tenant, id).await?)
}

/// `POST /v1/executions/{id}/stop`
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
    json_response(StatusCode::OK, &executions::stop(&state, &caller.tenant, id, error, cause).await?)
}

/// `POST /v1/executions/{id}/redrive`
pub async fn redrive_execution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    json_response(StatusCode::OK, &executions::redrive(&state, &caller.tenant, id).await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Like `Last-Event-ID` (the header wins).
    pub after: Option<i64>,
    /// Wait at most this long for new events (capped by `WEFT_SSE_WAIT_MS`).
    pub timeout_ms: Option<u64>,
}

/// `GET /v1/executions/{id}/events`
pub async fn execution_events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let last = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be an event id"))?,
        None => q.after.unwrap_or(0).max(0),
    };
    // Existence and tenant check before the stream starts, so a wrong id is a plain 404.
    status_of(&state, &caller.tenant, id).await?.ok_or_else(|| ApiError::not_found("execution"))?;
    let wait = Duration::from_millis(q.timeout_ms.unwrap_or(u64::MAX).min(sse_wait()));
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<String, std::convert::Infallible>>(64);
    let tenant = caller.tenant.clone();
    tokio::spawn(async move {
        let deadline = Instant::now() + wait;
        let mut last = last;
        let mut last_write = Instant::now();
        loop {
            let Ok(Some(status)) = status_of(&state, &tenant, id).await else { break };
            let terminal = executions::is_terminal(&status);
            if !terminal {
                let _ = executions::record(&state, id).await;
            }
            let Ok(events) = executions::events_after(&state, &tenant, id, last, 500).await else { break };
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
                // so every event of a finished execution has been sent.
                let summary = executions::get(&state, &tenant, id).await.ok();
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
            tokio::time::sleep(Duration::from_millis(200).min(deadline.saturating_duration_since(Instant::now()))).await;
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

async fn status_of(state: &AppState, tenant: &str, id: Uuid) -> Result<Option<String>, ApiError> {
    sqlx::query_scalar("SELECT status FROM executions WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_optional(state.store().pool())
        .await
        .map_err(ApiError::unavailable)
}
