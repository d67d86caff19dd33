//! Checks of what each node says on its own: settings and triggers, ids and types, the `data`
//! fields of each type (required, typed, one-of pairs, values such as HTTP methods), templates
//! that must parse, retry and timeout values, and `parentId` (which loop a node belongs to).

use std::collections::HashSet;

use serde_json::Value;

use super::{Analysis, Ctx, MAX_NESTING, can_fail};
use crate::Node;
use crate::diagnostic::codes;
use crate::graph::{OnError, is_task_type};
use crate::template;

/// `data` keys any node may carry for the editor's sake: validation ignores them, and lowering leaves
/// them out of the config a function receives.
pub const UI_KEYS: &[&str] = &["label", "description", "notes", "icon", "color"];

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Str,
    Num,
    Int,
    Bool,
    Obj,
    Arr,
    /// A string, or an array of strings.
    StrOrArr,
    Any,
}

pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) required: bool,
    pub(super) kind: Kind,
}

pub(super) const fn req(name: &'static str, kind: Kind) -> Field {
    Field { name, required: true, kind }
}
pub(super) const fn opt(name: &'static str, kind: Kind) -> Field {
    Field { name, required: false, kind }
}

/// The `data` fields of each node type. "One of" pairs (`code` expression/source, `delay`
/// seconds/until, `vector_search` query/vector) are listed as optional and checked separately.
pub(super) fn fields(node_type: &str) -> Option<&'static [Field]> {
    use Kind::*;
    Some(match node_type {
        "start" => const { &[opt("input_schema", Obj)] },
        "end" => const { &[opt("output", Any)] },
        "condition" => const { &[req("expression", Str)] },
        "switch" => const { &[req("cases", Arr)] },
        "loop" => const { &[req("items", Str), opt("concurrency", Int)] },
        "parallel" | "join" => const { &[] },
        "delay" => const { &[opt("seconds", Num), opt("until", Str)] },
        "http" => {
            const {
                &[
                    req("method", Str),
                    req("url", Str),
                    opt("headers", Obj),
                    opt("query", Obj),
                    opt("body", Any),
                    opt("timeout_seconds", Num),
                    opt("fail_on_status", Bool),
                ]
            }
        }
        "code" => const { &[opt("expression", Str), opt("source", Str)] },
        "llm" => {
            const {
                &[
                    req("model", Str),
                    opt("prompt", Str),
                    opt("messages", Any),
                    opt("system", Str),
                    opt("temperature", Num),
                    opt("max_tokens", Int),
                    opt("response_format", Any),
                    opt("provider", Any),
                    opt("timeout_seconds", Num),
                ]
            }
        }
        "agent" => {
            const {
                &[
                    req("model", Str),
                    req("instructions", Str),
                    req("input", Any),
                    req("tools", Arr),
                    opt("max_steps", Int),
                    opt("max_tokens", Int),
                    opt("on_max_steps", Str),
                    opt("response_format", Any),
                    opt("temperature", Num),
                    opt("provider", Any),
                    opt("timeout_seconds", Num),
                ]
            }
        }
        "multi_agent" => {
            const {
                &[
                    req("agents", Arr),
                    req("strategy", Str),
                    req("task", Any),
                    opt("model", Str),
                    opt("max_tokens", Int),
                    opt("max_turns", Int),
                    opt("supervisor", Obj),
                    opt("aggregator", Obj),
                    opt("response_format", Any),
                    opt("temperature", Num),
                    opt("provider", Any),
                    opt("timeout_seconds", Num),
                ]
            }
        }
        "vector_search" => {
            const {
                &[
                    req("collection", Str),
                    opt("query", Str),
                    opt("vector", Arr),
                    req("top_k", Int),
                    opt("score_threshold", Num),
                    opt("filter", Any),
                    opt("embedding_model", Str),
                ]
            }
        }
        "vector_upsert" => {
            const {
                &[
                    req("collection", Str),
                    req("documents", Arr),
                    opt("chunk_size", Int),
                    opt("chunk_overlap", Int),
                    opt("embedding_model", Str),
                ]
            }
        }
        "database" => {
            const {
                &[
                    req("connection", Str),
                    req("query", Str),
                    opt("params", Any),
                    opt("read_only", Bool),
                    opt("max_rows", Int),
                    opt("timeout_seconds", Num),
                ]
            }
        }
        "email" => {
            const {
                &[
                    req("connection", Str),
                    req("from", Str),
                    req("to", StrOrArr),
                    opt("cc", StrOrArr),
                    opt("bcc", StrOrArr),
                    opt("reply_to", Str),
                    req("subject", Str),
                    opt("body", Str),
                    opt("html", Str),
                    opt("timeout_seconds", Num),
                ]
            }
        }
        "slack" => {
            const {
                &[
                    req("connection", Str),
                    opt("text", Str),
                    opt("channel", Str),
                    opt("blocks", Any),
                    opt("thread_ts", Str),
                    opt("timeout_seconds", Num),
                ]
            }
        }
        "approval" => const { &[req("message", Str), opt("timeout_seconds", Int)] },
        "workflow" => const { &[req("workflow_id", Str), opt("input", Any)] },
        _ => return None,
    })
}

