//! Request handlers. Each checks the caller's role first, then validates, then writes.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::dto::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json, Path, Query};
use crate::publish::{AliasRequest as RouteAlias, PublishError, PublishRequest};
use auth::Role;
use cache::Kind;

/// The errors every authenticated route may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum AuthErrors {
    /// Missing, malformed, expired or otherwise invalid credentials.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The caller's role is too low for this operation.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The tenant's rate limit is exhausted; see `Retry-After`.
    #[response(status = 429)]
    RateLimited(ErrorBody),
}

/// The errors of routes that read a JSON body.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    /// Malformed JSON, unknown fields or invalid values.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The body is larger than the server accepts.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not sent as `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
}

fn wf_key(tenant: &str, id: Uuid) -> String {
    format!("wf:{tenant}:{id}")
}

fn ver_key(tenant: &str, id: Uuid, version: i32) -> String {
    format!("ver:{tenant}:{id}:{version}")
}

fn json_bytes(status: StatusCode, bytes: impl Into<Body>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], bytes.into()).into_response()
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(ApiError::internal)
}

/// Serves the JSON body cached under `key`, or loads it, caches it and serves it. Readers only
/// fill an empty key (`put_if_absent`), so a slow reader never puts an old value back over a
/// writer's. An empty entry is a tombstone written by delete: the `what` is gone.
async fn cached_json(
    state: &AppState,
    key: &str,
    kind: Kind,
    what: &'static str,
    load: impl std::future::Future<Output = Result<Vec<u8>, ApiError>>,
) -> Result<Response, ApiError> {
    if let Some(bytes) = state.cache().get(key).await {
        if bytes.is_empty() {
            return Err(ApiError::not_found(what));
        }
        return Ok(json_bytes(StatusCode::OK, bytes.to_vec()));
    }
    let body = load.await?;
    state.cache().put_if_absent(key, body.clone(), kind).await;
    Ok(json_bytes(StatusCode::OK, body))
}

/// Checks that a draft graph parses as `weft/v1`; returns its validation diagnostics (which a
/// draft may have, but publishing refuses).
fn check_draft(graph: &serde_json::Value) -> Result<(compiler::Graph, Vec<compiler::Diagnostic>), ApiError> {
    if !graph.is_object() {
        return Err(ApiError::invalid_graph(vec![compiler::Diagnostic::error(
            compiler::codes::INVALID_SHAPE,
            "`graph` must be a JSON object (a weft/v1 graph)",
        )]));
    }
    let parsed = compiler::parse_value(graph.clone()).map_err(ApiError::invalid_graph)?;
    if parsed.format != compiler::FORMAT {
        return Err(ApiError::invalid_graph(vec![compiler::Diagnostic::error(
            compiler::codes::UNSUPPORTED_FORMAT,
            format!("`format` must be \"{}\", got {:?}", compiler::FORMAT, parsed.format),
        )]));
    }
    let diagnostics = compiler::validate(&parsed);
    Ok((parsed, diagnostics))
}

fn workflow_name(explicit: Option<String>, graph: &compiler::Graph) -> Result<String, ApiError> {
    let name = explicit
        .or_else(|| (!graph.name.trim().is_empty()).then(|| graph.name.clone()))
        .or_else(|| (!graph.id.trim().is_empty()).then(|| graph.id.clone()))
        .ok_or_else(|| ApiError::bad_request("the workflow needs a name: set `name` or the graph's `name`"))?;
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 256 {
        return Err(ApiError::bad_request("`name` must be 1 to 256 characters"));
    }
    Ok(name)
}

fn check_description(d: &Option<String>) -> Result<(), ApiError> {
    match d {
        Some(d) if d.chars().count() > 4096 => {
            Err(ApiError::bad_request("`description` must be at most 4096 characters"))
        }
        _ => Ok(()),
    }
}

