//! Checks of `agent` and `multi_agent` nodes beyond their own fields: each declared tool (name,
//! type, the config of that type), each agent of a `multi_agent` node, and the bounds of their
//! loops.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::Ctx;
use super::fields::{check_fields, check_http_method, fields, is_single_template};
use crate::Node;
use crate::agent::{
    self, DECLARATION_KEYS, MAX_AGENTS, MAX_STEPS, MAX_TOOLS, RESERVED_AGENT_NAMES, STRATEGIES, TOOL_TYPES,
};
use crate::diagnostic::codes;

pub(super) fn check(cx: &mut Ctx<'_>, node: &Node, data: &Map<String, Value>) {
    let id = node.id.as_str();
    match node.node_type.as_str() {
        "agent" => {
            check_tools(cx, id, "data.tools", data.get("tools"));
            check_steps(cx, id, "data.max_steps", data.get("max_steps"));
            if let Some(v) = data.get("on_max_steps").and_then(Value::as_str)
                && !matches!(v, "fail" | "answer")
            {
                cx.error(
                    codes::INVALID_FIELD,
                    Some(id),
                    None,
                    format!("`data.on_max_steps` {v:?} is not \"fail\" or \"answer\""),
                );
            }
        }
        "multi_agent" => check_multi(cx, id, data),
        _ => {}
    }
}

fn check_steps(cx: &mut Ctx<'_>, id: &str, field: &str, v: Option<&Value>) {
    if let Some(n) = v.and_then(Value::as_u64)
        && !(1..=MAX_STEPS).contains(&n)
    {
        cx.error(codes::INVALID_FIELD, Some(id), None, format!("`{field}` must be from 1 to {MAX_STEPS}, got {n}"));
    }
}

fn check_multi(cx: &mut Ctx<'_>, id: &str, data: &Map<String, Value>) {
    let strategy = data.get("strategy").and_then(Value::as_str);
    if let Some(s) = strategy
        && !STRATEGIES.contains(&s)
    {
        cx.error(
            codes::INVALID_FIELD,
            Some(id),
            None,
            format!("`data.strategy` {s:?} is not parallel, sequential or supervisor"),
        );
    }
    check_steps(cx, id, "data.max_turns", data.get("max_turns"));
    let node_model = data.get("model").is_some_and(Value::is_string);
    for role in ["supervisor", "aggregator"] {
        if let Some(Value::Object(r)) = data.get(role) {
            for key in ["model", "instructions"] {
                if r.get(key).is_some_and(|v| !v.is_string()) {
                    cx.error(codes::INVALID_FIELD, Some(id), None, format!("`data.{role}.{key}` must be a string"));
                }
            }
        }
    }
    let Some(items) = data.get("agents").and_then(Value::as_array) else { return };
    if items.is_empty() || items.len() > MAX_AGENTS {
        cx.error(
            codes::INVALID_FIELD,
            Some(id),
            None,
            format!("`data.agents` must list 1 to {MAX_AGENTS} agents, got {}", items.len()),
        );
    }
    if strategy == Some("parallel") && items.len() < 2 {
        cx.error(codes::INVALID_FIELD, Some(id), None, "a `parallel` multi_agent needs at least two agents");
    }
    let mut names = HashSet::new();
    for (i, a) in items.iter().enumerate() {
        let at = format!("data.agents[{i}]");
        let Some(a) = a.as_object() else {
            cx.error(codes::INVALID_FIELD, Some(id), None, format!("`{at}` must be an object"));
            continue;
        };
        match a.get("name").and_then(Value::as_str) {
            None => cx.error(codes::MISSING_FIELD, Some(id), None, format!("`{at}` needs `name`")),
            Some(n) if !agent::is_agent_name(n) => cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!("`{at}.name` {n:?} must be 1 to 32 letters, digits and `_`, not starting with a digit"),
            ),
            Some(n) if RESERVED_AGENT_NAMES.contains(&n) => cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!("`{at}.name` {n:?} is reserved (reserved: {})", RESERVED_AGENT_NAMES.join(", ")),
            ),
            Some(n) if !names.insert(n) => {
                cx.error(codes::INVALID_FIELD, Some(id), None, format!("two agents are named {n:?}"))
            }
            Some(_) => {}
        }
        if !a.get("instructions").is_some_and(Value::is_string) {
            cx.error(codes::MISSING_FIELD, Some(id), None, format!("`{at}` needs `instructions` (a string)"));
        }
        match a.get("model") {
            Some(Value::String(_)) => {}
            None if node_model => {}
            None => cx.error(
                codes::MISSING_FIELD,
                Some(id),
                None,
                format!("`{at}` needs `model` (or set `data.model` for all agents)"),
            ),
            Some(_) => cx.error(codes::INVALID_FIELD, Some(id), None, format!("`{at}.model` must be a string")),
        }
        if a.get("description").is_some_and(|v| !v.is_string()) {
            cx.error(codes::INVALID_FIELD, Some(id), None, format!("`{at}.description` must be a string"));
        }
        if let Some(n) = a.get("max_steps")
            && n.as_u64().is_none()
        {
            cx.error(codes::INVALID_FIELD, Some(id), None, format!("`{at}.max_steps` must be a whole number"));
        }
        check_steps(cx, id, &format!("{at}.max_steps"), a.get("max_steps"));
        check_tools(cx, id, &format!("{at}.tools"), a.get("tools"));
        for key in a.keys() {
            if !matches!(
                key.as_str(),
                "name"
                    | "instructions"
                    | "model"
                    | "description"
                    | "max_steps"
                    | "tools"
                    | "response_format"
                    | "temperature"
            ) {
                cx.warn(codes::UNKNOWN_FIELD, Some(id), format!("`{at}` has no field `{key}`; it is ignored"));
            }
        }
    }
}

