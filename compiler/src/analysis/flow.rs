//! Checks of the flow: cycles (with an explicit-stack Tarjan), loop bodies (one entry, one final
//! node), reachability from `start`, dead ends, fork/join regions (every branch of a `parallel`
//! meets at its own `join`) and how deep loops and parallels nest.

use std::collections::{HashMap, HashSet};

use super::{Analysis, Body, Ctx, Handle, MAX_NESTING, OutEdge, Region};
use crate::diagnostic::codes;

/// Cycles, reachability, dead ends, loop bodies and fork/join regions. Returns whether the graph
/// is a well-formed DAG per scope (so template checks can run).
// Node indices index several parallel vectors here; ranges read better than zips.
#[allow(clippy::needless_range_loop)]
pub(super) fn check_flow(cx: &mut Ctx<'_>, a: &mut Analysis) -> bool {
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
pub(super) fn strongly_connected(out: &[Vec<OutEdge>]) -> Vec<Vec<usize>> {
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
pub(super) fn check_nesting(cx: &mut Ctx<'_>, a: &Analysis) -> bool {
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
pub(super) fn resolve_region(
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