fn check_len(what: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("`{what}` must be at most {max} characters"),
        )),
        // Postgres text cannot hold NUL, so it would otherwise fail the query with a 500.
        Some(v) if v.contains('\0') => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("`{what}` must not contain the NUL character"),
        )),
        _ => Ok(()),
    }
}

fn check_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(_) => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", "`limit` must be from 1 to 200")),
    }
}

fn workflow_response(w: store::Workflow) -> WorkflowResponse {
    let diagnostics = match compiler::parse_value(w.graph.clone()) {
        Ok(g) => compiler::validate(&g),
        Err(d) => d,
    };
    WorkflowResponse {
        id: w.id,
        name: w.name,
        description: w.description,
        graph: w.graph,
        latest_version: w.latest_version,
        live_version: w.live_version,
        state_machine_arn: w.state_machine_arn,
        created_by: w.created_by,
        created_at: w.created_at,
        updated_at: w.updated_at,
        diagnostics: diagnostics.into_iter().map(DiagnosticDto::from).collect(),
    }
}

/// Re-reads a workflow after a write and writes it through to the cache.
async fn refresh_workflow_cache(state: &AppState, tenant: &str, id: Uuid) {
    match state.store().get_workflow(tenant, id).await {
        Ok(w) => {
            if let Ok(body) = to_json(&workflow_response(w)) {
                state.cache().put(&wf_key(tenant, id), body, Kind::Mutable).await;
            }
        }
        Err(_) => state.cache().invalidate(&wf_key(tenant, id)).await,
    }
}

#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    state.store().ping().await.map_err(ApiError::unavailable)?;
    Ok(axum::Json(Health { status: "ok".into() }))
}

/// Validates and compiles a graph without saving anything.
#[utoipa::path(post, path = "/v1/compile", tag = "compile", request_body = CompileRequest,
    security(("bearer" = [])),
    responses((status = 200, body = CompileResponse),
        (status = 422, description = "the graph is invalid", body = DiagnosticsBody),
        BodyErrors, AuthErrors))]
pub async fn compile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(req): Json<CompileRequest>,
) -> Result<axum::Json<CompileResponse>, ApiError> {
    caller.require(Role::Viewer)?;
    let (graph, _) = check_draft(&req.graph)?;
    let mut options = state.inner.compile_options.clone();
    if let Some(functions) = req.functions {
        options.functions.0.extend(functions);
    }
    let compiled = compiler::compile(&graph, &options).map_err(ApiError::invalid_graph)?;
    Ok(axum::Json(CompileResponse {
        asl: compiled.asl,
        workflow_type: compiled.workflow_type.to_string(),
        state_count: compiled.state_count,
        standard_reasons: compiled.standard_reasons,
        warnings: compiled.warnings.into_iter().map(DiagnosticDto::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/workflows", tag = "workflows", request_body = WorkflowRequest,
    security(("bearer" = [])),
    responses((status = 201, body = WorkflowResponse),
        (status = 422, description = "the graph does not parse as weft/v1", body = DiagnosticsBody),
        BodyErrors, AuthErrors))]
pub async fn create_workflow(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(req): Json<WorkflowRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    let (graph, _) = check_draft(&req.graph)?;
    let name = workflow_name(req.name, &graph)?;
    let description = req.description.or(graph.description.clone());
    check_description(&description)?;
    let w = state
        .store()
        .create_workflow(
            &caller.tenant,
            &caller.subject,
            caller.role.as_str(),
            &name,
            description.as_deref(),
            &req.graph,
        )
        .await
        .map_err(ApiError::store("workflow"))?;
    let id = w.id;
    let body = to_json(&workflow_response(w))?;
    state.cache().put(&wf_key(&caller.tenant, id), body.clone(), Kind::Mutable).await;
    Ok(json_bytes(StatusCode::CREATED, body))
}

#[utoipa::path(get, path = "/v1/workflows", tag = "workflows", params(ListWorkflowsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = WorkflowList),
        (status = 400, description = "invalid query or cursor", body = ErrorBody), AuthErrors))]
