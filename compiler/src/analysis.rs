//! Validation: indexes the graph, checks it, and records what lowering needs.
//!
//! Checks run in layers so one problem does not hide others: fields and ids first, then edges
//! and handles, then (only if the graph has no cycle, since the rest assumes a DAG) reachability,
//! dead ends, loop bodies, fork/join regions, and finally templates against the set of nodes that
//! have always run before each node.

use std::collections::{HashMap, HashSet};

use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;

use crate::diagnostic::codes;
use crate::graph::{OnError, SettingsType};
use crate::template::{self, Root};
use crate::{Diagnostic, Graph, Node};

/// Which out-port an edge leaves from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handle {
    Next,
    True,
    False,
    Case(usize),
    Default,
    Error,
}

#[derive(Debug, Clone)]
pub struct OutEdge {
    pub target: usize,
    pub handle: Handle,
}

/// A loop's body (the nodes whose `parentId` is the loop).
#[derive(Debug, Clone, Default)]
pub struct Body {
    pub nodes: Vec<usize>,
    pub entry: Option<usize>,
    pub exit: Option<usize>,
}

/// A `parallel` node's region: its branch entries in edge order, the matching join, and each
/// branch's final node (the one with the edge into the join).
#[derive(Debug, Clone)]
pub struct Region {
    pub join: usize,
    pub branches: Vec<usize>,
    pub finals: Vec<usize>,
}

/// Where a node's value lives: the execution input, a node's stored output, or nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSource {
    Input,
    Node(usize),
    None,
}

/// The result of analysing a graph: diagnostics plus everything lowering needs.
pub struct Analysis {
    pub diagnostics: Vec<Diagnostic>,
    pub index: HashMap<String, usize>,
    pub out: Vec<Vec<OutEdge>>,
    pub preds: Vec<Vec<usize>>,
    /// The loop each node belongs to.
    pub scope: Vec<Option<usize>>,
    pub start: Option<usize>,
    pub bodies: HashMap<usize, Body>,
    pub regions: HashMap<usize, Region>,
    /// Reasons the graph needs a STANDARD workflow.
    pub standard_reasons: Vec<String>,
    pub value_source: Vec<ValueSource>,
}

impl Analysis {
    /// The edge leaving `node` from `handle`.
    pub fn edge(&self, node: usize, handle: &Handle) -> Option<usize> {
        self.out.get(node)?.iter().find(|e| &e.handle == handle).map(|e| e.target)
    }
}

/// Node types that run as a Task and can therefore fail, retry and time out.
pub fn is_task_type(t: &str) -> bool {
    node_contract::logical_id(t).is_some() || t == "workflow"
}

fn can_fail(t: &str) -> bool {
    is_task_type(t) || matches!(t, "loop" | "parallel" | "condition" | "switch")
}

/// How deep loops and parallels may nest, together (a loop body or parallel branch inside
/// `MAX_NESTING` others is refused with `too-large`). Lowering recurses once per level, and the
/// API compiles on request threads with 2 MiB stacks (`compiler/tests/scale.rs`).
pub const MAX_NESTING: usize = 32;

/// `data` keys any node may carry for the editor's sake; they are ignored.
const UI_KEYS: &[&str] = &["label", "description", "notes", "icon", "color"];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
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

struct Field {
    name: &'static str,
    required: bool,
    kind: Kind,
}

const fn req(name: &'static str, kind: Kind) -> Field {
    Field { name, required: true, kind }
}
const fn opt(name: &'static str, kind: Kind) -> Field {
    Field { name, required: false, kind }
}

/// The `data` fields of each node type. "One of" pairs (`code` expression/source, `delay`
/// seconds/until, `vector_search` query/vector) are listed as optional and checked separately.
fn fields(node_type: &str) -> Option<&'static [Field]> {
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
                    req("prompt", Str),
                    opt("system", Str),
                    opt("temperature", Num),
                    opt("max_tokens", Int),
                    opt("response_format", Any),
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
                ]
            }
        }
        "multi_agent" => const { &[req("agents", Arr), req("strategy", Str), req("task", Any)] },
        "vector_search" => {
            const { &[req("collection", Str), opt("query", Str), opt("vector", Arr), req("top_k", Int), opt("filter", Any)] }
        }
        "vector_upsert" => const { &[req("collection", Str), req("documents", Arr)] },
        "database" => {
            const { &[req("connection", Str), req("query", Str), opt("params", Any), opt("read_only", Bool)] }
        }
        "email" => const { &[req("to", StrOrArr), req("subject", Str), req("body", Str), opt("html", Any)] },
        "slack" => const { &[req("text", Str), opt("channel", Str), opt("blocks", Any)] },
        "approval" => const { &[req("message", Str), opt("timeout_seconds", Int)] },
        "workflow" => const { &[req("workflow_id", Str), opt("input", Any)] },
        _ => return None,
    })
}

