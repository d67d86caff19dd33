//! Triggers in the api: registering a published graph's `triggers`, listing them (with each
//! webhook's secret) and receiving webhooks, which start executions through
//! [`executions::Executions::start`] like `POST /v1/workflows/{id}/executions` (the scheduler and
//! `fn-trigger` do too, through its [`triggers::Starter`] implementation).
//!
//! Registration happens when a version is published or the alias moves ([`sync`]): the rows then
//! follow the graph of that version. Webhook deliveries are `POST /v1/hooks/{workflow_id}` with
//! `X-Weft-Timestamp` and `X-Weft-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`
//! (see [`triggers::signature`]); the body (JSON, or empty for `{}`) is the execution's input.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Path};
use crate::routes::AuthErrors;
use auth::Role;
use triggers::signature::{self, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER};
use triggers::{GraphTrigger, Registry};

pub fn registry(state: &AppState) -> Registry {
    Registry::new(state.store().pool().clone(), state.inner.secrets.clone())
}

/// Registers the triggers of `graph` (version `version`) for `workflow_id`. A failure is logged
/// and does not undo the publish; publishing again (or moving the alias) registers them.
pub async fn sync(state: &AppState, tenant: &str, workflow_id: Uuid, version: i32, graph: &Value) {
    let wanted = GraphTrigger::from_graph(graph);
    if let Err(e) = registry(state).sync(tenant, workflow_id, version, &wanted, Utc::now()).await {
        tracing::error!(workflow = %workflow_id, error = %e, "cannot register the workflow's triggers");
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerResponse {
    pub id: Uuid,
    /// `webhook`, `schedule` or `queue`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<DateTime<Utc>>,
    /// For webhooks: where to POST, and the HMAC key to sign deliveries with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerList {
    pub items: Vec<TriggerResponse>,
}

/// `GET /v1/workflows/{id}/triggers` (editors: the webhook secret is a credential).
#[utoipa::path(get, path = "/v1/workflows/{id}/triggers", tag = "triggers",
    params(("id" = Uuid, Path, description = "workflow id")), security(("bearer" = [])),
    responses((status = 200, body = TriggerList),
        (status = 400, description = "invalid id", body = ErrorBody),
        (status = 404, description = "no such workflow in this tenant", body = ErrorBody), AuthErrors))]
pub async fn list_triggers(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<TriggerList>, ApiError> {
    caller.require(Role::Editor)?;
    state.store().get_workflow(&caller.tenant, id).await.map_err(ApiError::store("workflow"))?;
    let reg = registry(&state);
    let rows = reg.list(&caller.tenant, id).await.map_err(ApiError::unavailable)?;
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        let webhook = if r.kind == "webhook" {
            let secret = reg.webhook_secret(&caller.tenant, r.id).await.map_err(ApiError::internal)?;
            Some(json!({"path": format!("/v1/hooks/{id}"), "secret": secret}))
        } else {
            None
        };
        items.push(TriggerResponse {
            id: r.id,
            cron: (r.kind == "schedule").then(|| r.key.clone()),
            event: (r.kind == "queue").then(|| r.key.clone()),
            kind: r.kind,
            enabled: r.enabled,
            version: r.version,
            last_fired_at: r.last_fired_at,
            webhook,
        });
    }
    Ok(axum::Json(TriggerList { items }))
}

fn signature_error(e: SignatureError) -> ApiError {
    match e {
        SignatureError::Missing(_) | SignatureError::BadTimestamp => ApiError::bad_request(e.to_string()),
        SignatureError::TooOld => ApiError::new(StatusCode::UNAUTHORIZED, "signature_expired", e.to_string()),
        SignatureError::Mismatch => ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()),
    }
}