pub async fn list_workflows(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<ListWorkflowsQuery>,
) -> Result<axum::Json<WorkflowList>, ApiError> {
    caller.require(Role::Viewer)?;
    check_len("name", q.name.as_deref(), 256)?;
    check_len("cursor", q.cursor.as_deref(), 512)?;
    let limit = check_limit(q.limit)?;
    let page = state
        .store()
        .list_workflows(&caller.tenant, q.name.as_deref(), q.cursor.as_deref(), limit)
        .await
        .map_err(ApiError::store("workflow"))?;
    Ok(axum::Json(WorkflowList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id")),
    security(("bearer" = [])),
    responses((status = 200, body = WorkflowResponse),
        (status = 400, description = "invalid id", body = ErrorBody),
        (status = 404, description = "no such workflow in this tenant", body = ErrorBody), AuthErrors))]
pub async fn get_workflow(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    cached_json(&state, &wf_key(&caller.tenant, id), Kind::Mutable, "workflow", async {
        let w = state.store().get_workflow(&caller.tenant, id).await.map_err(ApiError::store("workflow"))?;
        to_json(&workflow_response(w))
    })
    .await
}

/// Replaces the draft.
#[utoipa::path(put, path = "/v1/workflows/{id}", tag = "workflows", request_body = WorkflowRequest,
    params(("id" = Uuid, Path, description = "workflow id")),
    security(("bearer" = [])),
    responses((status = 200, body = WorkflowResponse),
        (status = 404, description = "no such workflow in this tenant", body = ErrorBody),
        (status = 422, description = "the graph does not parse as weft/v1", body = DiagnosticsBody),
        BodyErrors, AuthErrors))]
pub async fn update_workflow(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<WorkflowRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    let (graph, _) = check_draft(&req.graph)?;
    let name = workflow_name(req.name, &graph)?;
    let description = req.description.or(graph.description.clone());
    check_description(&description)?;
    let w = state
        .store()
        .update_workflow(&caller.tenant, id, &name, description.as_deref(), &req.graph)
        .await
        .map_err(ApiError::store("workflow"))?;
    let body = to_json(&workflow_response(w))?;
    state.cache().put(&wf_key(&caller.tenant, id), body.clone(), Kind::Mutable).await;
    Ok(json_bytes(StatusCode::OK, body))
}

/// Soft-deletes the workflow; its versions stay stored but are no longer served.
#[utoipa::path(delete, path = "/v1/workflows/{id}", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id")),
    security(("bearer" = [])),
    responses((status = 204, description = "deleted"),
        (status = 400, description = "invalid id", body = ErrorBody),
        (status = 404, description = "no such workflow in this tenant", body = ErrorBody), AuthErrors))]
pub async fn delete_workflow(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Editor)?;
    let latest =
        state.store().get_workflow(&caller.tenant, id).await.map_err(ApiError::store("workflow"))?.latest_version;
    state.store().delete_workflow(&caller.tenant, id).await.map_err(ApiError::store("workflow"))?;
    // Tombstones, so that a reader that loaded the row just before cannot re-fill the cache.
    state.cache().put(&wf_key(&caller.tenant, id), Vec::new(), Kind::Mutable).await;
    for v in 1..=latest.unwrap_or(0) {
        state.cache().put(&ver_key(&caller.tenant, id, v), Vec::new(), Kind::Mutable).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Compiles the current draft and publishes it as the next immutable version, routing the
/// `live` alias to it.
#[utoipa::path(post, path = "/v1/workflows/{id}/versions", tag = "versions",
    params(("id" = Uuid, Path, description = "workflow id")),
    security(("bearer" = [])),
    responses((status = 201, body = PublishResponse),
        (status = 400, description = "invalid id", body = ErrorBody),
        (status = 404, description = "no such workflow in this tenant", body = ErrorBody),
        (status = 409, description = "Step Functions refused the state machine, or a concurrent publish", body = ErrorBody),
        (status = 422, description = "the draft does not compile, or a `workflow` node names a missing or unpublished workflow or makes workflows call each other in a circle", body = DiagnosticsBody),
        (status = 502, description = "Step Functions failed; retrying may help", body = ErrorBody),
        AuthErrors))]
