//! The Weft compiler: parses `weft/v1` workflow graphs, validates them, and lowers them to
//! Amazon States Language (JSONPath query language).
//!
//! Architecture invariant: this crate does no IO and knows nothing of AWS SDKs or async runtimes
//! (checked by `scripts/test` with `cargo tree -p compiler`). Every entry point is cheap and
//! panic-free on any input, because the API calls [`parse`] and [`compile`] from a request
//! handler.
//!
//! ```
//! let graph = compiler::parse(r#"{"format": "weft/v1", "id": "hi", "name": "Hi",
//!   "nodes": [{"id": "start", "type": "start", "data": {}},
//!             {"id": "done", "type": "end", "data": {"output": "{{ input.name }}"}}],
//!   "edges": [{"id": "e1", "source": "start", "target": "done"}]}"#).unwrap();
//! let compiled = compiler::compile(&graph, &compiler::CompileOptions::default()).unwrap();
//! assert_eq!(compiled.asl["StartAt"], "start");
//! assert_eq!(compiled.workflow_type, compiler::WorkflowType::Express);
//! ```
//!
//! The state layout (see `docs/graph-format.md`) and the lowering are described in [`lower`].

pub mod agent;
mod analysis;
mod diagnostic;
mod explain;
mod graph;
pub mod js;
pub mod json;
pub mod lower;
mod options;
mod render;
pub mod template;

pub use analysis::MAX_NESTING;
pub use diagnostic::{Diagnostic, Severity, codes};
pub use explain::{Explain, LoopInvocations, PriceTable, explain, explain_with};
pub use graph::{
    Edge, FORMAT, Graph, NODE_TYPES, Node, OnError, Position, Retry, Settings, SettingsType, Trigger, is_task_type,
};
pub use js::MAX_TOKENS as MAX_CONDITION_TOKENS;
pub use options::{CompileOptions, FunctionMap};
pub use render::render_mermaid;

use serde::{Deserialize, Serialize};

/// The Step Functions workflow type of a compiled graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WorkflowType {
    Standard,
    Express,
}

impl std::fmt::Display for WorkflowType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Standard => "STANDARD",
            Self::Express => "EXPRESS",
        })
    }
}

/// A compiled graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compiled {
    /// The state machine definition (ASL, JSONPath).
    pub asl: serde_json::Value,
    pub workflow_type: WorkflowType,
    /// Why the type is STANDARD when `settings.type` is `auto` (empty for EXPRESS).
    pub standard_reasons: Vec<String>,
    /// Non-fatal diagnostics.
    pub warnings: Vec<Diagnostic>,
    /// Number of states, nested ones included.
    pub state_count: usize,
    /// Size of the definition serialized as compact JSON (Step Functions accepts 1 MiB).
    pub definition_bytes: usize,
}

/// Parses a graph from JSON text. Syntax and shape errors become diagnostics (`invalid-json`,
/// `invalid-shape`) with the line and column.
pub fn parse(json: &str) -> Result<Graph, Vec<Diagnostic>> {
    serde_json::from_str::<Graph>(json).map_err(|err| {
        let code = match err.classify() {
            serde_json::error::Category::Data => codes::INVALID_SHAPE,
            _ => codes::INVALID_JSON,
        };
        vec![Diagnostic::error(code, format!("{err}"))]
    })
}

/// How deeply arrays and objects may nest, in a graph and in a compiled definition: serde_json's
/// parser refuses more (its default recursion limit), and so would every reader of the
/// definition that uses it (Weft's engine, `sfn-server`, the API's clients). [`parse`] refuses a
/// deeper graph as `invalid-json`, [`parse_value`] one built deeper in code the same way, and
/// [`compile`] a deeper definition as `too-large` (a parallel adds four levels, a loop three).
pub const MAX_JSON_DEPTH: usize = 127;