/// `POST /v1/hooks/{workflow_id}`: no bearer token; the signature authenticates the sender.
/// Answers 202 `{"execution_id", "status"}`.
#[utoipa::path(post, path = "/v1/hooks/{workflow_id}", tag = "triggers",
    params(("workflow_id" = Uuid, Path, description = "workflow id"),
        ("X-Weft-Timestamp" = String, Header, description = "unix seconds; within 300 s of the server's clock"),
        ("X-Weft-Signature" = String, Header, description = "sha256=<hex HMAC-SHA256 of \"{timestamp}.{body}\" with the trigger's secret>")),
    request_body(content = Object, description = "the execution's input (JSON; empty means {})"),
    responses((status = 202, description = "execution started", body = Object),
        (status = 400, description = "missing headers, or a body that is not JSON (or holds \\u0000)", body = ErrorBody),
        (status = 401, description = "bad signature, or a timestamp outside the replay window; a workflow that does not exist \
            or has no enabled webhook trigger answers exactly like a bad signature", body = ErrorBody),
        (status = 409, description = "this delivery was already accepted, or the workflow cannot start", body = ErrorBody),
        (status = 413, description = "the body is too large (for the server, or more than Step Functions' 256 KiB of input)", body = ErrorBody),
        (status = 422, description = "the input does not match the start node's input_schema", body = ErrorBody),
        (status = 503, description = "a dependency is unavailable; retrying helps", body = ErrorBody)))]
pub async fn receive_webhook(
    State(state): State<AppState>,
    Path(workflow_id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    receive_webhook_at(&state, workflow_id, &headers, &body, Utc::now()).await
}

/// [`receive_webhook`] with the clock passed in.
pub async fn receive_webhook_at(
    state: &AppState,
    workflow_id: Uuid,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    // A workflow that does not exist, one without an enabled webhook trigger (another tenant's,
    // say) and a wrong signature get one answer: the delivery is checked against a random secret
    // when there is no trigger, so headers and timestamps are judged exactly the same way.
    let reg = registry(state);
    let found = reg.webhook(workflow_id).await.map_err(ApiError::unavailable)?;
    let unknown = signature::new_secret();
    let secret = found.as_ref().map_or(unknown.as_str(), |(_, secret)| secret.as_str());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let sig = header(SIGNATURE_HEADER);
    signature::verify(secret.as_bytes(), header(TIMESTAMP_HEADER), sig, body, now.timestamp())
        .map_err(signature_error)?;
    let Some((trigger, _)) = found else { return Err(signature_error(SignatureError::Mismatch)) };
    let sig = sig.unwrap_or_default().trim().to_owned();
    // Client mistakes that Postgres or Step Functions would otherwise turn into a 5xx.
    if crate::extract::has_nul_escape(body) {
        return Err(ApiError::bad_request(r"the body must not contain the NUL character (\u0000)"));
    }
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body must be JSON (the execution's input): {e}")))?
    };
    if !reg.record_delivery(trigger.id, &sig, now).await.map_err(ApiError::unavailable)? {
        return Err(ApiError::new(StatusCode::CONFLICT, "replayed", "this delivery (signature) was already accepted"));
    }
    let key = format!("webhook:{}:{}", trigger.id, sig.trim_start_matches("sha256="));
    let start = executions::Start {
        tenant: trigger.tenant_id.clone(),
        started_by: format!("webhook:{}", trigger.id),
        workflow_id,
        input,
        mode: executions::Mode::Async { idempotency_key: Some(key) },
    };
    let started = state.executions().start(start).await.map_err(ApiError::from);
    match started {
        Ok(e) => {
            if let Err(err) = reg.mark_fired(trigger.id, now).await {
                tracing::warn!(trigger = %trigger.id, error = %err, "cannot record the webhook's last fire time");
            }
            Ok((StatusCode::ACCEPTED, axum::Json(json!({"execution_id": e.id, "status": e.status}))))
        }
        Err(e) => {
            // Not started, so the sender may deliver the same signature again.
            if let Err(forget) = reg.forget_delivery(trigger.id, &sig).await {
                tracing::error!(error = %forget, "cannot forget a failed webhook delivery");
            }
            Err(e)
        }
    }
}
