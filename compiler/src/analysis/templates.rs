//! Checks of templates against the graph's order: every `{{ nodes.<id> }}` must name a node that
//! has always run before (a bitset of "must have run" nodes per node, in topological order), with
//! a value of its own; `item`/`index` only inside loop bodies. Also records where each node's
//! value lives (`Analysis::value_source`), which lowering uses.

use std::collections::HashSet;

use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;

use super::{Analysis, Ctx, ValueSource, is_js_field};
use crate::diagnostic::codes;
use crate::template::{self, Root};

/// Bitset of node indices.
#[derive(Clone)]
pub(super) struct Bits(Vec<u64>);

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
pub(super) fn check_templates(cx: &mut Ctx<'_>, a: &mut Analysis) {
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
            // The model's arguments exist only inside an agent's tools.
            let in_tools = matches!((t, key.as_str()), ("agent", "tools") | ("multi_agent", "agents"));
            template::visit_paths(value, &mut |p| {
                let Ok(path) = p else { return };
                match &path.root {
                    Root::Args if !in_tools => problems.push((
                        codes::ARGS_OUTSIDE_TOOL.to_owned(),
                        format!("`data.{key}` uses `args`, which only exists in the config of an agent's tool"),
                    )),
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
