//! Request and response bodies. These types are the API's contract: the OpenAPI document is
//! generated from them, and requests refuse unknown fields so typos fail loudly.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// One compiler diagnostic, as `weft compile --format json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DiagnosticDto {
    /// `error` or `warning`.
    pub severity: String,
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
}

impl From<compiler::Diagnostic> for DiagnosticDto {
    fn from(d: compiler::Diagnostic) -> Self {
        let severity = match d.severity {
            compiler::Severity::Error => "error",
            compiler::Severity::Warning => "warning",
        };
        Self { severity: severity.to_owned(), code: d.code, message: d.message, node: d.node, edge: d.edge }
    }
}

/// The documented outline of a `weft/v1` graph (see `docs/graph-format.md`); the compiler
/// checks the rest and answers 422 with diagnostics.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GraphDoc {
    /// Always `weft/v1`.
    #[schema(pattern = "^weft/v1$")]
    format: String,
    id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    #[schema(value_type = Object)]
    settings: Option<Value>,
    #[schema(value_type = Vec<Object>)]
    triggers: Option<Vec<Value>>,
    #[schema(value_type = Vec<Object>)]
    nodes: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    edges: Vec<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompileRequest {
    /// A `weft/v1` graph.
    #[schema(value_type = GraphDoc)]
    pub graph: Value,
    /// Node type → Lambda function name or ARN; unmapped types use the SAM placeholders.
    #[serde(default)]
    pub functions: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompileResponse {
    /// The state machine definition (Amazon States Language).
    #[schema(value_type = Object)]
    pub asl: Value,
    /// `STANDARD` or `EXPRESS`.
    pub workflow_type: String,
    pub state_count: usize,
    /// Why the type is STANDARD when `settings.type` is `auto`.
    pub standard_reasons: Vec<String>,
    pub warnings: Vec<DiagnosticDto>,
}

/// A failed validation: `{"diagnostics": [...]}` plus the usual `error`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiagnosticsBody {
    pub error: crate::error::ErrorDetail,
    pub diagnostics: Vec<DiagnosticDto>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowRequest {
    /// A `weft/v1` graph; it must parse, but a draft may still have validation errors
    /// (publishing refuses those).
    #[schema(value_type = GraphDoc)]
    pub graph: Value,
    /// Defaults to the graph's `name`, then its `id`.
    #[serde(default)]
    pub name: Option<String>,
    /// Defaults to the graph's `description`.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkflowResponse {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// The current draft.
    #[schema(value_type = Object)]
    pub graph: Value,
    /// The newest published version.
    pub latest_version: Option<i32>,
    /// The version the `live` alias points at.
    pub live_version: Option<i32>,
    pub state_machine_arn: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Validation problems of the draft (empty when it would publish).
    pub diagnostics: Vec<DiagnosticDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowSummaryResponse {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub latest_version: Option<i32>,
    pub live_version: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<store::WorkflowSummary> for WorkflowSummaryResponse {
    fn from(w: store::WorkflowSummary) -> Self {
        Self {
            id: w.id,
            name: w.name,
            description: w.description,
            latest_version: w.latest_version,
            live_version: w.live_version,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowList {
    pub items: Vec<WorkflowSummaryResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListWorkflowsQuery {
    /// Case-insensitive substring of the name.
    #[param(max_length = 256)]
    pub name: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 512)]
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListVersionsQuery {
    /// `next_cursor` of the previous page.
    #[param(max_length = 32)]
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublishResponse {
    pub version: i32,
    pub workflow_type: String,
    /// `sha256:` of the ASL definition.
    pub content_hash: String,
    pub state_machine_arn: Option<String>,
    pub state_machine_version_arn: Option<String>,
    pub created_at: DateTime<Utc>,
    pub warnings: Vec<DiagnosticDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummaryResponse {
    pub version: i32,
    pub workflow_type: String,
    pub content_hash: String,
    pub state_machine_version_arn: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    pub items: Vec<VersionSummaryResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionResponse {
    pub workflow_id: Uuid,
    pub version: i32,
    #[schema(value_type = Object)]
    pub graph: Value,
    /// The compiled state machine definition.
    #[schema(value_type = Object)]
    pub asl: Value,
    pub workflow_type: String,
    pub content_hash: String,
    pub state_machine_arn: Option<String>,
    pub state_machine_version_arn: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<store::Version> for VersionResponse {
    fn from(v: store::Version) -> Self {
        Self {
            workflow_id: v.workflow_id,
            version: v.version,
            graph: v.graph,
            asl: v.asl,
            workflow_type: v.workflow_type,
            content_hash: v.content_hash,
            state_machine_arn: v.state_machine_arn,
            state_machine_version_arn: v.state_machine_version_arn,
            created_by: v.created_by,
            created_at: v.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasRequest {
    /// A published version to route the `live` alias to.
    #[schema(minimum = 1)]
    pub version: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AliasResponse {
    pub version: i32,
    pub alias_arn: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRequest {
    /// `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters; used as `{{ secrets.NAME }}`.
    #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    pub name: String,
    /// Stored encrypted; never returned.
    #[schema(max_length = 65536)]
    pub value: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretResponse {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretList {
    pub items: Vec<SecretResponse>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// `viewer`, `editor` or `admin` (at most the creator's own role).
    #[schema(pattern = "^(viewer|editor|admin)$")]
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyResponse {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    /// The public part of the key (`weft_<prefix>_...`).
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<store::ApiKeyRow> for ApiKeyResponse {
    fn from(k: store::ApiKeyRow) -> Self {
        Self {
            id: k.id,
            name: k.name,
            role: k.role,
            prefix: k.prefix,
            created_by: k.created_by,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyResponse,
    /// The whole key; shown only in this response.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}
