//! The contract between the compiler's Task states and the node functions.
//!
//! A Task state compiled from node `fetch` of type `http` looks like this (JSONPath):
//!
//! ```json
//! { "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
//!   "Parameters": { "FunctionName": "${HttpFunctionArn}",
//!                   "Payload": { "node": {"id": "fetch", "type": "http"},
//!                                "config": { "method": "GET", "url.$": "States.Format('https://x/{}', $.input.id)" },
//!                                "execution": {"id.$": "$$.Execution.Id"},
//!                                "attempt.$": "$$.State.RetryCount" } } }
//! ```
//!
//! so every function receives a [`NodeEvent`], returns its output as plain JSON (which becomes
//! `nodes.<id>` downstream), and fails with a [`NodeError`] whose [`NodeError::name`] is one of the
//! stable names in [`error_names`]; the Lambda runtime reports that name as `errorType`, which is
//! what Step Functions' `Retry`/`Catch` `ErrorEquals` match.
//!
//! This crate is pure (no IO), so the compiler can depend on it too.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event every node function receives: the Task's `Payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEvent {
    pub node: NodeRef,
    /// The node's `data`, with every template resolved by the state machine except
    /// `{{ secrets.NAME }}`, which stays verbatim for the function to resolve at run time (see
    /// [`resolve_declared_secrets`]) so secret values never enter execution state.
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub execution: ExecutionRef,
    /// 0 on the first attempt, then 1, 2, ... (`$$.State.RetryCount`).
    #[serde(default)]
    pub attempt: u32,
    /// Values a JavaScript body can read, for `code` nodes and for conditions that did not lower
    /// to native Choice rules: `{"input": ..., "nodes": {"<id>": output, ...}, "item"?: ..., "index"?: n,
    /// "start"?: "<start node id>"}`. The start node has no entry in the state's `nodes` (its
    /// output *is* the input), so `start` names it and the function binds `nodes.<start>` to `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Value>,
    /// For `approval` nodes (`lambda:invoke.waitForTaskToken`): `$$.Task.Token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    /// Where the graph itself put `{{ secrets.NAME }}` templates: JSON pointer into `config` →
    /// the names written there ([`secret_refs`] of the node's `data`, computed by the compiler).
    /// Functions resolve secrets only there ([`resolve_declared_secrets`]): a template that
    /// arrives through data (an input, an HTTP body) is never resolved, so untrusted data
    /// cannot make a node send a secret somewhere the graph did not.
    #[serde(default, skip_serializing_if = "SecretRefs::is_empty")]
    pub secrets: SecretRefs,
    /// For an agent's turn (the `agent` function): the working state of the agent's loop, as
    /// the previous turn returned it (or as the loop's first state seeded it), with the results
    /// of the tool calls it asked for. See the `fn-agent` crate for its shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
}

