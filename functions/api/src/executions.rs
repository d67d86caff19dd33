//! Executions: start (with idempotency keys and input validation), read, list, stop, redrive, and
//! the recorder that turns Step Functions history into node-level events.
//!
//! Every execution runs on Step Functions through `aws-sdk-sfn` (AWS, or `weft serve`'s own
//! endpoint). The `executions` row is Weft's record: it is inserted PENDING before
//! `StartExecution` (named after the row's id, so a retried start is idempotent on AWS's side
//! too), becomes RUNNING with the execution ARN, and gets its final status and output from the
//! recorder ([`record`]), which appends translated history to `execution_events` (dense `seq`
//! from 1, the SSE event ids) and to the Redis stream `weft:exec:{tenant}:{id}`.
//!
//! Invariants: every query is scoped by tenant (the recorder, which is internal, reads the tenant
//! from the row); events are appended under a row lock, so concurrent recorders never duplicate
//! or reorder them; the row's status changes only together with the events that justify it.

use std::time::Duration;

use aws_sdk_sfn::error::ProvideErrorMetadata;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::history;

/// An execution as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Execution {
    pub id: Uuid,
    pub workflow_id: Uuid,
    pub version: i32,
    /// PENDING (being started), RUNNING, SUCCEEDED, FAILED, ABORTED or TIMED_OUT.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    /// Per node, from the node-level events (only on `GET /v1/executions/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeSummary>>,
    /// Set when an `Idempotency-Key` matched an execution started before.
    #[serde(skip)]
    pub replayed: bool,
}

/// What happened to one node of an execution.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NodeSummary {
    pub node_id: String,
    /// RUNNING, SUCCEEDED or FAILED (the node's last attempt).
    pub status: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "SUCCEEDED" | "FAILED" | "ABORTED" | "TIMED_OUT")
}

fn sfn(state: &AppState) -> Result<&aws_sdk_sfn::Client, ApiError> {
    state.sfn_client().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "executions_disabled",
            "executions need a Step Functions endpoint (set WEFT_SFN_ENDPOINT or WEFT_SFN_ENABLED)",
        )
    })
}

fn db(e: sqlx::Error) -> ApiError {
    ApiError::unavailable(e)
}

fn sdk_unavailable<E: ProvideErrorMetadata + std::fmt::Debug>(e: E) -> ApiError {
    ApiError::unavailable(format!("{:?}: {:?}", e.code(), e))
}

const COLUMNS: &str =
    "id, workflow_id, version, status, input, output, error, cause, started_by, started_at, stopped_at";

fn row_to_execution(r: &sqlx::postgres::PgRow, with_input: bool) -> Result<Execution, sqlx::Error> {
    Ok(Execution {
        id: r.try_get("id")?,
        workflow_id: r.try_get("workflow_id")?,
        version: r.try_get("version")?,
        status: r.try_get("status")?,
        input: if with_input { r.try_get("input")? } else { None },
        output: r.try_get("output")?,
        error: r.try_get("error")?,
        cause: r.try_get("cause")?,
        started_by: r.try_get("started_by")?,
        started_at: r.try_get("started_at")?,
        stopped_at: r.try_get("stopped_at")?,
        nodes: None,
        replayed: false,
    })
}

/// Step Functions' limit on an execution's input (UTF-8 bytes of its JSON text).
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// What a start runs: the version the `live` alias routes to, checked against the input.
struct Target {
    version: i32,
    version_arn: String,
    workflow_type: String,
    input_text: String,
}

