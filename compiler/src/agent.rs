//! What `agent` and `multi_agent` nodes declare, read the same way by validation and lowering.
//!
//! An agent is compiled into a loop of states (see `lower/agent.rs`): a turn Task on the agent
//! function (one model call), a Choice on what the model asked for, and a Map running each tool
//! call on the node function of the tool's type, then back to the turn. A tool is declared on the
//! node as `{"name", "description", "parameters", "type": "http" | "code" | "vector_search" |
//! "workflow", ...that type's config}`; `{{ args.X }}` in the config (and `args` in `code`) is
//! what the model passed.

use serde_json::{Map, Value};

/// `max_steps` (model calls of one agent loop) when the node sets none.
pub const DEFAULT_MAX_STEPS: u64 = 10;
/// The largest `max_steps` / `max_turns`.
pub const MAX_STEPS: u64 = 100;
/// The most tools one agent may declare.
pub const MAX_TOOLS: usize = 32;
/// The most agents of one `multi_agent` node.
pub const MAX_AGENTS: usize = 16;
/// The node types a tool may have.
pub const TOOL_TYPES: &[&str] = &["http", "code", "vector_search", "workflow"];
/// The keys of a tool declaration that are not the config of its node type.
pub const DECLARATION_KEYS: &[&str] =
    &["name", "description", "parameters", "type", "requires_approval", "approval_message", "approval_timeout_seconds"];
/// Names an agent of a `multi_agent` node may not have: the roles the compiler adds and the
/// suffixes of the states of an agent loop.
pub const RESERVED_AGENT_NAMES: &[&str] = &[
    "supervisor",
    "aggregator",
    "agents",
    "start",
    "turn",
    "route",
    "tools",
    "call",
    "done",
    "error",
    "output",
    "failed",
    "max_steps",
];
/// The strategies of a `multi_agent` node.
pub const STRATEGIES: &[&str] = &["sequential", "parallel", "supervisor"];

/// A tool name as OpenAI-compatible APIs accept it: 1 to 64 ASCII letters, digits, `_` and `-`.
pub fn is_tool_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An agent name of a `multi_agent` node: an identifier of 1 to 32 characters (it is part of state
/// names and of the `transfer_to_<name>` tools of a supervisor).
pub fn is_agent_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 32
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One declared tool (after validation; lowering reads it leniently).
#[derive(Debug, Clone, Copy)]
pub struct Tool<'g> {
    pub name: &'g str,
    pub tool_type: &'g str,
    pub declaration: &'g Map<String, Value>,
}

impl<'g> Tool<'g> {
    /// The tool's config: the declaration without its [`DECLARATION_KEYS`].
    pub fn config(&self) -> impl Iterator<Item = (&'g String, &'g Value)> {
        self.declaration.iter().filter(|(k, _)| !DECLARATION_KEYS.contains(&k.as_str()))
    }

    pub fn requires_approval(&self) -> bool {
        self.declaration.get("requires_approval").and_then(Value::as_bool).unwrap_or(false)
    }

    /// What the model is told about the tool: `{"name", "description", "parameters"}`.
    pub fn interface(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(self.name.to_owned()));
        m.insert(
            "description".into(),
            self.declaration.get("description").cloned().unwrap_or_else(|| Value::String(String::new())),
        );
        m.insert(
            "parameters".into(),
            self.declaration
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        );
        Value::Object(m)
    }
}

/// The tools of an agent's `tools` value (entries that are not objects with a name and a type
/// are skipped: validation reports them).
pub fn tools(value: Option<&Value>) -> Vec<Tool<'_>> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|t| {
                    let declaration = t.as_object()?;
                    Some(Tool {
                        name: declaration.get("name")?.as_str()?,
                        tool_type: declaration.get("type")?.as_str()?,
                        declaration,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The agents of a `multi_agent` node: `(name, its object)`.
pub fn agents(data: &Value) -> Vec<(&str, &Map<String, Value>)> {
    data.get("agents")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|a| {
                    let a = a.as_object()?;
                    Some((a.get("name")?.as_str()?, a))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `workflow_id`s the tools of an `agent` or `multi_agent` node start.
pub fn tool_workflow_ids(node_type: &str, data: &Value) -> Vec<String> {
    let mut all = Vec::new();
    let mut from = |v: Option<&Value>| {
        for t in tools(v) {
            if t.tool_type == "workflow"
                && let Some(w) = t.declaration.get("workflow_id").and_then(Value::as_str)
            {
                all.push(w.to_owned());
            }
        }
    };
    match node_type {
        "agent" => from(data.get("tools")),
        "multi_agent" => {
            for (_, a) in agents(data) {
                from(a.get("tools"));
            }
        }
        _ => {}
    }
    all
}