/// JSON pointer (into a node's config) → the secret names templated there.
pub type SecretRefs = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// The `{{ secrets.NAME }}` templates in `value`, by JSON pointer of the string holding them
/// (iterative: no recursion on input-sized data).
pub fn secret_refs(value: &Value) -> SecretRefs {
    let mut refs = SecretRefs::new();
    let mut stack: Vec<(String, &Value)> = vec![(String::new(), value)];
    while let Some((pointer, v)) = stack.pop() {
        match v {
            Value::String(s) => {
                let names: std::collections::BTreeSet<String> =
                    secret_templates(s).into_iter().map(|(_, _, name)| name.to_owned()).collect();
                if !names.is_empty() {
                    refs.insert(pointer, names);
                }
            }
            Value::Array(items) => {
                stack.extend(items.iter().enumerate().map(|(i, item)| (format!("{pointer}/{i}"), item)));
            }
            Value::Object(map) => stack.extend(
                map.iter().map(|(k, item)| (format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")), item)),
            ),
            _ => {}
        }
    }
    refs
}

/// Replaces, in `config`, the templates `refs` declares, and only those: at each pointer, the
/// declared names' `{{ secrets.NAME }}` with `lookup(NAME)`. Any other `{{ secrets.X }}` text
/// (one that data carried in) stays as it is.
pub fn resolve_declared_secrets(
    config: &mut Value,
    refs: &SecretRefs,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), NodeError> {
    for (pointer, names) in refs {
        let Some(Value::String(s)) = config.pointer_mut(pointer) else { continue };
        let templates: Vec<_> = secret_templates(s).into_iter().filter(|(_, _, n)| names.contains(*n)).collect();
        if templates.is_empty() {
            continue;
        }
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for (start, end, name) in templates {
            let Some(v) = lookup(name) else {
                return Err(NodeError::new(error_names::SECRET_NOT_FOUND, format!("secret `{name}` is not defined")));
            };
            out.push_str(&s[last..start]);
            out.push_str(&v);
            last = end;
        }
        out.push_str(&s[last..]);
        *s = out;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRef {
    pub id: String,
    #[serde(rename = "type")]
    pub node_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRef {
    /// The execution ARN (`$$.Execution.Id`).
    #[serde(default)]
    pub id: String,
}

/// A node function's failure: a stable name (reported as the Lambda `errorType`) and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{name}: {message}")]
pub struct NodeError {
    pub name: String,
    pub message: String,
}

impl NodeError {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Self { name: name.to_owned(), message: message.into() }
    }

    /// `Config.Invalid` naming the offending field, e.g. `config.url: must be an absolute URL`.
    pub fn config(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(error_names::CONFIG_INVALID, format!("config.{field}: {problem}"))
    }
}

/// The Redis stream a model node appends its tokens to as they arrive, for the execution named
/// `execution_name` (the last segment of its ARN: Weft's execution id). Entries have the fields
/// `node_id` and `text`; the api's SSE endpoint forwards them as `node_token` events.
pub fn token_stream_key(execution_name: &str) -> String {
    format!("weft:tokens:{execution_name}")
}

/// Whether `name` can name a secret: 1 to 128 ASCII letters, digits and `_`, not starting with a
/// digit (what `{{ secrets.NAME }}` and a node's `connection` may name).
pub fn valid_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 128
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The stable error names node functions fail with. The compiler's `Retry`/`Catch` match these
/// exactly; renaming one is a breaking change for deployed state machines.
pub mod error_names {
    /// The node's configuration is invalid (never retried).
    pub const CONFIG_INVALID: &str = "Config.Invalid";
    /// A `{{ secrets.NAME }}` template names a secret that the execution's tenant does not have,
    /// or the execution has no tenant (it was not started through Weft's api). Never retried.
    pub const SECRET_NOT_FOUND: &str = "Secret.NotFound";
    /// The secret store could not be read (Postgres unreachable) or a value could not be
    /// decrypted. Retried by a node's `retry`; not in [`TRANSIENT`].
    pub const SECRET_UNAVAILABLE: &str = "Secret.Unavailable";
    pub const HTTP_TIMEOUT: &str = "Http.Timeout";
    /// Connection refused/reset, DNS failure, TLS failure.
    pub const HTTP_CONNECT: &str = "Http.Connect";
    pub const HTTP_STATUS_4XX: &str = "Http.Status4xx";
    pub const HTTP_STATUS_5XX: &str = "Http.Status5xx";
    pub const HTTP_TOO_MANY_REDIRECTS: &str = "Http.TooManyRedirects";
    pub const HTTP_BODY_TOO_LARGE: &str = "Http.BodyTooLarge";
    /// The SSRF guard refused the destination address.
    pub const HTTP_FORBIDDEN_ADDRESS: &str = "Http.ForbiddenAddress";
    /// JavaScript threw, or did not parse: message and line.
    pub const CODE_ERROR: &str = "Code.Error";
    pub const CODE_TIMEOUT: &str = "Code.Timeout";
    pub const CODE_MEMORY: &str = "Code.MemoryLimit";
    /// The result of the JavaScript is not representable as JSON.
    pub const CODE_RESULT: &str = "Code.InvalidResult";
    /// The response body is not what `response_format` asked for (e.g. `json` but it does not parse).
    pub const HTTP_INVALID_RESPONSE: &str = "Http.InvalidResponse";
    /// The database could not be reached (refused, DNS, TLS, authentication). Retried by default.
    pub const DATABASE_CONNECT: &str = "Database.Connect";
    /// Postgres refused the statement; the message carries its SQLSTATE. Never retried by default.
    pub const DATABASE_QUERY: &str = "Database.Query";
    /// The statement ran past `timeout_seconds` (Postgres' `statement_timeout`) or the connection
    /// did not open in time. Retried by default.
    pub const DATABASE_TIMEOUT: &str = "Database.Timeout";
    /// The query returned more than `max_rows` rows (read no further than one past the limit).
    pub const DATABASE_TOO_MANY_ROWS: &str = "Database.TooManyRows";
    /// The database host is a loopback, private, link-local or metadata address not allow-listed.
    pub const DATABASE_FORBIDDEN_ADDRESS: &str = "Database.ForbiddenAddress";
    /// The SMTP server could not be reached (refused, DNS, TLS, timeout). Retried by default.
    pub const EMAIL_CONNECT: &str = "Email.Connect";
    /// The SMTP server refused the credentials.
    pub const EMAIL_AUTH: &str = "Email.Auth";
    /// The SMTP server rejected the message or a recipient; the message carries its reply code.
    pub const EMAIL_REJECTED: &str = "Email.Rejected";
    /// The SMTP host is a loopback, private, link-local or metadata address not allow-listed.
    pub const EMAIL_FORBIDDEN_ADDRESS: &str = "Email.ForbiddenAddress";
    /// Slack answered `ok: false`; the message carries Slack's error string (`channel_not_found`).
    pub const SLACK_API: &str = "Slack.Api";
    /// Slack answered 429. The function waits out `Retry-After` (capped) before failing, so the
    /// default retry that follows respects it. Retried by default.
    pub const SLACK_RATE_LIMITED: &str = "Slack.RateLimited";
    /// Slack could not be reached, timed out, or answered 5xx. Retried by default.
    pub const SLACK_CONNECT: &str = "Slack.Connect";
    /// The webhook URL's host is a loopback, private, link-local or metadata address not allow-listed.
    pub const SLACK_FORBIDDEN_ADDRESS: &str = "Slack.ForbiddenAddress";
    /// The model provider answered 429; the function waits out a short `Retry-After` first.
    pub const LLM_RATE_LIMITED: &str = "Llm.RateLimited";
    /// The model provider failed (5xx, or an error inside a 200).
    pub const LLM_PROVIDER: &str = "Llm.Provider";
    /// An agent asked for tools after `max_steps` model calls (its loop is bounded).
    pub const AGENT_MAX_STEPS: &str = "Agent.MaxSteps";
    /// An agent (or the agents of a `multi_agent` node together) used more than `max_tokens`.
    pub const AGENT_BUDGET_EXCEEDED: &str = "Agent.BudgetExceeded";
    /// The agent's transcript would not fit in the execution state, even with old tool results
    /// shortened.
    pub const AGENT_TRANSCRIPT_TOO_LARGE: &str = "Agent.TranscriptTooLarge";
    /// The model called a tool the node does not declare (answered to the model, never run).
    pub const AGENT_UNKNOWN_TOOL: &str = "Agent.UnknownTool";
    /// The model's arguments for a tool are not a JSON object valid under its `parameters`.
    pub const AGENT_INVALID_ARGUMENTS: &str = "Agent.InvalidArguments";
    /// Errors of `http` nodes that are safe to retry by default (transient).
    pub const TRANSIENT: &[&str] = &[HTTP_TIMEOUT, HTTP_CONNECT, HTTP_STATUS_5XX];

    /// The errors a node of `node_type` retries by default (no `retry` on the node): transient
    /// failures that a later attempt can fix.
    pub fn transient(node_type: &str) -> &'static [&'static str] {
        match node_type {
            "database" => &[DATABASE_CONNECT, DATABASE_TIMEOUT],
            "email" => &[EMAIL_CONNECT],
            "slack" => &[SLACK_CONNECT, SLACK_RATE_LIMITED],
            "llm" | "agent" | "multi_agent" => &[LLM_RATE_LIMITED, LLM_PROVIDER],
            _ => TRANSIENT,
        }
    }
}

/// A node function's handler: what each Lambda's `main.rs` runs (through `lambda-glue`) and what
/// the local engine calls in-process, so both execute exactly the same logic.
pub trait NodeFunction: Send + Sync + 'static {
    fn handle(&self, event: NodeEvent) -> impl Future<Output = Result<Value, NodeError>> + Send;
}

impl NodeEvent {
    /// Parses a raw Lambda payload; a payload that is not a [`NodeEvent`] is `Config.Invalid`.
    pub fn from_value(payload: Value) -> Result<Self, NodeError> {
        serde_json::from_value(payload)
            .map_err(|e| NodeError::new(error_names::CONFIG_INVALID, format!("the event is not a node event: {e}")))
    }

    /// The config object; a non-object config is `Config.Invalid`.
    pub fn config_object(&self) -> Result<&serde_json::Map<String, Value>, NodeError> {
        match &self.config {
            Value::Object(map) => Ok(map),
            Value::Null => Err(NodeError::new(error_names::CONFIG_INVALID, "config: missing (expected an object)")),
            other => Err(NodeError::new(
                error_names::CONFIG_INVALID,
                format!("config: expected an object, got {}", kind_of(other)),
            )),
        }
    }
}

/// The JSON kind of a value, for error messages: `null`, `boolean`, `number`, `string`, `array`, `object`.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The node types that run as a node function (a Task), with the function each one invokes.
///
/// `logical_id` is the SAM resource name; the compiler's default function map refers to it as
/// `${<LogicalId>Arn}`, and the local in-process invoker accepts either form.
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("http", "HttpFunction"),
    ("code", "CodeFunction"),
    ("llm", "LlmFunction"),
    ("agent", "AgentFunction"),
    ("multi_agent", "MultiAgentFunction"),
    ("vector_search", "VectorSearchFunction"),
    ("vector_upsert", "VectorUpsertFunction"),
    ("database", "DatabaseFunction"),
    ("email", "EmailFunction"),
    ("slack", "SlackFunction"),
    ("approval", "ApprovalFunction"),
];

/// The SAM logical id of the function for `node_type`, if that type runs as a function.
pub fn logical_id(node_type: &str) -> Option<&'static str> {
    FUNCTIONS.iter().find(|(t, _)| *t == node_type).map(|(_, id)| *id)
}