/// The shared preamble of [`start`] and [`start_sync`]: the input fits Step Functions' limit,
/// the workflow is published, the alias's version (the latest when no alias was ever moved) has
/// a state machine version, and the input matches the start node's `input_schema`.
async fn target(state: &AppState, tenant: &str, workflow_id: Uuid, input: &Value) -> Result<Target, ApiError> {
    let input_text = input.to_string();
    if input_text.len() > MAX_INPUT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the execution input is {} bytes; Step Functions accepts at most {MAX_INPUT_BYTES} bytes (256 KiB)",
                input_text.len()
            ),
        ));
    }
    let workflow = state.store().get_workflow(tenant, workflow_id).await.map_err(ApiError::store("workflow"))?;
    let Some(version) = workflow.live_version.or(workflow.latest_version) else {
        return Err(ApiError::new(StatusCode::CONFLICT, "not_published", "publish the workflow before starting it"));
    };
    let version =
        state.store().get_version(tenant, workflow_id, version).await.map_err(ApiError::store("workflow version"))?;
    let Some(version_arn) = version.state_machine_version_arn.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_published",
            "the live version was stored without Step Functions; publish again",
        ));
    };
    if let Some(schema) = start_schema(&version.graph) {
        let problems = crate::schema::validate(schema, input);
        if !problems.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                format!("the input does not match the start node's input_schema: {}", problems.join("; ")),
            ));
        }
    }
    Ok(Target { version: version.version, version_arn, workflow_type: version.workflow_type, input_text })
}

/// Runs `work` on its own task and waits for it: a client that hangs up (the request future is
/// dropped) no longer interrupts a start between the row's INSERT and its ARN, so rows are never
/// orphaned by disconnects. (A process crash can still orphan one: see [`sweep_orphans`].)
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(work).await.map_err(|e| ApiError::internal(format!("start task: {e}")))?
}

/// Starts the version the workflow's `live` alias routes to (see [`target`]) with `input`.
///
/// `input` is validated against the start node's `input_schema` (see [`crate::schema`]). With an
/// `idempotency_key`, a second call with the same key answers the first call's execution
/// (`replayed` set) instead of starting another; the same key with a different input is a 409.
/// Used by `POST /v1/workflows/{id}/executions`, webhooks, schedules and queue triggers.
pub async fn start(
    state: &AppState,
    tenant: &str,
    started_by: &str,
    workflow_id: Uuid,
    input: Value,
    idempotency_key: Option<String>,
) -> Result<Execution, ApiError> {
    let client = sfn(state)?.clone();
    if let Some(k) = &idempotency_key
        && (k.is_empty() || k.len() > 256)
    {
        return Err(ApiError::bad_request("Idempotency-Key must be 1 to 256 characters"));
    }
    let target = target(state, tenant, workflow_id, &input).await?;
    let (state, tenant, started_by) = (state.clone(), tenant.to_owned(), started_by.to_owned());
    detached(async move {
        start_target(&state, &client, &tenant, &started_by, workflow_id, input, idempotency_key, target).await
    })
    .await
}

#[allow(clippy::too_many_arguments)]
async fn start_target(
    state: &AppState,
    client: &aws_sdk_sfn::Client,
    tenant: &str,
    started_by: &str,
    workflow_id: Uuid,
    input: Value,
    idempotency_key: Option<String>,
    target: Target,
) -> Result<Execution, ApiError> {
    let pool = state.store().pool();
    let id = Uuid::new_v4();
    let inserted = sqlx::query(
        "INSERT INTO executions (id, tenant_id, workflow_id, version, status, input, idempotency_key, started_by) \
         VALUES ($1, $2, $3, $4, 'PENDING', $5::text::json, $6, $7) \
         ON CONFLICT (tenant_id, workflow_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
         RETURNING id",
    )
    .bind(id)
    .bind(tenant)
    .bind(workflow_id)
    .bind(target.version)
    .bind(&target.input_text)
    .bind(&idempotency_key)
    .bind(started_by)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let (id, version_arn) = if inserted.is_some() {
        (id, target.version_arn)
    } else {
        // The key was used before: answer that execution, or finish starting it.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, execution_arn FROM executions WHERE tenant_id = $1 AND workflow_id = $2 AND idempotency_key = $3"
        )))
        .bind(tenant)
        .bind(workflow_id)
        .bind(&idempotency_key)
        .fetch_one(pool)
        .await
        .map_err(db)?;
        let mut existing = row_to_execution(&row, true).map_err(db)?;
        if existing.input.as_ref() != Some(&input) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this Idempotency-Key was used with a different input",
            ));
        }
        existing.replayed = true;
        if existing.status != "PENDING" {
            existing.input = None;
            return Ok(existing);
        }
        // Started by a call that died (or is still running) between insert and StartExecution:
        // starting again under the same name is idempotent in Step Functions.
        let version = state
            .store()
            .get_version(tenant, workflow_id, existing.version)
            .await
            .map_err(ApiError::store("workflow version"))?;
        let arn = version.state_machine_version_arn.ok_or_else(|| ApiError::internal("version lost its ARN"))?;
        (existing.id, arn)
    };
    let started = client
        .start_execution()
        .state_machine_arn(&version_arn)
        .name(id.to_string())
        .input(target.input_text)
        .send()
        .await;
    let arn = match started {
        Ok(out) => out.execution_arn().to_owned(),
        Err(err) => {
            // Nothing started: forget the row so a retry (with or without the key) starts afresh.
            let _ =
                sqlx::query("DELETE FROM executions WHERE id = $1 AND status = 'PENDING' AND execution_arn IS NULL")
                    .bind(id)
                    .execute(pool)
                    .await;
            return Err(start_error(err));
        }
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE executions SET status = CASE WHEN status = 'PENDING' THEN 'RUNNING' ELSE status END, execution_arn = $2 \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&arn)
    .fetch_one(pool)
    .await
    .map_err(db)?;
    let mut execution = row_to_execution(&row, false).map_err(db)?;
    execution.replayed = inserted.is_none();
    Ok(execution)
}

