//! Validation: indexes the graph, checks it, and records what lowering needs.
//!
//! Checks run in layers so one problem does not hide others: fields and ids first, then edges
//! and handles, then (only if the graph has no cycle, since the rest assumes a DAG) reachability,
//! dead ends, loop bodies, fork/join regions, and finally templates against the set of nodes that
//! have always run before each node. One module per layer:
//!
//! - `fields`: settings, triggers, node ids and types, each type's `data` fields, retry and
//!   timeout values, `parentId` (loop membership);
//! - `edges`: edge ends, scopes and handles;
//! - `flow`: cycles, loop bodies, reachability, dead ends, fork/join regions and nesting depth;
//! - `templates`: what each `{{ nodes.<id> }}` may name, and where each node's value lives.

mod agents;
mod edges;
mod fields;
mod flow;
mod templates;

use std::collections::HashMap;

use crate::diagnostic::codes;
use crate::graph::{SettingsType, is_task_type};
use crate::{Diagnostic, Graph};

pub use fields::{UI_KEYS, is_js_field, switch_cases};

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

fn can_fail(t: &str) -> bool {
    is_task_type(t) || matches!(t, "loop" | "parallel" | "condition" | "switch")
}

/// How deep loops and parallels may nest, together (a loop body or parallel branch inside
/// `MAX_NESTING` others is refused with `too-large`). Lowering recurses once per level, and the
/// API compiles on request threads with 2 MiB stacks (`compiler/tests/scale.rs`).
pub const MAX_NESTING: usize = 32;

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
    fields::check_settings(&mut cx);

    fields::check_nodes(&mut cx, &mut a);
    fields::check_parents(&mut cx, &mut a);

    edges::check_edges(&mut cx, &mut a);
    edges::check_handles(&mut cx, &a);

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
    if !has_errors_before_flow && flow::check_flow(&mut cx, &mut a) {
        templates::check_templates(&mut cx, &mut a);
    }
    standard_reasons(&mut cx, &mut a);

    let mut diags = cx.diags;
    diags.sort_by_key(|d| d.severity);
    a.diagnostics = diags;
    a
}

fn standard_reasons(cx: &mut Ctx<'_>, a: &mut Analysis) {
    let graph = cx.graph;
    let mut reasons = Vec::new();
    for node in &graph.nodes {
        let id = &node.id;
        match node.node_type.as_str() {
            "approval" => reasons.push(format!("`{id}` waits for a task token (approval)")),
            "workflow" => reasons.push(format!("`{id}` runs a sub-workflow synchronously (.sync)")),
            "agent" | "multi_agent" => {
                let tools = match node.node_type.as_str() {
                    "agent" => crate::agent::tools(node.data.get("tools")),
                    _ => crate::agent::agents(&node.data)
                        .into_iter()
                        .flat_map(|(_, a)| crate::agent::tools(a.get("tools")))
                        .collect(),
                };
                for t in tools {
                    if t.requires_approval() {
                        reasons.push(format!("`{id}`'s tool `{}` waits for an approval", t.name));
                    }
                    if t.tool_type == "workflow" {
                        reasons.push(format!("`{id}`'s tool `{}` runs a sub-workflow synchronously (.sync)", t.name));
                    }
                }
            }
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