/// The default `FunctionName` the compiler emits for `node_type`: `${HttpFunctionArn}`.
pub fn default_function_name(node_type: &str) -> Option<String> {
    logical_id(node_type).map(|id| format!("${{{id}Arn}}"))
}

/// The node type a `FunctionName` refers to: accepts `${HttpFunctionArn}`, `HttpFunction`, a
/// deployed name that contains the logical id (SAM names functions `<stack>-HttpFunction-<suffix>`),
/// or a name ending in `-http`; the longest matching logical id wins (`MultiAgentFunction` over
/// `AgentFunction`).
pub fn node_type_of_function(function_name: &str) -> Option<&'static str> {
    let name = function_name.trim();
    let name = name.strip_prefix("${").and_then(|n| n.strip_suffix("Arn}")).unwrap_or(name);
    let last = name.rsplit(':').next().unwrap_or(name);
    FUNCTIONS
        .iter()
        .filter(|(t, id)| last.contains(id) || last.ends_with(&format!("-{t}")))
        .max_by_key(|(_, id)| id.len())
        .map(|(t, _)| *t)
}

/// The `{{ secrets.NAME }}` templates of one string, in order: `(start, end, name)` byte ranges
/// of each whole template. Only `secrets.` templates are returned; others stay as they are.
fn secret_templates(s: &str) -> Vec<(usize, usize, &str)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(start) = s[from..].find("{{").map(|i| from + i) {
        let Some(len) = s[start..].find("}}") else {
            break;
        };
        let end = start + len + 2;
        if let Some(name) = s[start + 2..start + len].trim().strip_prefix("secrets.") {
            found.push((start, end, name));
        }
        from = end;
    }
    found
}