/// Checks the fields of `data` against `spec`: required ones present, each of its kind; keys
/// neither in `spec` nor in `ignored` are warned about. `owner` names the object in messages
/// (`` `http` ``), `prefix` goes before field names (`data.`).
pub(super) fn check_fields(
    cx: &mut Ctx<'_>,
    id: &str,
    owner: &str,
    prefix: &str,
    spec: &[Field],
    data: &serde_json::Map<String, Value>,
    ignored: &[&str],
) {
    for field in spec {
        match data.get(field.name) {
            None | Some(Value::Null) if field.required => {
                cx.error(codes::MISSING_FIELD, Some(id), None, format!("{owner} needs `{prefix}{}`", field.name));
            }
            None | Some(Value::Null) => {}
            Some(v) if !kind_ok(field.kind, v) => {
                cx.error(
                    codes::INVALID_FIELD,
                    Some(id),
                    None,
                    format!("`{prefix}{}` must be {}", field.name, kind_name(field.kind)),
                );
            }
            Some(_) => {}
        }
    }
    for key in data.keys() {
        if !spec.iter().any(|f| f.name == key) && !ignored.contains(&key.as_str()) {
            cx.warn(codes::UNKNOWN_FIELD, Some(id), format!("{owner} has no field `{prefix}{key}`; it is ignored"));
        }
    }
}

/// An http node's (or http tool's) `method`, unless templated, is an HTTP method; `prefix` goes
/// before the field name in the message.
pub(super) fn check_http_method(cx: &mut Ctx<'_>, id: &str, prefix: &str, data: &serde_json::Map<String, Value>) {
    const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    if let Some(m) = data.get("method").and_then(Value::as_str)
        && !m.contains("{{")
        && !METHODS.contains(&m.to_ascii_uppercase().as_str())
    {
        cx.error(
            codes::INVALID_FIELD,
            Some(id),
            None,
            format!("`{prefix}method` {m:?} is not one of {}", METHODS.join(", ")),
        );
    }
}

/// Whether `v` is a string that is exactly one `{{ path }}` template (allowed in place of any
/// typed value: its type is only known at run time).
pub(super) fn is_single_template(v: &Value) -> bool {
    match v {
        Value::String(s) => {
            matches!(template::parse_string(s), Ok(Some(parts)) if parts.len() == 1 && matches!(parts[0], template::Part::Path(_)))
        }
        _ => false,
    }
}

pub(super) fn kind_ok(kind: Kind, v: &Value) -> bool {
    if kind != Kind::Str && kind != Kind::StrOrArr && kind != Kind::Any && is_single_template(v) {
        return true;
    }
    match kind {
        Kind::Str => v.is_string(),
        Kind::Num => v.as_f64().is_some_and(|n| n >= 0.0),
        Kind::Int => v.as_u64().is_some(),
        Kind::Bool => v.is_boolean(),
        Kind::Obj => v.is_object(),
        Kind::Arr => v.is_array(),
        Kind::StrOrArr => v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Kind::Any => true,
    }
}

