//! The `weft/v1` graph format: serde types that follow React Flow's JSON.
//!
//! Parsing is deliberately lenient about shape details an editor adds (`width`, `selected`,
//! `style`, ...): those are kept in `extra` so a graph round-trips unchanged. Everything that
//! matters for compilation is checked by [`crate::validate`], which reports every problem at once,
//! rather than by serde, which stops at the first one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The only format string this compiler accepts.
pub const FORMAT: &str = "weft/v1";

/// A workflow graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Must be `"weft/v1"`.
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub settings: Settings,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    #[serde(default)]
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub edges: Vec<Edge>,
    /// Fields this version does not use (an editor's `viewport`, ...), kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Workflow-wide settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `auto` (default), `standard` or `express`.
    #[serde(rename = "type", default)]
    pub workflow_type: SettingsType,
    /// The whole execution's timeout (the state machine's top-level `TimeoutSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Which Step Functions workflow type to deploy as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingsType {
    /// EXPRESS unless something needs STANDARD (see [`crate::WorkflowType`]).
    #[default]
    Auto,
    Standard,
    Express,
}

/// What starts an execution. Triggers are deployment configuration: they are validated but do
/// not change the compiled state machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// `webhook`, `schedule` (needs `cron`) or `queue` (needs `event`).
    #[serde(rename = "type", default)]
    pub trigger_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One node. `data` holds the type-specific fields (see `docs/graph-format.md`); `retry`,
/// `timeout_seconds` and `on_error` sit beside it because they apply to every type (and
/// `timeout_seconds` inside `data` already means something for `http` and `approval`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default)]
    pub node_type: String,
    #[serde(default)]
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// The loop this node belongs to (React Flow sub-flows; `parentNode` in React Flow 11).
    #[serde(rename = "parentId", alias = "parentNode", default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Maximum run time of the node's state (`TimeoutSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A node's retry policy for its own failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    /// Total attempts including the first one (so `3` means up to 2 retries).
    #[serde(default = "Retry::default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "Retry::default_interval")]
    pub interval_seconds: u32,
    #[serde(default = "Retry::default_backoff")]
    pub backoff_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_seconds: Option<u32>,
    #[serde(default)]
    pub jitter: bool,
}

impl Retry {
    fn default_max_attempts() -> u32 {
        3
    }
    fn default_interval() -> u32 {
        1
    }
    fn default_backoff() -> f64 {
        2.0
    }
}

/// What a failure of the node does when no `error` edge leaves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The execution (or enclosing loop iteration / parallel branch) fails.
    #[default]
    Fail,
    /// The node's output becomes `{"error": ..., "cause": ...}` and the flow goes on.
    Continue,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    #[serde(default)]
    pub x: f64,
    #[serde(default)]
    pub y: f64,
}

/// A directed edge. `sourceHandle` picks the out-port: `true`/`false` for conditions, a case
/// name or `default` for switches, `error` for the failure path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub target: String,
    #[serde(rename = "sourceHandle", default, skip_serializing_if = "Option::is_none")]
    pub source_handle: Option<String>,
    #[serde(rename = "targetHandle", default, skip_serializing_if = "Option::is_none")]
    pub target_handle: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Edge {
    /// A name for diagnostics: the edge's id, or `source->target` when it has none.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => format!("{}->{}", self.source, self.target),
        }
    }

    /// The source handle with React Flow's "no handle" spellings (`null`, `""`) folded to `None`.
    pub fn handle(&self) -> Option<&str> {
        self.source_handle.as_deref().filter(|h| !h.is_empty())
    }
}

/// Every node type of `weft/v1`.
pub const NODE_TYPES: &[&str] = &[
    "start",
    "end",
    "condition",
    "switch",
    "loop",
    "parallel",
    "join",
    "delay",
    "http",
    "code",
    "llm",
    "agent",
    "multi_agent",
    "vector_search",
    "vector_upsert",
    "database",
    "email",
    "slack",
    "approval",
    "workflow",
];

/// Whether nodes of type `t` run as a Task (a node function, or `workflow`'s child execution) and
/// can therefore fail, retry and time out. The other types of [`NODE_TYPES`] are states Step
/// Functions runs itself (Choice, Map, Parallel, Wait, Pass).
pub fn is_task_type(t: &str) -> bool {
    node_contract::logical_id(t).is_some() || t == "workflow"
}