/// Whether `v` is a string that is exactly one `{{ path }}` template (allowed in place of any
/// typed value: its type is only known at run time).
fn is_single_template(v: &Value) -> bool {
    match v {
        Value::String(s) => {
            matches!(template::parse_string(s), Ok(Some(parts)) if parts.len() == 1 && matches!(parts[0], template::Part::Path(_)))
        }
        _ => false,
    }
}

fn kind_ok(kind: Kind, v: &Value) -> bool {
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

fn kind_name(kind: Kind) -> &'static str {
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

struct Ctx<'g> {
    graph: &'g Graph,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn error(&mut self, code: &str, node: Option<&str>, edge: Option<String>, msg: impl Into<String>) {
        let mut d = Diagnostic::error(code, msg);
        d.node = node.map(str::to_owned);
        d.edge = edge;
        self.diags.push(d);
    }
    fn warn(&mut self, code: &str, node: Option<&str>, msg: impl Into<String>) {
        let mut d = Diagnostic::warning(code, msg);
        d.node = node.map(str::to_owned);
        self.diags.push(d);
    }
}

pub fn analyze(graph: &Graph) -> Analysis {
    let mut cx = Ctx { graph, diags: Vec::new() };
    let n = graph.nodes.len();
    let mut a = Analysis {
        diagnostics: Vec::new(),
        index: HashMap::with_capacity(n),
        out: vec![Vec::new(); n],
        preds: vec![Vec::new(); n],
        scope: vec![None; n],
        start: None,
        bodies: HashMap::new(),
        regions: HashMap::new(),
        standard_reasons: Vec::new(),
        value_source: vec![ValueSource::None; n],
    };

    if graph.format != crate::FORMAT {
        cx.error(
            codes::UNSUPPORTED_FORMAT,
            None,
            None,
            format!("`format` is {:?}; this compiler reads \"{}\"", graph.format, crate::FORMAT),
        );
    }
    check_settings(&mut cx);

    // Ids, types and data.
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
        check_node(&mut cx, node);
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

    // Loop membership.
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

    check_edges(&mut cx, &mut a);
    check_handles(&mut cx, &a);

    let has_errors_before_flow = cx.diags.iter().any(|d| {
        d.is_error()
            && matches!(
                d.code.as_str(),
                codes::CYCLE
                    | codes::DANGLING_EDGE
                    | codes::CROSS_SCOPE_EDGE
                    | codes::INVALID_PARENT
                    // Loops nested too deep: the scope tree was cut.
                    | codes::TOO_LARGE
            )
    });
    if !has_errors_before_flow && check_flow(&mut cx, &mut a) {
        check_templates(&mut cx, &mut a);
    }
    standard_reasons(&mut cx, &mut a);

    let mut diags = cx.diags;
    diags.sort_by_key(|d| d.severity);
    a.diagnostics = diags;
    a
}

