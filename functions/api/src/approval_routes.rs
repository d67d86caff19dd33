//! `/v1/approvals`: pending human decisions of `approval` nodes, and deciding them.
//!
//! A decision is first claimed in Postgres (so two approvers cannot both decide), then delivered
//! to Step Functions with the stored task token: SendTaskSuccess with the approval's output, or
//! SendTaskFailure with `Approval.Rejected`. If the task no longer waits (its `TimeoutSeconds`,
//! the node's `timeout_seconds`, passed and Step Functions failed it with `States.Timeout`, or the
//! execution ended), the approval becomes `timed_out` and the answer is 410. An approval whose
//! execution is over before its timeout (stopped, or failed elsewhere) is not decided: the answer
//! is 409 `execution_over` with the execution's status. If Step Functions is unreachable, the
//! claim is released and the answer is 503, so the decision can be retried.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json, Path, Query};
use crate::routes::{AuthErrors, BodyErrors};
use auth::Role;
use triggers::{Approval, Approvals, Claim, DecideError, Decision};

/// The error name a rejected approval fails its Task with (Catch can match it).
pub const REJECTED: &str = "Approval.Rejected";

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApprovalResponse {
    pub id: Uuid,
    pub execution_id: Uuid,
    pub node_id: String,
    pub message: String,
    /// `pending`, `approved`, `rejected` or `timed_out`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    pub created_at: DateTime<Utc>,
}

impl ApprovalResponse {
    /// The task token is never shown: it is a credential for the execution.
    fn from(a: Approval, now: DateTime<Utc>) -> Self {
        let expired = a.status == "pending" && a.timeout_at.is_some_and(|t| t <= now);
        Self {
            id: a.id,
            execution_id: a.execution_id,
            node_id: a.node_id,
            message: a.message,
            status: if expired { "timed_out".to_owned() } else { a.status },
            timeout_at: a.timeout_at,
            decided_by: a.decided_by,
            decided_at: a.decided_at,
            comment: a.comment,
            output: a.output,
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApprovalList {
    pub items: Vec<ApprovalResponse>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecisionDto {
    Approve,
    Reject,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    pub decision: DecisionDto,
    #[schema(max_length = 4096)]
    pub comment: Option<String>,
    /// What the approval node outputs when approved (`nodes.<id>` downstream). Defaults to
    /// `{"approved": true, "comment", "decided_by"}`.
    pub output: Option<Value>,
}

fn approvals(state: &AppState) -> Approvals {
    Approvals::new(state.store().pool().clone())
}

fn store_error(e: triggers::Error) -> ApiError {
    ApiError::unavailable(e)
}

/// `GET /v1/approvals`: the tenant's pending, unexpired approvals, newest first.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = ApprovalList), (status = 400, description = "invalid query", body = ErrorBody), AuthErrors))]
pub async fn list_approvals(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<ApprovalList>, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = match q.limit {
        None => 50,
        Some(n @ 1..=200) => n,
        Some(_) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", "`limit` must be from 1 to 200"));
        }
    };
    let now = Utc::now();
    let rows = approvals(&state).list_pending(&caller.tenant, now, i64::from(limit)).await.map_err(store_error)?;
    Ok(axum::Json(ApprovalList { items: rows.into_iter().map(|a| ApprovalResponse::from(a, now)).collect() }))
}

/// `GET /v1/approvals/{id}`.
#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "approvals",
    params(("id" = Uuid, Path, description = "approval id")), security(("bearer" = [])),
    responses((status = 200, body = ApprovalResponse),
        (status = 400, description = "invalid id", body = ErrorBody),
        (status = 404, description = "no such approval in this tenant", body = ErrorBody), AuthErrors))]
pub async fn get_approval(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ApprovalResponse>, ApiError> {
    caller.require(Role::Viewer)?;
    let a = approvals(&state)
        .get(&caller.tenant, id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("approval"))?;
    Ok(axum::Json(ApprovalResponse::from(a, Utc::now())))
}

/// `POST /v1/approvals/{id}`: approve or reject.
#[utoipa::path(post, path = "/v1/approvals/{id}", tag = "approvals",
    params(("id" = Uuid, Path, description = "approval id")), security(("bearer" = [])), request_body = DecideRequest,
    responses((status = 200, description = "decided and delivered to the execution", body = ApprovalResponse),
        (status = 404, description = "no such approval in this tenant", body = ErrorBody),
        (status = 409, description = "already decided, the execution is over (stopped or failed), or executions are disabled", body = ErrorBody),
        (status = 410, description = "the approval timed out (the task failed with States.Timeout)", body = ErrorBody),
        (status = 413, description = "the output is larger than Step Functions accepts (256 KiB)", body = ErrorBody),
        (status = 503, description = "Step Functions or the database is unavailable; retrying helps", body = ErrorBody),
        BodyErrors, AuthErrors))]