/// Parses a graph from an already-parsed JSON value (for callers that received JSON, such as
/// the API). A value nested deeper than [`MAX_JSON_DEPTH`] is `invalid-json`, as in [`parse`]
/// (it is taken apart without recursion: dropping it, like converting it, would recurse once per
/// level).
pub fn parse_value(value: serde_json::Value) -> Result<Graph, Vec<Diagnostic>> {
    if nests_deeper(&value, MAX_JSON_DEPTH) {
        drop_flat(value);
        return Err(vec![Diagnostic::error(
            codes::INVALID_JSON,
            format!("the graph nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"),
        )]);
    }
    serde_json::from_value::<Graph>(value)
        .map_err(|err| vec![Diagnostic::error(codes::INVALID_SHAPE, format!("{err}"))])
}

/// Whether `v` nests arrays/objects more than `limit` levels deep (an explicit stack; stops at
/// the first level past `limit`).
pub(crate) fn nests_deeper(v: &serde_json::Value, limit: usize) -> bool {
    use serde_json::Value;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        if depth + 1 > limit {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

/// Drops a value of any depth without recursion.
fn drop_flat(v: serde_json::Value) {
    use serde_json::Value;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Every problem in the graph, errors first then warnings, each group in graph order.
pub fn validate(graph: &Graph) -> Vec<Diagnostic> {
    analysis::analyze(graph).diagnostics
}

/// The names of the secrets a graph's nodes use (`{{ secrets.NAME }}` in the data of nodes that
/// run a function, where the function resolves them at run time), sorted. `weft run` checks them
/// against `--secrets` before it starts.
pub fn secret_names(graph: &Graph) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for node in &graph.nodes {
        let t = node.node_type.as_str();
        if node_contract::logical_id(t).is_none() {
            continue;
        }
        let serde_json::Value::Object(data) = &node.data else { continue };
        // The secret a node connects with (`database`, `email`, `slack`), named literally.
        if let Some(c) = data.get("connection").and_then(serde_json::Value::as_str)
            && uses_connection(t)
        {
            names.insert(c.to_owned());
        }
        let mut stack: Vec<&serde_json::Value> =
            data.iter().filter(|(k, _)| !analysis::is_js_field(t, k)).map(|(_, v)| v).collect();
        while let Some(v) = stack.pop() {
            match v {
                serde_json::Value::String(s) => {
                    let Ok(Some(parts)) = template::parse_string(s) else { continue };
                    for part in parts {
                        if let template::Part::Secret(full) = part {
                            let inner = full.trim_start_matches('{').trim_end_matches('}').trim();
                            if let Some(name) = inner.strip_prefix("secrets.") {
                                names.insert(name.to_owned());
                            }
                        }
                    }
                }
                serde_json::Value::Array(items) => stack.extend(items),
                serde_json::Value::Object(map) => stack.extend(map.values()),
                _ => {}
            }
        }
    }
    names
}

/// Whether nodes of `node_type` name a connection secret in `data.connection`.
pub fn uses_connection(node_type: &str) -> bool {
    matches!(node_type, "database" | "email" | "slack")
}

/// The workflows `graph` starts, `(node id, workflow id)`: each `workflow` node's, and those of
/// the `workflow` tools of its agents.
pub fn workflow_calls(graph: &Graph) -> Vec<(String, String)> {
    graph
        .nodes
        .iter()
        .flat_map(|n| {
            let own = (n.node_type == "workflow")
                .then(|| n.data.get("workflow_id").and_then(serde_json::Value::as_str).map(str::to_owned))
                .flatten();
            own.into_iter()
                .chain(agent::tool_workflow_ids(&n.node_type, &n.data))
                .map(|w| (n.id.clone(), w))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Validates and lowers a graph. On failure returns all diagnostics (errors and warnings).
pub fn compile(graph: &Graph, options: &CompileOptions) -> Result<Compiled, Vec<Diagnostic>> {
    let analysis = analysis::analyze(graph);
    if analysis.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(analysis.diagnostics);
    }
    lower::lower(graph, &analysis, options)
}