/// What a refused `StartExecution`/`StartSyncExecution` means for the caller.
fn start_error<E: ProvideErrorMetadata + std::fmt::Debug>(err: E) -> ApiError {
    match err.code().unwrap_or("") {
        "ExecutionLimitExceeded" | "ThrottlingException" => {
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", "too many executions; retry shortly");
            e.retry_after = Some(1);
            e
        }
        "StateMachineDoesNotExist" | "StateMachineDeleting" => {
            ApiError::new(StatusCode::CONFLICT, "not_published", "the workflow's state machine is gone; publish again")
        }
        // The input passed our checks, so Step Functions refusing it is a limit we do not know of.
        "InvalidExecutionInput" => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            format!("Step Functions refused the input: {}", err.message().unwrap_or("invalid input")),
        ),
        _ => sdk_unavailable(err),
    }
}

/// The start node's `input_schema`, if the graph has one.
fn start_schema(graph: &Value) -> Option<&Value> {
    graph
        .get("nodes")?
        .as_array()?
        .iter()
        .find(|n| n.get("type").and_then(Value::as_str) == Some("start"))?
        .get("data")?
        .get("input_schema")
}

/// Runs an EXPRESS workflow synchronously (`StartSyncExecution`), waiting at most `wait`.
pub async fn start_sync(
    state: &AppState,
    tenant: &str,
    started_by: &str,
    workflow_id: Uuid,
    input: Value,
    wait: Duration,
) -> Result<Execution, ApiError> {
    let client = sfn(state)?.clone();
    let target = target(state, tenant, workflow_id, &input).await?;
    if target.workflow_type != "EXPRESS" {
        return Err(ApiError::bad_request("wait=true runs EXPRESS workflows only; this one is STANDARD"));
    }
    let (state, tenant, started_by) = (state.clone(), tenant.to_owned(), started_by.to_owned());
    detached(async move { start_sync_target(&state, &client, &tenant, &started_by, workflow_id, target, wait).await })
        .await
}

