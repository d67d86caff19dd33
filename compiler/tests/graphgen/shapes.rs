//! Graph shapes that are large in one dimension: long chains, wide fans, deep nestings, long
//! conditions, deep data. Written straight to text (no recursion, so the generator itself runs
//! on a small stack), each fits the API's default body limit for the sizes the tests use.
//! Shared by the compiler's and the API's scale tests (`#[path]`-included there).

#![allow(dead_code)]

use std::fmt::Write as _;

/// The API's default request body limit (`WEFT_MAX_BODY_BYTES`).
pub const BODY_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone)]
pub enum Shape {
    /// `start` → `n` nodes of `kind` → `end`.
    Chain { n: usize, kind: &'static str },
    /// `start` → `parallel` with `n` one-node branches → `join` → `end`.
    Fan { n: usize },
    /// `start` → `switch` with `n` cases (and `default`), each to a node of its own → `end`.
    Switch { n: usize },
    /// Loops in loops (`loop`), parallels in parallels (`parallel`), or both alternating
    /// (`mixed`), `depth` levels, around one `code` node.
    Nest { depth: usize, kind: &'static str },
    /// `start` → `condition` with `expr` → `end`.
    Condition { expr: String },
    /// `start` → `end` whose `data.output` is the JSON text `json`.
    EndOutput { json: String },
}

struct W {
    nodes: String,
    edges: String,
}

impl W {
    fn new() -> Self {
        Self { nodes: String::from(r#"{"id":"start","type":"start","data":{}}"#), edges: String::new() }
    }
    /// `data` is JSON text; `parent` a loop id.
    fn node(&mut self, id: &str, ty: &str, data: &str, parent: Option<&str>) {
        let _ = write!(self.nodes, r#",{{"id":"{id}","type":"{ty}","data":{data}"#);
        if let Some(p) = parent {
            let _ = write!(self.nodes, r#","parentId":"{p}""#);
        }
        self.nodes.push('}');
    }
    fn edge(&mut self, s: &str, t: &str, handle: Option<&str>) {
        if !self.edges.is_empty() {
            self.edges.push(',');
        }
        let _ = write!(self.edges, r#"{{"source":"{s}","target":"{t}""#);
        if let Some(h) = handle {
            let _ = write!(self.edges, r#","sourceHandle":"{h}""#);
        }
        self.edges.push('}');
    }
    fn finish(self) -> String {
        format!(
            r#"{{"format":"weft/v1","id":"scale","name":"Scale","nodes":[{}],"edges":[{}]}}"#,
            self.nodes, self.edges
        )
    }
}

/// `data` for a small node of `kind`.
pub fn data(kind: &str) -> &'static str {
    match kind {
        "delay" => r#"{"seconds":0}"#,
        "code" => r#"{"source":"return 1"}"#,
        "http" => r#"{"method":"GET","url":"https://example.com/"}"#,
        "slack" => r#"{"connection":"slack","text":"hi"}"#,
        _ => "{}",
    }
}

/// The graph as JSON text.
pub fn text(shape: &Shape) -> String {
    let mut w = W::new();
    match shape {
        Shape::Chain { n, kind } => {
            let mut prev = "start".to_owned();
            for i in 0..*n {
                let id = format!("n{i}");
                w.node(&id, kind, data(kind), None);
                w.edge(&prev, &id, None);
                prev = id;
            }
            w.node("done", "end", "{}", None);
            w.edge(&prev, "done", None);
        }
        Shape::Fan { n } => {
            w.node("p", "parallel", "{}", None);
            w.node("j", "join", "{}", None);
            w.node("done", "end", "{}", None);
            w.edge("start", "p", None);
            w.edge("j", "done", None);
            for i in 0..*n {
                let id = format!("b{i}");
                w.node(&id, "delay", data("delay"), None);
                w.edge("p", &id, None);
                w.edge(&id, "j", None);
            }
        }
        Shape::Switch { n } => {
            let mut cases = String::new();
            for i in 0..*n {
                if i > 0 {
                    cases.push(',');
                }
                let _ = write!(cases, r#"{{"name":"c{i}","expression":"input.n === {i}"}}"#);
            }
            w.node("s", "switch", &format!(r#"{{"cases":[{cases}]}}"#), None);
            w.node("done", "end", r#"{"output":"ok"}"#, None);
            w.edge("start", "s", None);
            for i in 0..*n {
                let id = format!("d{i}");
                w.node(&id, "delay", data("delay"), None);
                w.edge("s", &id, Some(&format!("c{i}")));
                w.edge(&id, "done", None);
            }
            w.node("other", "delay", data("delay"), None);
            w.edge("s", "other", Some("default"));
            w.edge("other", "done", None);
        }
        Shape::Nest { depth, kind } => {
            // Outside in: `pred`/`succ` are where the next level is wired, `scope` its loop.
            w.node("done", "end", "{}", None);
            let mut pred: Option<String> = Some("start".into());
            let mut succ: Option<String> = Some("done".into());
            let mut scope: Option<String> = None;
            for k in 0..*depth {
                let is_loop = match *kind {
                    "loop" => true,
                    "parallel" => false,
                    _ => k % 2 == 0,
                };
                if is_loop {
                    let id = format!("l{k}");
                    let items = if scope.is_some() { "{{ item }}" } else { "{{ input.items }}" };
                    w.node(&id, "loop", &format!(r#"{{"items":"{items}"}}"#), scope.as_deref());
                    if let Some(p) = &pred {
                        w.edge(p, &id, None);
                    }
                    if let Some(s) = &succ {
                        w.edge(&id, s, None);
                    }
                    pred = None;
                    succ = None;
                    scope = Some(id);
                } else {
                    let (p, a, j) = (format!("p{k}"), format!("a{k}"), format!("j{k}"));
                    w.node(&p, "parallel", "{}", scope.as_deref());
                    w.node(&a, "delay", data("delay"), scope.as_deref());
                    w.node(&j, "join", "{}", scope.as_deref());
                    if let Some(x) = &pred {
                        w.edge(x, &p, None);
                    }
                    if let Some(s) = &succ {
                        w.edge(&j, s, None);
                    }
                    w.edge(&p, &a, None);
                    w.edge(&a, &j, None);
                    pred = Some(p);
                    succ = Some(j);
                }
            }
            w.node("core", "code", data("code"), scope.as_deref());
            if let Some(p) = &pred {
                w.edge(p, "core", None);
            }
            if let Some(s) = &succ {
                w.edge("core", s, None);
            }
        }
        Shape::Condition { expr } => {
            let expr = serde_json::Value::String(expr.clone()).to_string();
            w.node("c", "condition", &format!(r#"{{"expression":{expr}}}"#), None);
            w.node("t", "delay", data("delay"), None);
            w.node("f", "delay", data("delay"), None);
            w.node("done", "end", r#"{"output":"ok"}"#, None);
            w.edge("start", "c", None);
            w.edge("c", "t", Some("true"));
            w.edge("c", "f", Some("false"));
            w.edge("t", "done", None);
            w.edge("f", "done", None);
        }
        Shape::EndOutput { json } => {
            w.node("done", "end", &format!(r#"{{"output":{json}}}"#), None);
            w.edge("start", "done", None);
        }
    }
    w.finish()
}

/// The longest chain of `kind` that fits in [`BODY_LIMIT`].
pub fn max_chain(kind: &'static str) -> usize {
    let size = |n| text(&Shape::Chain { n, kind }).len();
    let per = (size(10_000) - size(0)) / 10_000 + 1;
    let mut n = (BODY_LIMIT - size(0)) / per + 200;
    while size(n) > BODY_LIMIT {
        n -= 50;
    }
    n
}

/// An input for the `Nest` shape's loops: `items` nested `loops` arrays deep, one item each.
pub fn nest_input(loops: usize) -> String {
    format!(r#"{{"items":{}1{}}}"#, "[".repeat(loops), "]".repeat(loops))
}