pub async fn publish_version(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    let mut tx = state.store().lock_workflow(&caller.tenant, id).await.map_err(ApiError::store("workflow"))?;
    let graph = compiler::parse_value(tx.workflow().graph.clone()).map_err(ApiError::invalid_graph)?;
    let mut options = state.inner.compile_options.clone();
    options.workflows = crate::subworkflows::resolve(state.store(), &caller.tenant, id, &graph).await?;
    let compiled = compiler::compile(&graph, &options).map_err(ApiError::invalid_graph)?;
    let definition = serde_json::to_string(&compiled.asl).map_err(ApiError::internal)?;
    let content_hash = format!("sha256:{:x}", Sha256::digest(definition.as_bytes()));
    let version = tx.next_version();
    let workflow = tx.workflow().clone();
    let published = state
        .inner
        .publisher
        .publish(PublishRequest {
            tenant: &caller.tenant,
            workflow_id: id,
            version,
            definition: &definition,
            workflow_type: compiled.workflow_type,
            state_machine_arn: workflow.state_machine_arn.as_deref(),
            alias_arn: workflow.alias_arn.as_deref(),
        })
        .await
        .map_err(publish_error)?;
    let row = tx
        .insert_version(
            &caller.subject,
            caller.role.as_str(),
            store::NewVersion {
                version,
                graph: workflow.graph.clone(),
                asl: compiled.asl,
                workflow_type: compiled.workflow_type.to_string(),
                content_hash,
                state_machine_arn: published.state_machine_arn,
                state_machine_version_arn: published.state_machine_version_arn,
                alias_arn: published.alias_arn,
            },
        )
        .await
        .map_err(ApiError::store("workflow"))?;
    tx.commit().await.map_err(ApiError::store("workflow"))?;
    let response = PublishResponse {
        version: row.version,
        workflow_type: row.workflow_type.clone(),
        content_hash: row.content_hash.clone(),
        state_machine_arn: row.state_machine_arn.clone(),
        state_machine_version_arn: row.state_machine_version_arn.clone(),
        created_at: row.created_at,
        warnings: compiled.warnings.into_iter().map(DiagnosticDto::from).collect(),
    };
    if let Ok(body) = to_json(&VersionResponse::from(row)) {
        state.cache().put(&ver_key(&caller.tenant, id, version), body, Kind::Immutable).await;
    }
    refresh_workflow_cache(&state, &caller.tenant, id).await;
    crate::trigger_routes::sync(&state, &caller.tenant, id, version, &workflow.graph).await;
    Ok(json_bytes(StatusCode::CREATED, to_json(&response)?))
}

fn publish_error(err: PublishError) -> ApiError {
    match err {
        PublishError::Rejected(msg) => {
            tracing::warn!(error = %msg, "Step Functions refused a publish");
            ApiError::new(
                StatusCode::CONFLICT,
                "publish_rejected",
                format!("Step Functions refused the state machine: {msg}"),
            )
        }
        PublishError::Unavailable(msg) => {
            tracing::error!(error = %msg, "Step Functions unavailable");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "publish_unavailable",
                "Step Functions is unavailable; retrying may help",
            )
        }
    }
}

#[utoipa::path(get, path = "/v1/workflows/{id}/versions", tag = "versions",
    params(("id" = Uuid, Path, description = "workflow id"), ListVersionsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = VersionList),
        (status = 400, description = "invalid id, query or cursor", body = ErrorBody),
        (status = 404, description = "no such workflow in this tenant", body = ErrorBody), AuthErrors))]