async fn start_sync_target(
    state: &AppState,
    client: &aws_sdk_sfn::Client,
    tenant: &str,
    started_by: &str,
    workflow_id: Uuid,
    target: Target,
    wait: Duration,
) -> Result<Execution, ApiError> {
    let id = Uuid::new_v4();
    let pool = state.store().pool();
    sqlx::query(
        "INSERT INTO executions (id, tenant_id, workflow_id, version, status, input, started_by) \
         VALUES ($1, $2, $3, $4, 'RUNNING', $5::text::json, $6)",
    )
    .bind(id)
    .bind(tenant)
    .bind(workflow_id)
    .bind(target.version)
    .bind(&target.input_text)
    .bind(started_by)
    .execute(pool)
    .await
    .map_err(db)?;
    let call = client
        .start_sync_execution()
        .state_machine_arn(target.version_arn)
        .name(id.to_string())
        .input(target.input_text)
        .send();
    let (status, output, error, cause, arn) = match tokio::time::timeout(wait, call).await {
        Err(_) => {
            ("TIMED_OUT", None, Some("Weft.WaitTimedOut".to_owned()), Some(format!("no result within {wait:?}")), None)
        }
        Ok(Err(err)) => {
            let _ = sqlx::query("DELETE FROM executions WHERE id = $1").bind(id).execute(pool).await;
            return Err(start_error(err));
        }
        Ok(Ok(out)) => {
            let status = match out.status().as_str() {
                "SUCCEEDED" => "SUCCEEDED",
                "TIMED_OUT" => "TIMED_OUT",
                _ => "FAILED",
            };
            let output = out.output().map(|o| serde_json::from_str(o).unwrap_or_else(|_| Value::String(o.to_owned())));
            (
                status,
                output,
                out.error().map(str::to_owned),
                out.cause().map(str::to_owned),
                Some(out.execution_arn().to_owned()),
            )
        }
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE executions SET status = $2, output = $3::text::json, error = $4, cause = $5, execution_arn = $6, stopped_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(output.as_ref().map(Value::to_string))
    .bind(error)
    .bind(cause)
    .bind(arn)
    .fetch_one(pool)
    .await
    .map_err(db)?;
    // The endpoint may keep history for EXPRESS executions (weft serve does; AWS does not).
    let _ = record(state, id).await;
    row_to_execution(&row, false).map_err(db)
}

/// Reads an execution (recording any new history first when it is not over).
pub async fn get(state: &AppState, tenant: &str, id: Uuid) -> Result<Execution, ApiError> {
    let pool = state.store().pool();
    let fetch = || async {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM executions WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::not_found("execution"))?;
        row_to_execution(&row, true).map_err(db)
    };
    let mut execution = fetch().await?;
    if !is_terminal(&execution.status) && record(state, id).await.unwrap_or(false) {
        execution = fetch().await?;
    }
    let events = events_after(state, tenant, id, 0, 100_000).await?;
    execution.nodes = Some(summarize(&events));
    Ok(execution)
}

/// A stored node-level event.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    pub payload: Value,
}

/// Events of an execution with `seq > after`, in order, at most `limit`.
pub async fn events_after(
    state: &AppState,
    tenant: &str,
    id: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, ApiError> {
    let rows = sqlx::query(
        "SELECT seq, type, node_id, payload FROM execution_events \
         WHERE tenant_id = $1 AND execution_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
    )
    .bind(tenant)
    .bind(id)
    .bind(after)
    .bind(limit)
    .fetch_all(state.store().pool())
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok(StoredEvent {
                seq: r.try_get("seq")?,
                kind: r.try_get("type")?,
                node_id: r.try_get("node_id")?,
                payload: r.try_get("payload")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db)
}

fn summarize(events: &[StoredEvent]) -> Vec<NodeSummary> {
    let mut nodes: Vec<NodeSummary> = Vec::new();
    for e in events {
        let Some(node) = &e.node_id else { continue };
        let i = match nodes.iter().position(|n| &n.node_id == node) {
            Some(i) => i,
            None => {
                nodes.push(NodeSummary { node_id: node.clone(), status: "RUNNING".into(), attempts: 0, error: None });
                nodes.len() - 1
            }
        };
        let n = &mut nodes[i];
        match e.kind.as_str() {
            "node_started" => {
                n.status = "RUNNING".into();
                n.attempts += 1;
            }
            "node_retried" => n.attempts += 1,
            "node_succeeded" => n.status = "SUCCEEDED".into(),
            "node_failed" => {
                n.status = "FAILED".into();
                n.error = e.payload.get("error").and_then(Value::as_str).map(str::to_owned);
            }
            _ => {}
        }
    }
    nodes
}

/// Filters of the execution list.
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionPage {
    pub items: Vec<Execution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.timestamp_micros()))
}