pub async fn decide_approval(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<DecideRequest>,
) -> Result<axum::Json<ApprovalResponse>, ApiError> {
    caller.require(Role::Editor)?;
    let decision = match req.decision {
        DecisionDto::Approve => Decision::Approve,
        DecisionDto::Reject => Decision::Reject,
    };
    if req.comment.as_deref().is_some_and(|c| c.chars().count() > 4096) {
        return Err(ApiError::bad_request("`comment` must be at most 4096 characters"));
    }
    let Some(client) = state.sfn_client().cloned() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "executions_disabled",
            "this server has no Step Functions endpoint configured",
        ));
    };
    let output = match decision {
        Decision::Approve => Some(
            req.output
                .clone()
                .unwrap_or_else(|| json!({"approved": true, "comment": req.comment, "decided_by": caller.subject})),
        ),
        Decision::Reject => None,
    };
    if output.as_ref().is_some_and(|o| o.to_string().len() > MAX_OUTPUT_BYTES) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("`output` must be at most {MAX_OUTPUT_BYTES} bytes as JSON (Step Functions' limit)"),
        ));
    }
    let store = approvals(&state);
    let now = Utc::now();
    // An execution that is over (stopped, say) no longer waits for its approvals: say so rather
    // than claim the decision and find out from Step Functions. Expired ones are left to `claim`.
    let current =
        store.get(&caller.tenant, id).await.map_err(store_error)?.ok_or_else(|| ApiError::not_found("approval"))?;
    if current.status == "pending"
        && current.timeout_at.is_none_or(|t| t > now)
        && let Some(status) = ended_execution(&store, &caller.tenant, id).await?
    {
        return Err(execution_over(&status));
    }
    let claimed = store
        .claim(
            &caller.tenant,
            id,
            Claim { decision, by: &caller.subject, comment: req.comment.as_deref(), output: output.as_ref(), now },
        )
        .await
        .map_err(|e| match e {
            DecideError::NotFound => ApiError::not_found("approval"),
            DecideError::AlreadyDecided(status) => {
                ApiError::new(StatusCode::CONFLICT, "already_decided", format!("the approval was already {status}"))
            }
            DecideError::Expired(at) => expired(at),
            DecideError::Store(e) => store_error(e),
        })?;
    let sent = match &output {
        Some(output) => client
            .send_task_success()
            .task_token(&claimed.task_token)
            .output(output.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_failure(e.into_service_error().meta().code().map(str::to_owned), "SendTaskSuccess")),
        None => {
            let cause = req.comment.clone().unwrap_or_else(|| format!("rejected by {}", caller.subject));
            client
                .send_task_failure()
                .task_token(&claimed.task_token)
                .error(REJECTED)
                .cause(cause)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_failure(e.into_service_error().meta().code().map(str::to_owned), "SendTaskFailure"))
        }
    };
    match sent {
        Ok(()) => {
            tracing::info!(approval = %id, decision = decision.status(), by = %caller.subject, "approval decided");
            Ok(axum::Json(ApprovalResponse::from(claimed, now)))
        }
        Err(Gone) => {
            // Stopped between the check above and the delivery: not a timeout either.
            if claimed.timeout_at.is_none_or(|t| t > Utc::now())
                && let Some(status) = ended_execution(&store, &caller.tenant, id).await?
            {
                store.release(&caller.tenant, id).await.map_err(store_error)?;
                return Err(execution_over(&status));
            }
            store.mark_timed_out(&caller.tenant, id).await.map_err(store_error)?;
            Err(expired(claimed.timeout_at.unwrap_or(now)))
        }
        Err(Retry) => {
            store.release(&caller.tenant, id).await.map_err(store_error)?;
            Err(ApiError::unavailable("Step Functions did not accept the decision"))
        }
    }
}

use SendOutcome::{Gone, Retry};

enum SendOutcome {
    /// The task no longer waits for this token.
    Gone,
    /// Step Functions could not be reached or throttled; the decision can be retried.
    Retry,
}

fn sdk_failure(code: Option<String>, operation: &str) -> SendOutcome {
    match code.as_deref() {
        Some("TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken") => Gone,
        other => {
            tracing::error!(operation, code = ?other, "Step Functions refused an approval decision");
            Retry
        }
    }
}

/// What Step Functions accepts as a task's output.
const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// The status of the approval's execution if that execution is over.
async fn ended_execution(store: &Approvals, tenant: &str, id: Uuid) -> Result<Option<String>, ApiError> {
    let status = store.execution_status(tenant, id).await.map_err(store_error)?;
    Ok(status.filter(|s| executions::is_terminal(s)))
}

fn execution_over(status: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "execution_over",
        format!("the execution is over ({status}); its approvals can no longer be decided"),
    )
}

fn expired(at: DateTime<Utc>) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "approval_expired",
        format!("the approval timed out at {}; the execution's task failed with States.Timeout", at.to_rfc3339()),
    )
}
