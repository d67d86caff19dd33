//! Checks of the edges: both ends exist, no self-loops, no edge between loop bodies, and the
//! handle an edge leaves from exists on its source (`true`/`false`, switch cases and `default`,
//! `error` only on nodes that can fail); then, per node, that every handle has exactly one edge
//! and only `parallel` forks.

use std::collections::HashSet;

use super::{Analysis, Ctx, Handle, OutEdge, can_fail, switch_cases};
use crate::diagnostic::codes;
use crate::graph::OnError;

pub(super) fn check_edges(cx: &mut Ctx<'_>, a: &mut Analysis) {
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

pub(super) fn check_handles(cx: &mut Ctx<'_>, a: &Analysis) {
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