fn decode_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (micros, id) = raw.split_once('|')?;
    // Out-of-range years (which Postgres cannot compare with) are invalid cursors, not 503s.
    Some((store::cursor_timestamp(micros.parse().ok()?)?, id.parse().ok()?))
}

/// Lists executions, newest first, keyset-paginated.
pub async fn list(state: &AppState, tenant: &str, q: ListQuery) -> Result<ExecutionPage, ApiError> {
    if let Some(s) = &q.status
        && !matches!(s.as_str(), "PENDING" | "RUNNING" | "SUCCEEDED" | "FAILED" | "ABORTED" | "TIMED_OUT")
    {
        return Err(ApiError::bad_request("status must be PENDING, RUNNING, SUCCEEDED, FAILED, ABORTED or TIMED_OUT"));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 200"));
    }
    let after = match q.cursor.as_deref() {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::bad_request("invalid cursor"))?),
        None => None,
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM executions WHERE tenant_id = $1 \
         AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR workflow_id = $3) \
         AND ($4::timestamptz IS NULL OR started_at >= $4) AND ($5::timestamptz IS NULL OR started_at < $5) \
         AND ($6::timestamptz IS NULL OR (started_at, id) < ($6, $7)) \
         ORDER BY started_at DESC, id DESC LIMIT $8"
    )))
    .bind(tenant)
    .bind(&q.status)
    .bind(q.workflow_id)
    .bind(q.started_after)
    .bind(q.started_before)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1).unwrap_or_default())
    .bind(i64::from(limit) + 1)
    .fetch_all(state.store().pool())
    .await
    .map_err(db)?;
    let mut items = rows.iter().map(|r| row_to_execution(r, false)).collect::<Result<Vec<_>, _>>().map_err(db)?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|e| encode_cursor(e.started_at, e.id))
    } else {
        None
    };
    Ok(ExecutionPage { items, next_cursor })
}

async fn arn_of(state: &AppState, tenant: &str, id: Uuid) -> Result<(String, String), ApiError> {
    let row = sqlx::query("SELECT execution_arn, status FROM executions WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_optional(state.store().pool())
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::not_found("execution"))?;
    let arn: Option<String> = row.try_get("execution_arn").map_err(db)?;
    let status: String = row.try_get("status").map_err(db)?;
    let arn =
        arn.ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "not_started", "the execution has not started yet"))?;
    Ok((arn, status))
}

/// Stops a running execution (ABORTED).
pub async fn stop(
    state: &AppState,
    tenant: &str,
    id: Uuid,
    error: Option<String>,
    cause: Option<String>,
) -> Result<Execution, ApiError> {
    let client = sfn(state)?;
    let (arn, status) = arn_of(state, tenant, id).await?;
    if is_terminal(&status) {
        return Err(ApiError::new(StatusCode::CONFLICT, "not_running", format!("the execution is already {status}")));
    }
    client
        .stop_execution()
        .execution_arn(&arn)
        .set_error(error)
        .set_cause(cause)
        .send()
        .await
        .map_err(sdk_unavailable)?;
    if !wait_recorded(state, id, is_terminal).await {
        // Step Functions has stopped it (or it had ended), but its history could not be
        // recorded: the row still ends, with Step Functions' own status, so a stop is never a
        // no-op. The recorder adds the events when it can.
        let described = client.describe_execution().execution_arn(&arn).send().await.map_err(sdk_unavailable)?;
        let status = described.status().as_str().to_owned();
        if is_terminal(&status) {
            sqlx::query(
                "UPDATE executions SET status = $2, error = $3, cause = $4, stopped_at = now() \
                 WHERE id = $1 AND status IN ('PENDING', 'RUNNING')",
            )
            .bind(id)
            .bind(&status)
            .bind(described.error())
            .bind(described.cause())
            .execute(state.store().pool())
            .await
            .map_err(db)?;
        }
    }
    get(state, tenant, id).await
}