fn check_tools(cx: &mut Ctx<'_>, id: &str, at: &str, value: Option<&Value>) {
    let Some(value) = value.filter(|v| !v.is_null()) else { return };
    let Some(items) = value.as_array() else {
        cx.error(codes::INVALID_FIELD, Some(id), None, format!("`{at}` must be an array of tool declarations"));
        return;
    };
    if items.len() > MAX_TOOLS {
        cx.error(
            codes::INVALID_FIELD,
            Some(id),
            None,
            format!("`{at}` declares {} tools; at most {MAX_TOOLS}", items.len()),
        );
    }
    let mut names = HashSet::new();
    for (i, t) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let Some(t) = t.as_object() else {
            cx.error(codes::INVALID_FIELD, Some(id), None, format!("`{at}` must be an object"));
            continue;
        };
        match t.get("name").and_then(Value::as_str) {
            None => cx.error(codes::MISSING_FIELD, Some(id), None, format!("`{at}` needs `name`")),
            Some(n) if !agent::is_tool_name(n) => cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!("`{at}.name` {n:?} must be 1 to 64 letters, digits, `_` and `-`"),
            ),
            Some(n @ ("unknown" | "ok" | "failed")) => cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!(
                    "`{at}.name` {n:?} is reserved (`unknown`, `ok` and `failed` name the states that answer calls)"
                ),
            ),
            Some(n) if n.starts_with("transfer_to_") => cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!("`{at}.name` {n:?}: names starting with `transfer_to_` are a supervisor's"),
            ),
            Some(n) if !names.insert(n) => {
                cx.error(codes::INVALID_FIELD, Some(id), None, format!("two tools are named {n:?}"))
            }
            Some(_) => {}
        }
        if t.get("description").is_some_and(|v| !v.is_string()) {
            cx.error(codes::INVALID_FIELD, Some(id), None, format!("`{at}.description` must be a string"));
        }
        match t.get("parameters") {
            None | Some(Value::Null) => {}
            Some(Value::Object(p)) if p.get("type").is_none_or(|ty| ty == "object") => {}
            Some(_) => cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!("`{at}.parameters` must be a JSON Schema of an object (`{{\"type\": \"object\", ...}}`)"),
            ),
        }
        for key in ["requires_approval"] {
            if t.get(key).is_some_and(|v| !v.is_boolean()) {
                cx.error(codes::INVALID_FIELD, Some(id), None, format!("`{at}.{key}` must be a boolean"));
            }
        }
        if t.get("approval_timeout_seconds").is_some_and(|v| v.as_u64().is_none_or(|n| n == 0)) {
            cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!("`{at}.approval_timeout_seconds` must be a whole number of seconds, at least 1"),
            );
        }
        let Some(ty) = t.get("type").and_then(Value::as_str) else {
            cx.error(
                codes::MISSING_FIELD,
                Some(id),
                None,
                format!("`{at}` needs `type`: one of {}", TOOL_TYPES.join(", ")),
            );
            continue;
        };
        if !TOOL_TYPES.contains(&ty) {
            cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!("`{at}.type` {ty:?} is not a tool type ({})", TOOL_TYPES.join(", ")),
            );
            continue;
        }
        check_tool_config(cx, id, &at, ty, t);
    }
}

/// The config of a tool of type `ty`: the fields that type's node takes.
fn check_tool_config(cx: &mut Ctx<'_>, id: &str, at: &str, ty: &str, t: &Map<String, Value>) {
    let Some(spec) = fields(ty) else { return };
    check_fields(cx, id, &format!("`{at}` (a {ty} tool)"), &format!("{at}."), spec, t, DECLARATION_KEYS);
    let present = |k: &str| t.get(k).is_some_and(|v| !v.is_null());
    let one_of = |cx: &mut Ctx<'_>, a: &str, b: &str| {
        if present(a) == present(b) {
            cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!("`{at}` (a {ty} tool) takes exactly one of `{a}` and `{b}`"),
            );
        }
    };
    match ty {
        "code" => one_of(cx, "expression", "source"),
        "vector_search" => one_of(cx, "query", "vector"),
        // Resolved at publish to the child's `live` alias: it must be written as it is.
        "workflow"
            if t.get("workflow_id")
                .is_some_and(|w| w.as_str().is_none_or(|s| s.contains("{{")) || is_single_template(w)) =>
        {
            cx.error(
                codes::INVALID_FIELD,
                Some(id),
                None,
                format!("`{at}.workflow_id` must be a workflow id written as it is, not a template"),
            );
        }
        "http" => check_http_method(cx, id, &format!("{at}."), t),
        _ => {}
    }
}