pub async fn list_versions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<ListVersionsQuery>,
) -> Result<axum::Json<VersionList>, ApiError> {
    caller.require(Role::Viewer)?;
    check_len("cursor", q.cursor.as_deref(), 32)?;
    let limit = check_limit(q.limit)?;
    let page = state
        .store()
        .list_versions(&caller.tenant, id, q.cursor.as_deref(), limit)
        .await
        .map_err(ApiError::store("workflow"))?;
    Ok(axum::Json(VersionList {
        items: page
            .items
            .into_iter()
            .map(|v| VersionSummaryResponse {
                version: v.version,
                workflow_type: v.workflow_type,
                content_hash: v.content_hash,
                state_machine_version_arn: v.state_machine_version_arn,
                created_by: v.created_by,
                created_at: v.created_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One published version with its graph and compiled ASL (cached: versions never change).
#[utoipa::path(get, path = "/v1/workflows/{id}/versions/{version}", tag = "versions",
    params(("id" = Uuid, Path, description = "workflow id"), ("version" = i32, Path, description = "version number")),
    security(("bearer" = [])),
    responses((status = 200, body = VersionResponse),
        (status = 400, description = "invalid id or version", body = ErrorBody),
        (status = 404, description = "no such version in this tenant", body = ErrorBody), AuthErrors))]
pub async fn get_version(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, version)): Path<(Uuid, i32)>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    cached_json(&state, &ver_key(&caller.tenant, id, version), Kind::Immutable, "version", async {
        let v = state.store().get_version(&caller.tenant, id, version).await.map_err(ApiError::store("version"))?;
        to_json(&VersionResponse::from(v))
    })
    .await
}

/// Routes the `live` alias to a published version (roll back or forward).
#[utoipa::path(put, path = "/v1/workflows/{id}/alias", tag = "versions", request_body = AliasRequest,
    params(("id" = Uuid, Path, description = "workflow id")),
    security(("bearer" = [])),
    responses((status = 200, body = AliasResponse),
        (status = 404, description = "no such workflow or version in this tenant", body = ErrorBody),
        (status = 409, description = "Step Functions refused the change", body = ErrorBody),
        (status = 502, description = "Step Functions failed; retrying may help", body = ErrorBody),
        BodyErrors, AuthErrors))]
pub async fn set_alias(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<AliasRequest>,
) -> Result<axum::Json<AliasResponse>, ApiError> {
    caller.require(Role::Editor)?;
    let mut tx = state.store().lock_workflow(&caller.tenant, id).await.map_err(ApiError::store("workflow"))?;
    let version = tx.version(req.version).await.map_err(ApiError::store("version"))?;
    let workflow = tx.workflow().clone();
    let alias_arn = state
        .inner
        .publisher
        .route_alias(RouteAlias {
            state_machine_arn: workflow.state_machine_arn.as_deref(),
            state_machine_version_arn: version.state_machine_version_arn.as_deref(),
            alias_arn: workflow.alias_arn.as_deref(),
        })
        .await
        .map_err(publish_error)?;
    tx.set_live_version(req.version, alias_arn.as_deref()).await.map_err(ApiError::store("workflow"))?;
    tx.commit().await.map_err(ApiError::store("workflow"))?;
    refresh_workflow_cache(&state, &caller.tenant, id).await;
    crate::trigger_routes::sync(&state, &caller.tenant, id, version.version, &version.graph).await;
    Ok(axum::Json(AliasResponse { version: req.version, alias_arn: alias_arn.or(workflow.alias_arn) }))
}

fn valid_secret_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && name.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Stores a secret, encrypted; the value is never returned by any route.
#[utoipa::path(post, path = "/v1/secrets", tag = "secrets", request_body = SecretRequest,
    security(("bearer" = [])),
    responses((status = 201, body = SecretResponse),
        (status = 409, description = "a secret with that name exists", body = ErrorBody),
        BodyErrors, AuthErrors))]