/// Redrives a FAILED, ABORTED or TIMED_OUT execution from the state that failed.
pub async fn redrive(state: &AppState, tenant: &str, id: Uuid) -> Result<Execution, ApiError> {
    let client = sfn(state)?;
    let (arn, status) = arn_of(state, tenant, id).await?;
    if !matches!(status.as_str(), "FAILED" | "ABORTED" | "TIMED_OUT") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_redrivable",
            format!("only FAILED, ABORTED or TIMED_OUT executions can be redriven; this one is {status}"),
        ));
    }
    match client.redrive_execution().execution_arn(arn).send().await {
        Ok(_) => {}
        Err(err) if err.code() == Some("ExecutionNotRedrivable") => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_redrivable",
                err.message().unwrap_or("Step Functions cannot redrive this execution").to_owned(),
            ));
        }
        Err(err) => return Err(sdk_unavailable(err)),
    }
    // The row follows the history: RUNNING again once ExecutionRedriven is recorded.
    let _ = wait_recorded(state, id, |s| s != status).await;
    get(state, tenant, id).await
}

/// Records until `done(status)` or about two seconds pass; returns whether `done` held.
async fn wait_recorded(state: &AppState, id: Uuid, done: impl Fn(&str) -> bool) -> bool {
    for _ in 0..40 {
        let _ = record(state, id).await;
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM executions WHERE id = $1")
            .bind(id)
            .fetch_optional(state.store().pool())
            .await
            .ok()
            .flatten();
        if status.as_deref().is_some_and(&done) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Why the recorder failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("Step Functions: {0}")]
    Sfn(String),
}

/// Records execution `id`'s new history: appends node-level events past the stored ones (to
/// Postgres, then to the Redis stream) and updates the row's status and output. Returns whether
/// anything changed. Safe to run concurrently and repeatedly (it is how `weft serve`'s
/// recorder loop, the AWS `recorder` function and readers all keep executions current).
pub async fn record(state: &AppState, id: Uuid) -> Result<bool, RecordError> {
    let pool = state.store().pool();
    let Some(row) = sqlx::query("SELECT tenant_id, execution_arn FROM executions WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(false);
    };
    let tenant: String = row.try_get("tenant_id")?;
    let Some(arn): Option<String> = row.try_get("execution_arn")? else { return Ok(false) };
    let Some(client) = state.sfn_client() else { return Ok(false) };
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_execution_history()
            .execution_arn(&arn)
            .max_results(1000)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| RecordError::Sfn(format!("{:?}: {:?}", e.code(), e.message())))?;
        events.extend_from_slice(page.events());
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    let items = history::from_sdk(&events);
    let node_events = history::translate(&items);
    let outcome = history::outcome(&items);

    let mut tx = pool.begin().await?;
    let status: String = sqlx::query_scalar("SELECT status FROM executions WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM execution_events WHERE execution_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let stored = usize::try_from(stored).unwrap_or(usize::MAX);
    if node_events.len() < stored || (node_events.len() == stored && status == outcome.status) {
        // Another recorder saw a newer history already, or nothing is new.
        return Ok(false);
    }
    let fresh = &node_events[stored..];
    let mut appended = Vec::with_capacity(fresh.len());
    for (i, e) in fresh.iter().enumerate() {
        let seq = (stored + i + 1) as i64;
        sqlx::query(
            "INSERT INTO execution_events (tenant_id, execution_id, seq, type, node_id, payload) \
             VALUES ($1, $2, $3, $4, $5, $6::text::json)",
        )
        .bind(&tenant)
        .bind(id)
        .bind(seq)
        .bind(e.kind)
        .bind(&e.node_id)
        .bind(e.payload.to_string())
        .execute(&mut *tx)
        .await?;
        appended.push((seq, e));
    }
    if status != outcome.status && status != "PENDING" || (status == "PENDING" && outcome.status != "RUNNING") {
        sqlx::query(
            "UPDATE executions SET status = $2, output = $3::text::json, error = $4, cause = $5, \
             stopped_at = CASE WHEN $6 THEN now() ELSE NULL END WHERE id = $1",
        )
        .bind(id)
        .bind(outcome.status)
        .bind(outcome.output.as_ref().map(Value::to_string))
        .bind(&outcome.error)
        .bind(&outcome.cause)
        .bind(is_terminal(outcome.status))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    if let Some(mut redis) = state.redis() {
        let key = stream_key(&tenant, id);
        for (seq, e) in &appended {
            let payload = e.payload.to_string();
            let fields: [(&str, String); 4] = [
                ("seq", seq.to_string()),
                ("type", e.kind.to_owned()),
                ("node_id", e.node_id.clone().unwrap_or_default()),
                ("payload", payload),
            ];
            // Explicit ids keep the stream in seq order and make re-adds fail instead of duplicating.
            let added: Result<String, _> = redis::cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(10_000)
                .arg(format!("{seq}-1"))
                .arg(&fields[..])
                .query_async(&mut redis)
                .await;
            if let Err(err) = added {
                tracing::debug!(%err, execution = %id, seq, "redis stream append skipped");
            }
        }
        if is_terminal(outcome.status) {
            let _: Result<(), _> = redis::cmd("EXPIRE").arg(&key).arg(86_400).query_async(&mut redis).await;
        }
    }
    Ok(true)
}

/// The Redis stream of an execution's node-level events; entry ids are `{seq}-1`.
pub fn stream_key(tenant: &str, id: Uuid) -> String {
    format!("weft:exec:{tenant}:{id}")
}

/// Ids of executions that are not over yet (and have started), oldest first, at most `limit`.
pub async fn active_ids(state: &AppState, limit: i64) -> Result<Vec<Uuid>, RecordError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM executions WHERE status IN ('PENDING', 'RUNNING') AND execution_arn IS NOT NULL \
         ORDER BY started_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(state.store().pool())
    .await?)
}