pub(super) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "a string",
        Kind::Num => "a non-negative number",
        Kind::Int => "a non-negative integer",
        Kind::Bool => "a boolean",
        Kind::Obj => "an object",
        Kind::Arr => "an array",
        Kind::StrOrArr => "a string or an array of strings",
        Kind::Any => "a value",
    }
}

/// Data fields holding JavaScript rather than templates.
pub fn is_js_field(node_type: &str, key: &str) -> bool {
    matches!((node_type, key), ("code", "expression" | "source") | ("condition", "expression") | ("switch", "cases"))
}

/// The switch case names of a node, in order (empty when `cases` is malformed).
pub fn switch_cases(node: &Node) -> Vec<(String, String)> {
    node.data
        .get("cases")
        .and_then(Value::as_array)
        .map(|cases| {
            cases
                .iter()
                .filter_map(|c| Some((c.get("name")?.as_str()?.to_owned(), c.get("expression")?.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Ids (valid, unique), types and `data` of every node; finds the `start` node.
pub(super) fn check_nodes(cx: &mut Ctx<'_>, a: &mut Analysis) {
    let graph = cx.graph;
    let mut starts = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = node.id.as_str();
        if !template::is_node_id(id) {
            cx.error(
                codes::INVALID_NODE_ID,
                Some(id),
                None,
                format!(
                    "node id {id:?} must be 1 to {} ASCII letters, digits, `_` and `-` \
                     (it names the node in templates, JavaScript and state names)",
                    template::MAX_NODE_ID
                ),
            );
        }
        if a.index.contains_key(id) {
            cx.error(codes::DUPLICATE_NODE_ID, Some(id), None, format!("two nodes have the id `{id}`"));
            continue;
        }
        a.index.insert(id.to_owned(), i);
        if node.node_type == "start" {
            starts.push(i);
        }
        check_node(cx, node);
    }
    match starts.len() {
        0 => cx.error(codes::MISSING_START, None, None, "the graph has no `start` node; add exactly one"),
        1 => a.start = Some(starts[0]),
        _ => {
            for &s in &starts[1..] {
                cx.error(
                    codes::MULTIPLE_STARTS,
                    Some(&graph.nodes[s].id),
                    None,
                    format!("a graph has exactly one `start` node; `{}` is the first", graph.nodes[starts[0]].id),
                );
            }
        }
    }
}

/// Loop membership from `parentId`, and nesting cycles (a loop inside its own body), which make
/// the scope tree invalid.
pub(super) fn check_parents(cx: &mut Ctx<'_>, a: &mut Analysis) {
    let graph = cx.graph;
    let n = graph.nodes.len();
    for (i, node) in graph.nodes.iter().enumerate() {
        if a.index.get(&node.id) != Some(&i) {
            continue;
        }
        let Some(parent) = node.parent_id.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        let id = node.id.as_str();
        match a.index.get(parent) {
            Some(&p) if graph.nodes[p].node_type == "loop" && p != i => {
                if matches!(node.node_type.as_str(), "start" | "end") {
                    cx.error(
                        codes::INVALID_PARENT,
                        Some(id),
                        None,
                        format!("a `{}` node cannot be inside a loop body", node.node_type),
                    );
                } else {
                    a.scope[i] = Some(p);
                }
            }
            Some(_) => cx.error(
                codes::INVALID_PARENT,
                Some(id),
                None,
                format!("`parentId` names `{parent}`, which is not a loop"),
            ),
            None => cx.error(
                codes::INVALID_PARENT,
                Some(id),
                None,
                format!("`parentId` names `{parent}`, which does not exist"),
            ),
        }
    }
    // Nesting cycles (a loop inside its own body) make the scope tree invalid.
    for i in 0..n {
        let mut cur = a.scope[i];
        let mut steps = 0;
        while let Some(p) = cur {
            steps += 1;
            if p == i {
                cx.error(
                    codes::INVALID_PARENT,
                    Some(&graph.nodes[i].id),
                    None,
                    "loops are nested inside each other in a circle",
                );
                a.scope[i] = None;
                break;
            }
            if steps > MAX_NESTING {
                cx.error(
                    codes::TOO_LARGE,
                    Some(&graph.nodes[i].id),
                    None,
                    format!("loops nest more than {MAX_NESTING} deep here; split the graph with `workflow` nodes"),
                );
                a.scope[i] = None;
                break;
            }
            cur = a.scope[p];
        }
    }
}

pub(super) fn check_settings(cx: &mut Ctx<'_>) {
    if cx.graph.settings.timeout_seconds == Some(0) {
        cx.error(codes::INVALID_SETTINGS, None, None, "`settings.timeout_seconds` must be at least 1");
    }
    for (i, trigger) in cx.graph.triggers.iter().enumerate() {
        let problem = match trigger.trigger_type.as_str() {
            "webhook" => None,
            "schedule" if trigger.cron.as_deref().is_none_or(|c| c.split_whitespace().count() < 5) => {
                Some("a `schedule` trigger needs `cron` (five or six fields)".to_owned())
            }
            "schedule" => None,
            "queue" if trigger.event.as_deref().is_none_or(str::is_empty) => {
                Some("a `queue` trigger needs `event`".to_owned())
            }
            "queue" => None,
            other => Some(format!("unknown trigger type {other:?} (webhook, schedule or queue)")),
        };
        if let Some(problem) = problem {
            cx.error(codes::INVALID_TRIGGER, None, None, format!("triggers[{i}]: {problem}"));
        }
    }
}

pub(super) fn check_node(cx: &mut Ctx<'_>, node: &Node) {
    let id = node.id.as_str();
    let t = node.node_type.as_str();
    let Some(spec) = fields(t) else {
        cx.error(
            codes::UNKNOWN_NODE_TYPE,
            Some(id),
            None,
            format!("unknown node type {t:?}; known types: {}", crate::NODE_TYPES.join(", ")),
        );
        return;
    };
    let empty = serde_json::Map::new();
    let data = match &node.data {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => {
            cx.error(codes::INVALID_FIELD, Some(id), None, "`data` must be an object");
            return;
        }
    };
    check_fields(cx, id, &format!("`{t}`"), "data.", spec, data, UI_KEYS);
    let present = |k: &str| data.get(k).is_some_and(|v| !v.is_null());
    let one_of = |cx: &mut Ctx<'_>, a: &str, b: &str| match (present(a), present(b)) {
        (true, true) => {
            cx.error(codes::INVALID_FIELD, Some(id), None, format!("`{t}` takes `data.{a}` or `data.{b}`, not both"))
        }
        (false, false) => {
            cx.error(codes::MISSING_FIELD, Some(id), None, format!("`{t}` needs `data.{a}` or `data.{b}`"))
        }
        _ => {}
    };
    match t {
        "code" => one_of(cx, "expression", "source"),
        "delay" => {
            one_of(cx, "seconds", "until");
            if let Some(u) = data.get("until").and_then(Value::as_str)
                && !u.contains("{{")
                && !looks_like_timestamp(u)
            {
                cx.error(
                    codes::INVALID_FIELD,
                    Some(id),
                    None,
                    format!("`data.until` {u:?} is not an RFC 3339 timestamp like 2026-01-31T09:00:00Z"),
                );
            }
        }
        "vector_search" => one_of(cx, "query", "vector"),
        "llm" => one_of(cx, "prompt", "messages"),
        "email" if !present("body") && !present("html") => {
            cx.error(codes::MISSING_FIELD, Some(id), None, "`email` needs `data.body` (text) or `data.html`, or both")
        }
        "slack" if !present("text") && !present("blocks") => {
            cx.error(codes::MISSING_FIELD, Some(id), None, "`slack` needs `data.text` or `data.blocks`")
        }
        "loop" => {
            if let Some(items) = data.get("items").filter(|v| v.is_string())
                && !is_single_template(items)
            {
                cx.error(
                    codes::INVALID_FIELD,
                    Some(id),
                    None,
                    "`data.items` must be one template naming an array, e.g. \"{{ input.orders }}\"",
                );
            }
        }
        "http" => check_http_method(cx, id, "data.", data),
        "agent" | "multi_agent" => super::agents::check(cx, node, data),
        "switch" => check_switch_cases(cx, node),
        _ => {}
    }
    // A connection names one of the tenant's secrets, literally: data flowing through an
    // execution must not choose which secret a node connects with.
    if let Some(c) = data.get("connection").filter(|_| crate::uses_connection(t))
        && !c.as_str().is_some_and(node_contract::valid_secret_name)
    {
        cx.error(
            codes::INVALID_FIELD,
            Some(id),
            None,
            "`data.connection` must be the name of a secret (letters, digits and `_`), written as it is: \
             not a template, so that no input can choose which secret the node connects with",
        );
    }
    // Templates must parse wherever they appear.
    for (key, value) in data {
        if is_js_field(t, key) {
            continue;
        }
        let mut parse_failed = false;
        template::visit_paths(value, &mut |p| {
            if let Err(problem) = p {
                parse_failed = true;
                cx.error(codes::INVALID_TEMPLATE, Some(id), None, format!("`data.{key}`: {problem}"));
            }
        });
        // An agent's tools are compiled one config field at a time (in lowering).
        let per_tool = matches!((t, key.as_str()), ("agent", "tools") | ("multi_agent", "agents"));
        if !parse_failed
            && !per_tool
            && let Err(problem) = template::compile_value(value, &|_| Ok(String::from("$")))
        {
            cx.error(codes::INVALID_TEMPLATE, Some(id), None, format!("`data.{key}`: {problem}"));
        }
    }
    // Retry, timeout and on_error only make sense on nodes that can fail.
    if !can_fail(t) && (node.retry.is_some() || node.on_error.is_some()) {
        cx.error(
            codes::INVALID_ERROR_HANDLING,
            Some(id),
            None,
            format!("a `{t}` node cannot fail, so it takes no `retry` or `on_error`"),
        );
    }
    if node.on_error == Some(OnError::Continue) && t == "parallel" {
        cx.error(
            codes::INVALID_ERROR_HANDLING,
            Some(id),
            None,
            "a `parallel` cannot `continue` past its join on failure; use an `error` edge",
        );
    }
    if node.timeout_seconds.is_some() && !is_task_type(t) {
        cx.error(codes::INVALID_ERROR_HANDLING, Some(id), None, format!("a `{t}` node takes no `timeout_seconds`"));
    }
    if node.timeout_seconds == Some(0) {
        cx.error(codes::INVALID_FIELD, Some(id), None, "`timeout_seconds` must be at least 1");
    }
    if let Some(r) = &node.retry {
        if r.max_attempts == 0 || r.max_attempts > 100 {
            cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                "`retry.max_attempts` counts the first attempt too: 1 to 100",
            );
        }
        if r.interval_seconds == 0 {
            cx.error(codes::INVALID_FIELD, Some(id), None, "`retry.interval_seconds` must be at least 1");
        }
        if !(1.0..=1000.0).contains(&r.backoff_rate) {
            cx.error(codes::INVALID_FIELD, Some(id), None, "`retry.backoff_rate` must be between 1 and 1000");
        }
        if r.max_delay_seconds == Some(0) {
            cx.error(codes::INVALID_FIELD, Some(id), None, "`retry.max_delay_seconds` must be at least 1");
        }
    }
}

pub(super) fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s.get(19..).is_some_and(|tz| tz.contains(['+', '-'])))
}

pub(super) fn check_switch_cases(cx: &mut Ctx<'_>, node: &Node) {
    let id = node.id.as_str();
    let Some(cases) = node.data.get("cases").and_then(Value::as_array) else {
        return;
    };
    if cases.is_empty() {
        cx.error(codes::INVALID_FIELD, Some(id), None, "`data.cases` needs at least one case");
    }
    let mut seen = HashSet::new();
    for (i, case) in cases.iter().enumerate() {
        let name = case.get("name").and_then(Value::as_str);
        let expr = case.get("expression").and_then(Value::as_str);
        match (name, expr) {
            (Some(name), Some(_)) => {
                if name.is_empty() || name == "default" || name == "error" {
                    cx.error(
                        codes::INVALID_FIELD,
                        Some(id),
                        None,
                        format!("case {i}: the name {name:?} is reserved or empty"),
                    );
                } else if !seen.insert(name) {
                    cx.error(codes::INVALID_FIELD, Some(id), None, format!("two cases are named {name:?}"));
                }
            }
            _ => cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!("`data.cases[{i}]` needs a string `name` and `expression`"),
            ),
        }
    }
}