pub async fn create_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(req): Json<SecretRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    if !valid_secret_name(&req.name) {
        return Err(ApiError::bad_request("`name` must match [A-Za-z_][A-Za-z0-9_]* and be at most 128 characters"));
    }
    if req.value.len() > 65_536 {
        return Err(ApiError::bad_request("`value` must be at most 65536 bytes"));
    }
    let sealed =
        state.inner.secrets.seal(&caller.tenant, &req.name, req.value.as_bytes()).map_err(ApiError::internal)?;
    let row = state
        .store()
        .create_secret(
            &caller.tenant,
            &caller.subject,
            caller.role.as_str(),
            &req.name,
            &sealed.nonce,
            &sealed.ciphertext,
        )
        .await
        .map_err(ApiError::store("secret"))?;
    let body = SecretResponse { name: row.name, created_at: row.created_at, updated_at: row.updated_at };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// Secret names (never values).
#[utoipa::path(get, path = "/v1/secrets", tag = "secrets", security(("bearer" = [])),
    responses((status = 200, body = SecretList), AuthErrors))]
pub async fn list_secrets(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<axum::Json<SecretList>, ApiError> {
    caller.require(Role::Viewer)?;
    let rows = state.store().list_secrets(&caller.tenant).await.map_err(ApiError::store("secret"))?;
    Ok(axum::Json(SecretList {
        items: rows
            .into_iter()
            .map(|r| SecretResponse { name: r.name, created_at: r.created_at, updated_at: r.updated_at })
            .collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "secret name")),
    security(("bearer" = [])),
    responses((status = 204, description = "deleted"),
        (status = 400, description = "not a valid secret name", body = ErrorBody),
        (status = 404, description = "no such secret in this tenant", body = ErrorBody), AuthErrors))]
pub async fn delete_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    // No stored secret has another name (and Postgres would refuse a NUL in the query).
    if !valid_secret_name(&name) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "a secret name matches [A-Za-z_][A-Za-z0-9_]* and has at most 128 characters",
        ));
    }
    state.store().delete_secret(&caller.tenant, &name).await.map_err(ApiError::store("secret"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates an API key for a machine; the key is in this response only.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = ApiKeyRequest,
    security(("bearer" = [])),
    responses((status = 201, body = CreatedApiKey), BodyErrors, AuthErrors))]
pub async fn create_api_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(req): Json<ApiKeyRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let role = Role::parse(&req.role).ok_or_else(|| ApiError::bad_request("`role` must be viewer, editor or admin"))?;
    caller.require(role)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::bad_request("`name` must be 1 to 128 characters"));
    }
    let key = auth::ApiKey::generate();
    let row = state
        .store()
        .create_api_key(
            &caller.tenant,
            &caller.subject,
            caller.role.as_str(),
            name,
            role.as_str(),
            &key.prefix,
            &key.secret_hash,
        )
        .await
        .map_err(ApiError::store("api key"))?;
    let body = CreatedApiKey { key: row.into(), secret: key.plaintext };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses((status = 200, body = ApiKeyList), AuthErrors))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<axum::Json<ApiKeyList>, ApiError> {
    caller.require(Role::Admin)?;
    let rows = state.store().list_api_keys(&caller.tenant).await.map_err(ApiError::store("api key"))?;
    Ok(axum::Json(ApiKeyList { items: rows.into_iter().map(Into::into).collect() }))
}

#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = Uuid, Path, description = "API key id")),
    security(("bearer" = [])),
    responses((status = 204, description = "revoked"),
        (status = 400, description = "invalid id", body = ErrorBody),
        (status = 404, description = "no such key in this tenant", body = ErrorBody), AuthErrors))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    state.store().revoke_api_key(&caller.tenant, id).await.map_err(ApiError::store("api key"))?;
    Ok(StatusCode::NO_CONTENT)
}
