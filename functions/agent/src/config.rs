//! The node's config (one agent of a loop), read into an [`Agent`]: every field checked, each
//! problem a `Config.Invalid` naming the field (`config.tools[2].name: ...`).
//!
//! The model fields (`model`, `temperature`, `response_format`, `timeout_seconds`, `provider`)
//! are exactly an `llm` node's, so they are read by fn-llm's parser: same checks, same messages,
//! same rule for a tenant provider's key (a declared secret, never a literal).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fn_llm::structured::Schema;
use fn_llm::{Call, Format};
use node_contract::{NodeError, SecretRefs, error_names, kind_of};
use serde_json::{Map, Value, json};

/// `max_steps` when the config has none.
pub const DEFAULT_MAX_STEPS: u64 = 10;
/// The largest `max_steps` accepted: every turn is a state transition and a model call, and the
/// transcript of that many turns would not fit the state anyway.
pub const MAX_MAX_STEPS: u64 = 1000;
/// The most tools a node may declare (OpenAI's limit for one request).
pub const MAX_TOOLS: usize = 128;
/// The prefix of a supervisor's delegation tools: `transfer_to_<agent name>`.
pub const TRANSFER_PREFIX: &str = "transfer_to_";

/// What the loop does when the model still asks for tools after `max_steps` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnMaxSteps {
    Fail,
    Answer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Agent,
    Supervisor,
    Aggregator,
}

/// A tool the model may call.
#[derive(Debug)]
pub(crate) struct ToolDecl {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Value,
    pub schema: Arc<Schema>,
    /// For a supervisor's `transfer_to_<agent>`: the agent's name.
    pub transfer: Option<String>,
}

/// One agent of a supervisor.
#[derive(Debug)]
pub(crate) struct SubAgent {
    pub name: String,
    pub description: String,
}

/// One checked agent config.
#[derive(Debug)]
pub(crate) struct Agent {
    /// The model call's fields: `request` holds model, temperature and response_format (its
    /// messages are replaced); `format` what the final answer must be.
    pub call: Call,
    pub instructions: String,
    pub input: Option<Value>,
    /// The declared tools, then (supervisor) the transfer tools.
    pub tools: Vec<ToolDecl>,
    pub max_steps: u64,
    pub max_tokens: Option<u64>,
    pub on_max_steps: OnMaxSteps,
    /// `config.agent`: set for the agents of a `multi_agent` node.
    pub agent: Option<String>,
    pub role: Role,
    pub agents: Vec<SubAgent>,
    pub task: Option<Value>,
    pub last: bool,
}

impl Agent {
    /// The name this loop goes by in outputs: `config.agent`, else its role's name.
    pub(crate) fn name(&self) -> &str {
        match (&self.agent, self.role) {
            (Some(a), _) => a,
            (None, Role::Supervisor) => "supervisor",
            (None, Role::Aggregator) => "aggregator",
            (None, Role::Agent) => "agent",
        }
    }

    pub(crate) fn tool(&self, name: &str) -> Option<&ToolDecl> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// Whether the final answer must be JSON (`response_format` `"json"` or a schema).
    pub(crate) fn wants_json(&self) -> bool {
        !matches!(self.call.format, Format::Text)
    }

    pub(crate) fn schema(&self) -> Option<&Schema> {
        match &self.call.format {
            Format::Schema(s) => Some(s),
            _ => None,
        }
    }
}

/// Compiled tool schemas, by their JSON text: every turn of a loop declares the same tools, and
/// compiling a schema costs more than the rest of the turn's own work.
#[derive(Default)]
pub(crate) struct Schemas {
    compiled: Mutex<HashMap<String, Arc<Schema>>>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas").field("len", &self.lock().len()).finish()
    }
}