/// The names of the secrets `config` refers to with `{{ secrets.NAME }}` (in string values, at
/// any depth). What a function must resolve before it runs; empty for most nodes.
pub fn secret_names(config: &Value) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut stack = vec![config];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.contains("{{") => {
                names.extend(secret_templates(s).into_iter().map(|(_, _, n)| n.to_owned()));
            }
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn function_names_round_trip() {
        assert_eq!(default_function_name("http").as_deref(), Some("${HttpFunctionArn}"));
        assert_eq!(node_type_of_function("${HttpFunctionArn}"), Some("http"));
        assert_eq!(node_type_of_function("arn:aws:lambda:us-east-1:1:function:weft-CodeFunction-AB12"), Some("code"));
        assert_eq!(node_type_of_function("weft-MultiAgentFunction-X"), Some("multi_agent"));
        assert_eq!(node_type_of_function("arn:aws:lambda:us-east-1:1:function:weft-code"), Some("code"));
        assert_eq!(node_type_of_function("HttpFunction"), Some("http"));
        assert_eq!(node_type_of_function("nothing"), None);
    }

    #[test]
    fn secrets_resolve_and_missing_ones_fail_by_name() {
        let mut cfg =
            json!({"h": {"Authorization": "Bearer {{ secrets.TOKEN }}"}, "x": ["{{secrets.TOKEN}}", "{{ input.a }}"]});
        let refs = secret_refs(&cfg);
        resolve_declared_secrets(&mut cfg, &refs, &|n| (n == "TOKEN").then(|| "t0k".to_owned())).unwrap();
        assert_eq!(cfg, json!({"h": {"Authorization": "Bearer t0k"}, "x": ["t0k", "{{ input.a }}"]}));
        let mut nope = json!("{{ secrets.NOPE }}");
        let refs = secret_refs(&nope);
        let err = resolve_declared_secrets(&mut nope, &refs, &|_| None).unwrap_err();
        assert_eq!(err.name, "Secret.NotFound");
        assert!(err.message.contains("NOPE"));
        // Unclosed and non-secret templates stay as they are.
        let mut cfg = json!(["{{ secrets.A }}{{ nodes.x }}{{ secrets.B", "a{{secrets.A}}b{{ secrets.A }}"]);
        let refs = secret_refs(&cfg);
        resolve_declared_secrets(&mut cfg, &refs, &|n| Some(format!("<{n}>"))).unwrap();
        assert_eq!(cfg, json!(["<A>{{ nodes.x }}{{ secrets.B", "a<A>b<A>"]));
    }

    #[test]
    fn secret_names_lists_every_reference_once() {
        let cfg = json!({"url": "https://x/{{ secrets.PATH }}?{{ input.q }}", "headers": {"a": "{{secrets.TOKEN}} {{ secrets.PATH }}"},
                         "body": [{"deep": ["{{ secrets.BODY }}"]}], "n": 1});
        let names: Vec<String> = secret_names(&cfg).into_iter().collect();
        assert_eq!(names, ["BODY", "PATH", "TOKEN"]);
        assert!(secret_names(&json!({"url": "{{ input.url }}"})).is_empty());
    }

    #[test]
    fn deep_configs_do_not_overflow_the_stack() {
        let mut deep = json!("{{ secrets.X }}");
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(secret_names(&deep).len(), 1);
        // Dropping a deeply nested Value recurses in serde_json itself; leak it in this test.
        std::mem::forget(deep);
    }
}