fn check_settings(cx: &mut Ctx<'_>) {
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

fn check_node(cx: &mut Ctx<'_>, node: &Node) {
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
    for field in spec {
        match data.get(field.name) {
            None | Some(Value::Null) if field.required => {
                cx.error(codes::MISSING_FIELD, Some(id), None, format!("`{t}` needs `data.{}`", field.name));
            }
            None | Some(Value::Null) => {}
            Some(v) if !kind_ok(field.kind, v) => {
                cx.error(
                    codes::INVALID_FIELD,
                    Some(id),
                    None,
                    format!("`data.{}` must be {}", field.name, kind_name(field.kind)),
                );
            }
            Some(_) => {}
        }
    }
    for key in data.keys() {
        if !spec.iter().any(|f| f.name == key) && !UI_KEYS.contains(&key.as_str()) {
            cx.warn(codes::UNKNOWN_FIELD, Some(id), format!("`{t}` has no field `data.{key}`; it is ignored"));
        }
    }
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
        "http" => {
            if let Some(m) = data.get("method").and_then(Value::as_str) {
                const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
                if !m.contains("{{") && !METHODS.contains(&m.to_ascii_uppercase().as_str()) {
                    cx.error(
                        codes::INVALID_FIELD,
                        Some(id),
                        None,
                        format!("`data.method` {m:?} is not one of {}", METHODS.join(", ")),
                    );
                }
            }
        }
        "multi_agent" => {
            if let Some(s) = data.get("strategy").and_then(Value::as_str)
                && !matches!(s, "parallel" | "sequential" | "supervisor")
            {
                cx.error(
                    codes::INVALID_FIELD,
                    Some(id),
                    None,
                    format!("`data.strategy` {s:?} is not parallel, sequential or supervisor"),
                );
            }
        }
        "switch" => check_switch_cases(cx, node),
        _ => {}
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
        if !parse_failed && let Err(problem) = template::compile_value(value, &|_| Ok(String::from("$"))) {
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

fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s.get(19..).is_some_and(|tz| tz.contains(['+', '-'])))
}

fn check_switch_cases(cx: &mut Ctx<'_>, node: &Node) {
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

fn check_edges(cx: &mut Ctx<'_>, a: &mut Analysis) {
    let graph = cx.graph;
    let mut edge_ids = HashSet::new();
    for edge in &graph.edges {
        let label = edge.label();
        if let Some(id) = edge.id.as_deref().filter(|id| !id.is_empty())
            && !edge_ids.insert(id)
        {
            cx.error(codes::DUPLICATE_EDGE_ID, None, Some(label.clone()), format!("two edges have the id `{id}`"));
        }
        let (Some(&s), Some(&t)) = (a.index.get(&edge.source), a.index.get(&edge.target)) else {
            let missing = if a.index.contains_key(&edge.source) { &edge.target } else { &edge.source };
            cx.error(
                codes::DANGLING_EDGE,
                None,
                Some(label),
                format!("the edge names `{missing}`, which is not a node"),
            );
            continue;
        };
        if s == t {
            cx.error(
                codes::CYCLE,
                Some(&edge.source),
                Some(label),
                "the edge loops back to its own node; iterate with a `loop` node",
            );
            continue;
        }
        if a.scope[s] != a.scope[t] {
            cx.error(
                codes::CROSS_SCOPE_EDGE,
                Some(&edge.source),
                Some(label),
                format!("the edge joins `{}` and `{}`, which are not in the same loop body", edge.source, edge.target),
            );
            continue;
        }
        let st = graph.nodes[s].node_type.as_str();
        let handle = match (st, edge.handle()) {
            (_, Some("error")) => Handle::Error,
            ("condition", Some("true")) => Handle::True,
            ("condition", Some("false")) => Handle::False,
            ("switch", Some("default")) => Handle::Default,
            ("switch", Some(name)) => match switch_cases(&graph.nodes[s]).iter().position(|(n, _)| n == name) {
                Some(i) => Handle::Case(i),
                None => {
                    cx.error(
                        codes::UNKNOWN_HANDLE,
                        Some(&edge.source),
                        Some(label),
                        format!("the switch has no case named {name:?}"),
                    );
                    continue;
                }
            },
            ("condition", None) | ("switch", None) => {
                cx.error(
                    codes::UNKNOWN_HANDLE,
                    Some(&edge.source),
                    Some(label),
                    format!("an edge from a `{st}` needs a `sourceHandle`"),
                );
                continue;
            }
            ("end", _) => {
                cx.error(codes::UNKNOWN_HANDLE, Some(&edge.source), Some(label), "an `end` node has no way out");
                continue;
            }
            (_, None) => Handle::Next,
            (_, Some(other)) => {
                cx.error(
                    codes::UNKNOWN_HANDLE,
                    Some(&edge.source),
                    Some(label),
                    format!("a `{st}` node has no handle {other:?}"),
                );
                continue;
            }
        };
        if handle == Handle::Error && !can_fail(st) {
            cx.error(
                codes::INVALID_ERROR_HANDLING,
                Some(&edge.source),
                Some(label),
                format!("a `{st}` node cannot fail, so it has no `error` handle"),
            );
            continue;
        }
        a.out[s].push(OutEdge { target: t, handle });
        a.preds[t].push(s);
    }
}

fn check_handles(cx: &mut Ctx<'_>, a: &Analysis) {
    for (i, node) in cx.graph.nodes.iter().enumerate() {
        if a.index.get(&node.id) != Some(&i) {
            continue;
        }
        let id = node.id.as_str();
        let t = node.node_type.as_str();
        let count = |h: &Handle| a.out[i].iter().filter(|e| &e.handle == h).count();
        let mut expected: Vec<(Handle, String)> = Vec::new();
        match t {
            "condition" => {
                expected.push((Handle::True, "true".into()));
                expected.push((Handle::False, "false".into()));
            }
            "switch" => {
                for (ci, (name, _)) in switch_cases(node).into_iter().enumerate() {
                    expected.push((Handle::Case(ci), name));
                }
                expected.push((Handle::Default, "default".into()));
            }
            _ => {}
        }
        for (h, name) in &expected {
            match count(h) {
                0 => cx.error(codes::MISSING_HANDLE, Some(id), None, format!("the `{name}` handle has no edge")),
                1 => {}
                _ => cx.error(
                    codes::DUPLICATE_HANDLE,
                    Some(id),
                    None,
                    format!("several edges leave the `{name}` handle"),
                ),
            }
        }
        let next = count(&Handle::Next);
        if t == "parallel" {
            if next < 2 {
                cx.error(
                    codes::SINGLE_BRANCH_FORK,
                    Some(id),
                    None,
                    format!("a `parallel` needs two or more outgoing edges (it has {next})"),
                );
            }
        } else if next > 1 {
            cx.error(
                codes::DUPLICATE_HANDLE,
                Some(id),
                None,
                format!("{next} edges leave this node; only a `parallel` node forks (or use a condition)"),
            );
        }
        if count(&Handle::Error) > 1 {
            cx.error(codes::DUPLICATE_HANDLE, Some(id), None, "several edges leave the `error` handle");
        }
        if count(&Handle::Error) > 0 && node.on_error == Some(OnError::Continue) {
            cx.error(
                codes::INVALID_ERROR_HANDLING,
                Some(id),
                None,
                "the node has both an `error` edge and `on_error: continue`; keep one",
            );
        }
    }
}

/// Cycles, reachability, dead ends, loop bodies and fork/join regions. Returns whether the graph
/// is a well-formed DAG per scope (so template checks can run).
// Node indices index several parallel vectors here; ranges read better than zips.
#[allow(clippy::needless_range_loop)]
fn check_flow(cx: &mut Ctx<'_>, a: &mut Analysis) -> bool {
    let graph = cx.graph;
    let n = graph.nodes.len();
    let valid: Vec<bool> = (0..n).map(|i| a.index.get(&graph.nodes[i].id) == Some(&i)).collect();

    // Cycles (edges never cross scopes, so a cycle lies inside one scope).
    let mut cyclic = false;
    for scc in strongly_connected(&a.out) {
        if scc.len() > 1 {
            cyclic = true;
            let mut ids: Vec<&str> = scc.iter().map(|&x| graph.nodes[x].id.as_str()).collect();
            ids.sort_unstable();
            cx.error(
                codes::CYCLE,
                Some(ids[0]),
                None,
                format!(
                    "the nodes {} form a cycle; iterate with a `loop` node",
                    ids.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    if cyclic {
        return false;
    }

    // Loop bodies: entries and exits.
    for i in 0..n {
        if valid[i] && graph.nodes[i].node_type == "loop" {
            a.bodies.insert(i, Body::default());
        }
    }
    for i in 0..n {
        if let Some(p) = a.scope[i].filter(|_| valid[i])
            && let Some(body) = a.bodies.get_mut(&p)
        {
            body.nodes.push(i);
        }
    }
    let mut loop_ids: Vec<usize> = a.bodies.keys().copied().collect();
    loop_ids.sort_unstable();
    for l in &loop_ids {
        let lid = graph.nodes[*l].id.clone();
        let Some(body) = a.bodies.get_mut(l) else {
            continue;
        };
        if body.nodes.is_empty() {
            cx.error(
                codes::EMPTY_LOOP_BODY,
                Some(&lid),
                None,
                "the loop has no body: give nodes `parentId` equal to the loop's id",
            );
            continue;
        }
        let entries: Vec<usize> = body.nodes.iter().copied().filter(|&x| a.preds[x].is_empty()).collect();
        let exits: Vec<usize> =
            body.nodes.iter().copied().filter(|&x| !a.out[x].iter().any(|e| e.handle != Handle::Error)).collect();
        let names = |v: &[usize]| v.iter().map(|&x| format!("`{}`", graph.nodes[x].id)).collect::<Vec<_>>().join(", ");
        if entries.len() == 1 {
            body.entry = Some(entries[0]);
        } else {
            cx.error(
                codes::LOOP_BODY_ENTRIES,
                Some(&lid),
                None,
                format!(
                    "a loop body has exactly one entry node (one without incoming edges); found {}",
                    if entries.is_empty() { "none".to_owned() } else { names(&entries) }
                ),
            );
        }
        if exits.len() == 1 {
            body.exit = Some(exits[0]);
        } else {
            cx.error(
                codes::LOOP_BODY_EXITS,
                Some(&lid),
                None,
                format!(
                    "a loop body has exactly one final node (one without outgoing edges); found {}",
                    if exits.is_empty() { "none".to_owned() } else { names(&exits) }
                ),
            );
        }
    }

    // Reachability from start, entering loop bodies through their loops.
    let Some(start) = a.start else { return false };
    let mut reached = vec![false; n];
    let mut stack = vec![start];
    reached[start] = true;
    while let Some(x) = stack.pop() {
        let mut next: Vec<usize> = a.out[x].iter().map(|e| e.target).collect();
        if let Some(entry) = a.bodies.get(&x).and_then(|b| b.entry) {
            next.push(entry);
        }
        for y in next {
            if !reached[y] {
                reached[y] = true;
                stack.push(y);
            }
        }
    }
    let mut ok = true;
    for i in 0..n {
        if valid[i] && !reached[i] {
            // Inside a loop whose body is already reported broken, stay quiet.
            if a.scope[i].and_then(|l| a.bodies.get(&l)).is_some_and(|b| b.entry.is_none()) {
                continue;
            }
            cx.error(codes::UNREACHABLE_NODE, Some(&graph.nodes[i].id), None, "no path from `start` reaches this node");
            ok = false;
        }
    }
    // Dead ends at the top level (loop bodies were checked through their exits).
    for i in 0..n {
        if !valid[i] || a.scope[i].is_some() {
            continue;
        }
        let t = graph.nodes[i].node_type.as_str();
        if t != "end" && !a.out[i].iter().any(|e| e.handle != Handle::Error) {
            cx.error(
                codes::DEAD_END,
                Some(&graph.nodes[i].id),
                None,
                format!("the `{t}` node leads nowhere; connect it to the next node or to an `end`"),
            );
            ok = false;
        }
    }
    for l in &loop_ids {
        if a.bodies.get(l).is_some_and(|b| !b.nodes.is_empty() && (b.entry.is_none() || b.exit.is_none())) {
            ok = false;
        }
    }
    if !ok {
        return false;
    }

    // Fork/join regions.
    let mut joins_matched: HashMap<usize, usize> = HashMap::new();
    let mut memo: HashMap<usize, Option<usize>> = HashMap::new();
    let mut parallels: Vec<usize> = (0..n).filter(|&i| valid[i] && graph.nodes[i].node_type == "parallel").collect();
    parallels.sort_unstable();
    let mut region_ok = true;
    for &p in &parallels {
        if resolve_region(cx, a, p, &mut memo, 0).is_none() {
            region_ok = false;
        }
    }
    for (&p, region) in &a.regions {
        if let Some(prev) = joins_matched.insert(region.join, p) {
            let (x, y) = (graph.nodes[prev.min(p)].id.clone(), graph.nodes[prev.max(p)].id.clone());
            cx.error(
                codes::BAD_JOIN,
                Some(&graph.nodes[region.join].id),
                None,
                format!("both `{x}` and `{y}` end at this join; each `parallel` needs its own"),
            );
            region_ok = false;
        }
    }
    for i in 0..n {
        if valid[i] && graph.nodes[i].node_type == "join" && !joins_matched.contains_key(&i) && region_ok {
            cx.error(
                codes::BAD_JOIN,
                Some(&graph.nodes[i].id),
                None,
                "no `parallel` node's branches meet at this join",
            );
            region_ok = false;
        }
    }
    region_ok && check_nesting(cx, a)
}

/// The strongly connected components of the graph `out`, in the order petgraph's `tarjan_scc`
/// gives them (Pearce's space-efficient Tarjan, successors in reverse edge order, as petgraph's
/// adjacency lists hold them), but with an explicit stack: petgraph's version recurses once per
/// node of a path, which overflowed a 2 MiB stack on a chain of 5,000 nodes.
fn strongly_connected(out: &[Vec<OutEdge>]) -> Vec<Vec<usize>> {
    let n = out.len();
    // 0: not visited yet; finished components get indices counting down from usize::MAX.
    let mut rindex = vec![0usize; n];
    let mut index = 1usize;
    let mut component = usize::MAX;
    let mut stack: Vec<usize> = Vec::new();
    let mut sccs = Vec::new();
    // (node, successors taken so far, still a local root)
    let mut calls: Vec<(usize, usize, bool)> = Vec::new();
    for root in 0..n {
        if rindex[root] != 0 {
            continue;
        }
        rindex[root] = index;
        index += 1;
        calls.push((root, 0, true));
        while let Some(&mut (v, ref mut taken, _)) = calls.last_mut() {
            let succs = &out[v];
            if *taken < succs.len() {
                let w = succs[succs.len() - 1 - *taken].target;
                *taken += 1;
                if rindex[w] == 0 {
                    rindex[w] = index;
                    index += 1;
                    calls.push((w, 0, true));
                } else if rindex[w] < rindex[v] {
                    rindex[v] = rindex[w];
                    if let Some(top) = calls.last_mut() {
                        top.2 = false;
                    }
                }
                continue;
            }
            let Some((v, _, local_root)) = calls.pop() else {
                break;
            };
            if local_root {
                let mut adjustment = 1;
                let start = stack
                    .iter()
                    .rposition(|&w| {
                        if rindex[v] > rindex[w] {
                            true
                        } else {
                            rindex[w] = component;
                            adjustment += 1;
                            false
                        }
                    })
                    .map_or(0, |x| x + 1);
                rindex[v] = component;
                stack.push(v);
                sccs.push(stack[start..].to_vec());
                stack.truncate(start);
                index -= adjustment;
                component -= 1;
            } else {
                stack.push(v);
            }
            // Back in the caller: what `v` reached, the caller reaches.
            if let Some(parent) = calls.last_mut()
                && rindex[v] < rindex[parent.0]
            {
                rindex[parent.0] = rindex[v];
                parent.2 = false;
            }
        }
    }
    sccs
}

/// How deep each loop body and parallel branch sits, counting loops and parallels together
/// (lowering recurses once per level); reports each loop or parallel whose inside would be deeper
/// than [`MAX_NESTING`]. Walks the regions with explicit stacks.
fn check_nesting(cx: &mut Ctx<'_>, a: &Analysis) -> bool {
    let graph = cx.graph;
    let Some(start) = a.start else { return false };
    let mut seen = vec![false; graph.nodes.len()];
    let mut ok = true;
    // (entry, the join that ends the region, depth of the region)
    let mut regions: Vec<(usize, Option<usize>, usize)> = vec![(start, None, 0)];
    while let Some((entry, stop, depth)) = regions.pop() {
        let mut stack = vec![entry];
        while let Some(x) = stack.pop() {
            if Some(x) == stop || seen[x] {
                continue;
            }
            seen[x] = true;
            let inner: Vec<usize> = match graph.nodes[x].node_type.as_str() {
                "parallel" => a.regions.get(&x).map_or(Vec::new(), |r| r.branches.clone()),
                "loop" => a.bodies.get(&x).and_then(|b| b.entry).into_iter().collect(),
                _ => Vec::new(),
            };
            if !inner.is_empty() {
                if depth + 1 > MAX_NESTING {
                    cx.error(
                        codes::TOO_LARGE,
                        Some(&graph.nodes[x].id),
                        None,
                        format!("loops and parallels nest more than {MAX_NESTING} deep here; split the graph with `workflow` nodes"),
                    );
                    ok = false;
                } else {
                    let join = a.regions.get(&x).map(|r| r.join);
                    for b in inner.into_iter().rev() {
                        regions.push((b, join, depth + 1));
                    }
                }
            }
            match a.regions.get(&x) {
                // A parallel goes on at its join (and its error edge).
                Some(r) => {
                    stack.push(r.join);
                    stack.extend(a.out[x].iter().filter(|e| e.handle == Handle::Error).map(|e| e.target));
                }
                None => stack.extend(a.out[x].iter().map(|e| e.target)),
            }
        }
    }
    ok
}

/// Finds the join that closes parallel `p` and checks its branches; returns the join.
fn resolve_region(
    cx: &mut Ctx<'_>,
    a: &mut Analysis,
    p: usize,
    memo: &mut HashMap<usize, Option<usize>>,
    depth: usize,
) -> Option<usize> {
    if let Some(r) = memo.get(&p) {
        return *r;
    }
    memo.insert(p, None);
    if depth > MAX_NESTING {
        cx.error(
            codes::TOO_LARGE,
            Some(&cx.graph.nodes[p].id),
            None,
            format!("parallels nest more than {MAX_NESTING} deep here; split the graph with `workflow` nodes"),
        );
        return None;
    }
    let graph = cx.graph;
    let pid = graph.nodes[p].id.clone();
    let branches: Vec<usize> = a.out[p].iter().filter(|e| e.handle == Handle::Next).map(|e| e.target).collect();
    if branches.len() < 2 {
        return None;
    }
    let mut joins = Vec::new();
    let mut owner: HashMap<usize, usize> = HashMap::new();
    let mut finals = Vec::new();
    let mut failed = false;
    for (bi, &b) in branches.iter().enumerate() {
        let mut join_edges: Vec<(usize, usize)> = Vec::new();
        let mut stack = vec![b];
        let mut seen = HashSet::new();
        while let Some(x) = stack.pop() {
            if !seen.insert(x) {
                continue;
            }
            let t = graph.nodes[x].node_type.as_str();
            if x == b && t == "join" {
                cx.error(
                    codes::UNJOINED_FORK,
                    Some(&pid),
                    None,
                    "a branch goes straight to the join; every branch needs at least one node",
                );
                failed = true;
                break;
            }
            if let Some(prev) = owner.insert(x, bi)
                && prev != bi
            {
                cx.error(
                    codes::BAD_JOIN,
                    Some(&graph.nodes[x].id),
                    None,
                    format!("branches of `{pid}` meet here before their join; branches may only meet at a `join`"),
                );
                failed = true;
            }
            let mut succs: Vec<usize> = a.out[x].iter().map(|e| e.target).collect();
            if t == "parallel" {
                // A nested region: skip to its join and go on from there.
                match resolve_region(cx, a, x, memo, depth + 1) {
                    Some(inner_join) => {
                        succs = vec![inner_join];
                    }
                    None => {
                        failed = true;
                        continue;
                    }
                }
            }
            if succs.is_empty() || (t == "end") {
                cx.error(
                    codes::UNJOINED_FORK,
                    Some(&pid),
                    None,
                    format!("the branch through `{}` ends without reaching a `join`", graph.nodes[x].id),
                );
                failed = true;
                continue;
            }
            for y in succs {
                if graph.nodes[y].node_type == "join" && t != "parallel" {
                    join_edges.push((x, y));
                } else {
                    stack.push(y);
                }
            }
        }
        let mut js: Vec<usize> = join_edges.iter().map(|&(_, j)| j).collect();
        js.sort_unstable();
        js.dedup();
        match js.as_slice() {
            [j] => {
                let mut froms: Vec<usize> = join_edges.iter().map(|&(f, _)| f).collect();
                froms.sort_unstable();
                froms.dedup();
                if froms.len() == 1 && join_edges.len() == 1 {
                    finals.push(froms[0]);
                } else {
                    cx.error(
                        codes::BAD_JOIN,
                        Some(&graph.nodes[*j].id),
                        None,
                        format!(
                            "branch {} of `{pid}` reaches the join from several nodes; merge them into one node first",
                            bi + 1
                        ),
                    );
                    failed = true;
                }
                joins.push(*j);
            }
            [] => failed = true,
            _ => {
                cx.error(
                    codes::BAD_JOIN,
                    Some(&pid),
                    None,
                    format!("branch {} of `{pid}` reaches several joins", bi + 1),
                );
                failed = true;
            }
        }
    }
    if failed {
        return None;
    }
    joins.sort_unstable();
    joins.dedup();
    let [join] = joins.as_slice() else {
        cx.error(
            codes::UNJOINED_FORK,
            Some(&pid),
            None,
            "the branches end at different joins; they must meet at one `join`",
        );
        return None;
    };
    let join = *join;
    if a.preds[join].len() != branches.len() {
        cx.error(
            codes::BAD_JOIN,
            Some(&graph.nodes[join].id),
            None,
            format!(
                "the join has {} incoming edges but `{pid}` has {} branches; only the branches may enter it",
                a.preds[join].len(),
                branches.len()
            ),
        );
        return None;
    }
    a.regions.insert(p, Region { join, branches, finals });
    memo.insert(p, Some(join));
    Some(join)
}

/// Bitset of node indices.
#[derive(Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn and(&mut self, o: &Self) {
        self.0.iter_mut().zip(&o.0).for_each(|(a, b)| *a &= b);
    }
    fn or(&mut self, o: &Self) {
        self.0.iter_mut().zip(&o.0).for_each(|(a, b)| *a |= b);
    }
}

/// Templates: every `nodes.<id>` must name a node that has always run before (a node on every
/// path here, or any node of the branches a passed `join` closes); `item`/`index` need a loop.
fn check_templates(cx: &mut Ctx<'_>, a: &mut Analysis) {
    let graph = cx.graph;
    let n = graph.nodes.len();
    // Topological order with loop → body-entry edges, so a body is processed after its loop.
    let mut g: DiGraph<(), ()> = DiGraph::with_capacity(n, graph.edges.len());
    for _ in 0..n {
        g.add_node(());
    }
    for (s, outs) in a.out.iter().enumerate() {
        for e in outs {
            g.add_edge(NodeIndex::new(s), NodeIndex::new(e.target), ());
        }
    }
    for (l, body) in &a.bodies {
        if let Some(entry) = body.entry {
            g.add_edge(NodeIndex::new(*l), NodeIndex::new(entry), ());
        }
    }
    let Ok(order) = petgraph::algo::toposort(&g, None) else {
        return;
    };
    let joins: HashSet<usize> = a.regions.values().map(|r| r.join).collect();
    let mut must: Vec<Option<Bits>> = vec![None; n];
    for x in order.iter().map(|x| x.index()) {
        let preds = &a.preds[x];
        let set = if preds.is_empty() {
            // Start or a loop body's entry: what ran before the loop (the loop itself not yet).
            match a.scope[x].and_then(|l| must[l].clone()) {
                Some(m) => m,
                None => Bits::new(n),
            }
        } else {
            let mut acc: Option<Bits> = None;
            for &p in preds {
                let mut m = must[p].clone().unwrap_or_else(|| Bits::new(n));
                m.set(p);
                match &mut acc {
                    None => acc = Some(m),
                    Some(acc) if joins.contains(&x) => acc.or(&m),
                    Some(acc) => acc.and(&m),
                }
            }
            acc.unwrap_or_else(|| Bits::new(n))
        };
        must[x] = Some(set);
    }

    // Value sources: where each node's value lives (pass-through nodes take their predecessor's).
    for x in order.iter().map(|x| x.index()) {
        let t = graph.nodes[x].node_type.as_str();
        a.value_source[x] = match t {
            "start" => ValueSource::Input,
            "condition" | "switch" | "delay" | "parallel" => match a.preds[x].as_slice() {
                [p] => a.value_source[*p],
                _ => ValueSource::None,
            },
            // A loop body's entry pass-through node has no predecessor inside the body.
            _ => ValueSource::Node(x),
        };
    }

    for (x, node) in graph.nodes.iter().enumerate() {
        if a.index.get(&node.id) != Some(&x) {
            continue;
        }
        let Some(mset) = must[x].clone() else {
            continue;
        };
        let t = node.node_type.as_str();
        let in_loop = a.scope[x].is_some();
        let Value::Object(data) = &node.data else {
            continue;
        };
        let mut problems: Vec<(String, String)> = Vec::new();
        for (key, value) in data {
            if is_js_field(t, key) {
                continue;
            }
            template::visit_paths(value, &mut |p| {
                let Ok(path) = p else { return };
                match &path.root {
                    Root::Item | Root::Index if !in_loop => problems.push((
                        codes::ITEM_OUTSIDE_LOOP.to_owned(),
                        format!("`data.{key}` uses `item`/`index`, which only exist inside a loop body"),
                    )),
                    Root::Node(id) => match a.index.get(id) {
                        None => problems.push((codes::UNKNOWN_NODE_REFERENCE.to_owned(), format!("`data.{key}` names `{}`, which does not exist", template::node_ref(id)))),
                        Some(&y) if y == x || !mset.get(y) => problems.push((
                            codes::NOT_UPSTREAM.to_owned(),
                            format!("`data.{key}` names `{}`, which has not always run before this node", template::node_ref(id)),
                        )),
                        Some(&y) if a.value_source[y] == ValueSource::None => problems.push((
                            codes::NO_OUTPUT.to_owned(),
                            format!("`data.{key}` names `{}`, a `{}` node with no output of its own (and not exactly one predecessor to pass through)", template::node_ref(id), graph.nodes[y].node_type),
                        )),
                        Some(_) => {}
                    },
                    _ => {}
                }
            });
        }
        for (code, msg) in problems {
            cx.error(&code, Some(&node.id), None, msg);
        }
    }
    // An `end` without `output` returns its predecessor's value, which must exist; and a loop's
    // final node's value is the iteration's result.
    for (x, node) in graph.nodes.iter().enumerate() {
        if a.index.get(&node.id) != Some(&x) {
            continue;
        }
        if node.node_type == "end" && node.data.get("output").is_none_or(Value::is_null) {
            for &p in &a.preds[x] {
                if a.value_source[p] == ValueSource::None {
                    cx.error(
                        codes::NO_OUTPUT,
                        Some(&node.id),
                        None,
                        format!(
                            "the `end` has no `output` and `{}` has no value to return; set `data.output`",
                            graph.nodes[p].id
                        ),
                    );
                }
            }
        }
    }
    for (l, body) in &a.bodies {
        if let Some(exit) = body.exit
            && (a.value_source[exit] == ValueSource::None || (a.value_source[exit] == ValueSource::Input))
        {
            cx.error(
                codes::NO_OUTPUT,
                Some(&graph.nodes[*l].id),
                None,
                format!("the body's final node `{}` has no output to collect", graph.nodes[exit].id),
            );
        }
    }
}

fn standard_reasons(cx: &mut Ctx<'_>, a: &mut Analysis) {
    let graph = cx.graph;
    let mut reasons = Vec::new();
    for node in &graph.nodes {
        let id = &node.id;
        match node.node_type.as_str() {
            "approval" => reasons.push(format!("`{id}` waits for a task token (approval)")),
            "workflow" => reasons.push(format!("`{id}` runs a sub-workflow synchronously (.sync)")),
            "delay" => {
                if let Some(s) = node.data.get("seconds") {
                    match s.as_f64() {
                        Some(secs) if secs <= 300.0 => {}
                        Some(_) => reasons.push(format!("`{id}` waits more than 5 minutes")),
                        None => {
                            reasons.push(format!("`{id}` waits a run-time number of seconds (may exceed 5 minutes)"))
                        }
                    }
                } else if node.data.get("until").is_some() {
                    reasons.push(format!("`{id}` waits until a timestamp (may exceed 5 minutes)"));
                }
            }
            _ => {}
        }
        if node.timeout_seconds.is_some_and(|t| t > 300) {
            reasons.push(format!("`{id}` has a timeout over 5 minutes"));
        }
    }
    if graph.settings.timeout_seconds.is_some_and(|t| t > 300) {
        reasons.push("`settings.timeout_seconds` is over 5 minutes".to_owned());
    }
    if graph.settings.workflow_type == SettingsType::Express && !reasons.is_empty() {
        cx.error(
            codes::EXPRESS_INCOMPATIBLE,
            None,
            None,
            format!("`settings.type` is express, but EXPRESS workflows last at most 5 minutes and cannot wait for callbacks or .sync: {}", reasons.join("; ")),
        );
    }
    a.standard_reasons = reasons;
}