/// Records every execution that is not over yet (oldest first, at most `limit`), `parallel` at a
/// time. Returns how many changed. `weft serve` runs this in a loop.
pub async fn record_active(state: &AppState, limit: i64, parallel: usize) -> Result<usize, RecordError> {
    use futures::StreamExt as _;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM executions WHERE status IN ('PENDING', 'RUNNING') AND execution_arn IS NOT NULL \
         ORDER BY started_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(state.store().pool())
    .await?;
    let changed = futures::stream::iter(ids)
        .map(|id| async move {
            match record(state, id).await {
                Ok(c) => c,
                Err(err) => {
                    tracing::warn!(%err, execution = %id, "recording failed; will retry");
                    false
                }
            }
        })
        .buffer_unordered(parallel.max(1))
        .filter(|c| std::future::ready(*c))
        .count()
        .await;
    Ok(changed)
}

/// Records the execution with this ARN (for the AWS recorder function, which gets ARNs from
/// EventBridge). Unknown ARNs (executions Weft did not start) are ignored.
pub async fn record_arn(state: &AppState, execution_arn: &str) -> Result<bool, RecordError> {
    let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM executions WHERE execution_arn = $1")
        .bind(execution_arn)
        .fetch_optional(state.store().pool())
        .await?;
    match id {
        Some(id) => record(state, id).await,
        None => Ok(false),
    }
}

/// How long a start may take before [`sweep_orphans`] treats its row as orphaned: far more than
/// an INSERT and a `StartExecution` call need, so only starts whose process died are swept.
pub const START_GRACE: Duration = Duration::from_secs(30);