impl Schemas {
    /// The most schemas kept (then the cache starts over): bounds the memory whatever the
    /// graphs a process runs.
    const MAX: usize = 256;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Schema>>> {
        self.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn compile(&self, schema: &Value) -> Result<Arc<Schema>, String> {
        let key = schema.to_string();
        if let Some(s) = self.lock().get(&key) {
            return Ok(s.clone());
        }
        let compiled = Arc::new(Schema::compile(schema)?);
        let mut map = self.lock();
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(key, compiled.clone());
        Ok(compiled)
    }
}

pub(crate) fn parse(config: &Value, declared: &SecretRefs, schemas: &Schemas) -> Result<Agent, NodeError> {
    let Value::Object(config) = config else {
        return Err(NodeError::new(
            error_names::CONFIG_INVALID,
            format!("config: expected an object, got {}", kind_of(config)),
        ));
    };
    let call = model_fields(config, declared)?;
    let instructions = match config.get("instructions") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(NodeError::config("instructions", format!("must be a string, got {}", kind_of(other))));
        }
    };
    let input = config.get("input").filter(|v| !v.is_null()).cloned();
    let max_steps = match config.get("max_steps").filter(|v| !v.is_null()) {
        None => DEFAULT_MAX_STEPS,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_MAX_STEPS).contains(&n) => n,
            _ => {
                return Err(NodeError::config(
                    "max_steps",
                    format!("must be a whole number from 1 to {MAX_MAX_STEPS} (model calls per loop)"),
                ));
            }
        },
    };
    let max_tokens = match config.get("max_tokens").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                return Err(NodeError::config(
                    "max_tokens",
                    "must be a positive whole number (the token budget of the loop, input and output, all turns)",
                ));
            }
        },
    };
    let on_max_steps = match config.get("on_max_steps") {
        None | Some(Value::Null) => OnMaxSteps::Fail,
        Some(Value::String(s)) if s == "fail" => OnMaxSteps::Fail,
        Some(Value::String(s)) if s == "answer" => OnMaxSteps::Answer,
        Some(_) => return Err(NodeError::config("on_max_steps", "must be \"fail\" or \"answer\"")),
    };
    let agent = match config.get("agent") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(_) => return Err(NodeError::config("agent", "must be a non-empty string (the agent's name)")),
    };
    let role = match config.get("role") {
        None | Some(Value::Null) => Role::Agent,
        Some(Value::String(s)) if s == "agent" => Role::Agent,
        Some(Value::String(s)) if s == "supervisor" => Role::Supervisor,
        Some(Value::String(s)) if s == "aggregator" => Role::Aggregator,
        Some(_) => return Err(NodeError::config("role", "must be \"agent\", \"supervisor\" or \"aggregator\"")),
    };
    let last = match config.get("last") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(NodeError::config("last", format!("must be a boolean, got {}", kind_of(other)))),
    };
    let task = config.get("task").filter(|v| !v.is_null()).cloned();
    let mut tools = match config.get("tools") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_TOOLS {
                return Err(NodeError::config("tools", format!("declares more than {MAX_TOOLS} tools")));
            }
            let mut tools = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let t = tool(item, i, schemas)?;
                if tools.iter().any(|earlier: &ToolDecl| earlier.name == t.name) {
                    return Err(NodeError::config(
                        &format!("tools[{i}].name"),
                        format!("`{}` is declared twice", t.name),
                    ));
                }
                tools.push(t);
            }
            tools
        }
        Some(other) => return Err(NodeError::config("tools", format!("must be an array, got {}", kind_of(other)))),
    };
    let agents = match (role, config.get("agents").filter(|v| !v.is_null())) {
        (Role::Supervisor, Some(Value::Array(items))) if !items.is_empty() => {
            let mut agents = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let sub = sub_agent(item, i)?;
                if agents.iter().any(|earlier: &SubAgent| earlier.name == sub.name) {
                    return Err(NodeError::config(
                        &format!("agents[{i}].name"),
                        format!("`{}` is listed twice", sub.name),
                    ));
                }
                tools.push(ToolDecl {
                    name: format!("{TRANSFER_PREFIX}{}", sub.name),
                    description: Some(format!("Delegate a task to the agent {}: {}", sub.name, sub.description)),
                    parameters: transfer_parameters(),
                    schema: schemas.compile(&transfer_parameters()).map_err(|e| NodeError::config("agents", e))?,
                    transfer: Some(sub.name.clone()),
                });
                agents.push(sub);
            }
            agents
        }
        (Role::Supervisor, _) => {
            return Err(NodeError::config(
                "agents",
                "a supervisor needs a non-empty array of {\"name\", \"description\"}",
            ));
        }
        (_, None) => Vec::new(),
        (_, Some(_)) => return Err(NodeError::config("agents", "only a supervisor (role \"supervisor\") has agents")),
    };
    Ok(Agent { call, instructions, input, tools, max_steps, max_tokens, on_max_steps, agent, role, agents, task, last })
}

