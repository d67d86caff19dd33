//! Mermaid rendering of a graph (`weft render`). Works on invalid graphs too (best effort), so
//! it can help find what is wrong.

use std::collections::HashMap;
use std::fmt::Write;

use crate::Graph;

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => "#quot;".to_owned(),
            '<' => "#lt;".to_owned(),
            '>' => "#gt;".to_owned(),
            '\n' | '\r' => " ".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The graph as a Mermaid flowchart: one Mermaid node per node (`n<index>`, labelled with id
/// and type; shape by kind), loop bodies as subgraphs, edges labelled with their handle.
pub fn render_mermaid(graph: &Graph) -> String {
    let mut out = String::from("flowchart TD\n");
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        index.entry(node.id.as_str()).or_insert(i);
    }
    let shape = |i: usize| -> String {
        let node = &graph.nodes[i];
        let label = match node.data.get("label").and_then(|l| l.as_str()) {
            Some(l) if !l.is_empty() => format!("{}<br/>{} · {}", escape(l), escape(&node.id), escape(&node.node_type)),
            _ => format!("{}<br/>{}", escape(&node.id), escape(&node.node_type)),
        };
        match node.node_type.as_str() {
            "start" | "end" => format!("n{i}([\"{label}\"])"),
            "condition" | "switch" => format!("n{i}{{\"{label}\"}}"),
            "parallel" | "join" => format!("n{i}[[\"{label}\"]]"),
            "loop" => format!("n{i}[/\"{label}\"/]"),
            "delay" => format!("n{i}((\"{label}\"))"),
            _ => format!("n{i}[\"{label}\"]"),
        }
    };
    let parent_of = |i: usize| -> Option<usize> {
        let p = graph.nodes[i].parent_id.as_deref()?;
        index.get(p).copied().filter(|&p| p != i && graph.nodes[p].node_type == "loop")
    };
    // Top-level nodes first, then each loop's body as a subgraph (nested loops nest).
    fn body(
        graph: &Graph,
        out: &mut String,
        owner: Option<usize>,
        depth: usize,
        shape: &dyn Fn(usize) -> String,
        parent_of: &dyn Fn(usize) -> Option<usize>,
    ) {
        if depth > 32 {
            return;
        }
        let indent = "  ".repeat(depth + 1);
        for i in 0..graph.nodes.len() {
            if parent_of(i) != owner {
                continue;
            }
            let _ = writeln!(out, "{indent}{}", shape(i));
            if graph.nodes[i].node_type == "loop" && (0..graph.nodes.len()).any(|j| parent_of(j) == Some(i)) {
                let _ = writeln!(out, "{indent}subgraph n{i}_body[\"{} body\"]", escape(&graph.nodes[i].id));
                body(graph, out, Some(i), depth + 1, shape, parent_of);
                let _ = writeln!(out, "{indent}end");
                let _ = writeln!(out, "{indent}n{i} -. each item .-> n{i}_body");
            }
        }
    }
    body(graph, &mut out, None, 0, &shape, &parent_of);
    for edge in &graph.edges {
        let (Some(s), Some(t)) = (index.get(edge.source.as_str()), index.get(edge.target.as_str())) else {
            continue;
        };
        match edge.handle() {
            Some("error") => {
                let _ = writeln!(out, "  n{s} -. error .-> n{t}");
            }
            Some(h) => {
                let _ = writeln!(out, "  n{s} -- \"{}\" --> n{t}", escape(h));
            }
            None => {
                let _ = writeln!(out, "  n{s} --> n{t}");
            }
        }
    }
    out
}