/// Resolves executions whose start was interrupted (the process died between the row's INSERT
/// and recording the execution's ARN; a client hanging up no longer does it, see [`detached`]):
/// rows PENDING, or RUNNING without an ARN (a `?wait=true` start), that started before `cutoff`.
/// If Step Functions did start the execution (it is named after the row), the row gets its ARN
/// and the recorder takes it from there; otherwise it becomes FAILED with
/// `Weft.StartInterrupted`, visibly. Every Step Functions call is bounded by `call_timeout`.
/// Returns how many rows were resolved. `weft serve` runs it at start-up (cutoff: its own start)
/// and then every few seconds (cutoff: now minus [`START_GRACE`], or the sync wait for sync rows).
pub async fn sweep_orphans(
    state: &AppState,
    cutoff: DateTime<Utc>,
    sync_cutoff: DateTime<Utc>,
    call_timeout: Duration,
) -> Result<usize, RecordError> {
    let pool = state.store().pool();
    let rows = sqlx::query(
        "SELECT e.id, e.status, w.state_machine_arn FROM executions e JOIN workflows w ON w.id = e.workflow_id \
         WHERE e.execution_arn IS NULL AND ((e.status = 'PENDING' AND e.started_at < $1) \
            OR (e.status = 'RUNNING' AND e.started_at < $2)) \
         ORDER BY e.started_at LIMIT 1000",
    )
    .bind(cutoff)
    .bind(sync_cutoff)
    .fetch_all(pool)
    .await?;
    let mut resolved = 0;
    for row in rows {
        let id: Uuid = row.try_get("id")?;
        let status: String = row.try_get("status")?;
        let machine: Option<String> = row.try_get("state_machine_arn")?;
        let mut found = None;
        if let (Some(machine), Some(client)) = (machine, state.sfn_client()) {
            let arn = execution_arn(&machine, id);
            let described =
                tokio::time::timeout(call_timeout, client.describe_execution().execution_arn(&arn).send()).await;
            match described {
                Ok(Ok(_)) => found = Some(arn),
                Ok(Err(err)) if err.code() == Some("ExecutionDoesNotExist") => {}
                // Step Functions did not answer: a PENDING row waits for the next sweep; a sync
                // row is past any wait its process could still be in, so it fails below.
                Ok(Err(err)) if status == "PENDING" => {
                    tracing::warn!(execution = %id, error = ?err.code(), "cannot tell whether an interrupted start ran; will retry");
                    continue;
                }
                Err(_) if status == "PENDING" => {
                    tracing::warn!(execution = %id, "Step Functions did not answer within {call_timeout:?}; will retry");
                    continue;
                }
                Ok(Err(_)) | Err(_) => {}
            }
        }
        let adopted = found.is_some();
        let changed = match found {
            Some(arn) => sqlx::query(
                "UPDATE executions SET status = CASE WHEN status = 'PENDING' THEN 'RUNNING' ELSE status END, execution_arn = $2 \
                 WHERE id = $1 AND status = $3 AND execution_arn IS NULL",
            )
            .bind(id)
            .bind(arn)
            .bind(&status)
            .execute(pool)
            .await?
            .rows_affected(),
            None => sqlx::query(
                "UPDATE executions SET status = 'FAILED', error = 'Weft.StartInterrupted', cause = $3, \
                 stopped_at = now() WHERE id = $1 AND status = $2 AND execution_arn IS NULL",
            )
            .bind(id)
            .bind(&status)
            .bind(if status == "PENDING" {
                "the process starting this execution stopped before Step Functions started it; start it again"
            } else {
                "the process running this synchronous execution stopped before recording its result; it may have run partly"
            })
            .execute(pool)
            .await?
            .rows_affected(),
        };
        if changed > 0 {
            resolved += 1;
            if adopted {
                let _ = record(state, id).await;
            }
        }
    }
    Ok(resolved)
}

/// The ARN Step Functions gives execution `id` (executions are named after their row) of
/// `state_machine` (an unqualified state machine ARN).
fn execution_arn(state_machine: &str, id: Uuid) -> String {
    format!("{}:{id}", state_machine.replacen(":stateMachine:", ":execution:", 1))
}

/// The database's clock (row timestamps come from it, so cut-offs must too).
pub async fn db_now(state: &AppState) -> Result<DateTime<Utc>, RecordError> {
    Ok(sqlx::query_scalar("SELECT now()").fetch_one(state.store().pool()).await?)
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

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_round_trip() {
        let at = chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap_or_default();
        let id = uuid::Uuid::new_v4();
        assert_eq!(super::decode_cursor(&super::encode_cursor(at, id)), Some((at, id)));
        assert_eq!(super::decode_cursor("nope"), None);
    }
}