/// The model fields, through fn-llm's parser: the same fields as an `llm` node's, with a
/// placeholder prompt (replaced by the transcript).
fn model_fields(config: &Map<String, Value>, declared: &SecretRefs) -> Result<Call, NodeError> {
    let mut llm = Map::new();
    for field in ["model", "temperature", "response_format", "timeout_seconds", "provider"] {
        if let Some(v) = config.get(field) {
            llm.insert(field.to_owned(), v.clone());
        }
    }
    llm.insert("prompt".into(), Value::String(String::new()));
    fn_llm::config::parse(&Value::Object(llm), declared)
}

/// The parameters of a supervisor's `transfer_to_<name>` tools.
pub(crate) fn transfer_parameters() -> Value {
    json!({"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]})
}

/// A function name as OpenAI accepts it: 1 to 64 of `a-z A-Z 0-9 _ -`.
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn tool(item: &Value, i: usize, schemas: &Schemas) -> Result<ToolDecl, NodeError> {
    let field = |f: &str| format!("tools[{i}].{f}");
    let Value::Object(t) = item else {
        return Err(NodeError::config(
            &format!("tools[{i}]"),
            format!("must be {{\"name\", \"description\", \"parameters\"}}, got {}", kind_of(item)),
        ));
    };
    let name = match t.get("name") {
        Some(Value::String(n)) if valid_tool_name(n) => n.clone(),
        Some(Value::String(_)) => {
            return Err(NodeError::config(&field("name"), "must be 1 to 64 letters, digits, `_` or `-`"));
        }
        _ => return Err(NodeError::config(&field("name"), "is required (a string)")),
    };
    if name.starts_with(TRANSFER_PREFIX) {
        return Err(NodeError::config(
            &field("name"),
            format!("`{TRANSFER_PREFIX}...` names are reserved for a supervisor's delegation tools"),
        ));
    }
    let description = match t.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(other) => {
            return Err(NodeError::config(&field("description"), format!("must be a string, got {}", kind_of(other))));
        }
    };
    let parameters = match t.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(p @ Value::Object(o)) => {
            if o.get("type").is_some_and(|ty| ty != "object") {
                return Err(NodeError::config(
                    &field("parameters"),
                    "must be a JSON Schema of an object (`\"type\": \"object\"`)",
                ));
            }
            p.clone()
        }
        Some(other) => {
            return Err(NodeError::config(
                &field("parameters"),
                format!("must be a JSON Schema object, got {}", kind_of(other)),
            ));
        }
    };
    let schema = schemas.compile(&parameters).map_err(|e| NodeError::config(&field("parameters"), e))?;
    Ok(ToolDecl { name, description, parameters, schema, transfer: None })
}

fn sub_agent(item: &Value, i: usize) -> Result<SubAgent, NodeError> {
    let field = |f: &str| format!("agents[{i}].{f}");
    let Value::Object(a) = item else {
        return Err(NodeError::config(
            &format!("agents[{i}]"),
            format!("must be {{\"name\", \"description\"}}, got {}", kind_of(item)),
        ));
    };
    let name = match a.get("name") {
        Some(Value::String(n)) if valid_tool_name(&format!("{TRANSFER_PREFIX}{n}")) => n.clone(),
        _ => {
            return Err(NodeError::config(
                &field("name"),
                format!(
                    "must be 1 to {} letters, digits, `_` or `-` (it names the tool {TRANSFER_PREFIX}<name>)",
                    64 - TRANSFER_PREFIX.len()
                ),
            ));
        }
    };
    let description = match a.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) => d.clone(),
        Some(other) => {
            return Err(NodeError::config(&field("description"), format!("must be a string, got {}", kind_of(other))));
        }
    };
    Ok(SubAgent { name, description })
}
