//! A generator of valid graphs with every node kind, nested loops and parallels, for the
//! benchmark and the property tests. Deterministic for a given seed.

#![allow(dead_code)]

use serde_json::{Value, json};

/// xorshift64*: small, deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

pub struct Builder {
    pub rng: Rng,
    pub nodes: Vec<Value>,
    pub edges: Vec<Value>,
    counter: usize,
    /// Keep long waits and approvals out, so the graph can stay EXPRESS if asked.
    pub express_only: bool,
}

/// Every node kind appears; conditions lower natively or fall back to JavaScript.
const CONDITIONS: &[&str] = &[
    "input.amount > 100 && input.region === 'eu'",
    "!(input.flag === true) || input.count <= 3",
    "input.tags.length > 2",
    "input.name == null",
    "input.a.b.c !== 'x'",
];

impl Builder {
    pub fn new(seed: u64) -> Self {
        Self { rng: Rng::new(seed), nodes: Vec::new(), edges: Vec::new(), counter: 0, express_only: false }
    }

    fn id(&mut self) -> String {
        self.counter += 1;
        format!("n{}", self.counter)
    }

    fn node(&mut self, ty: &str, data: Value, scope: Option<&str>) -> String {
        let id = self.id();
        let mut n = json!({"id": id, "type": ty, "data": data, "position": {"x": 0, "y": self.counter * 80}});
        if let Some(s) = scope {
            n["parentId"] = json!(s);
        }
        self.nodes.push(n);
        id
    }

    fn edge(&mut self, s: &str, t: &str, handle: Option<&str>) {
        let id = format!("e{}", self.edges.len() + 1);
        let mut e = json!({"id": id, "source": s, "target": t});
        if let Some(h) = handle {
            e["sourceHandle"] = json!(h);
        }
        self.edges.push(e);
    }

    /// A reference to a value that has always been computed before (`prev`, if any).
    fn value_ref(&mut self, prev: Option<&str>, in_loop: bool) -> String {
        match (prev, self.rng.below(3)) {
            (Some(p), 0) => format!("{{{{ nodes.{p}.result }}}}"),
            (_, 1) if in_loop => "{{ item.name }}".to_owned(),
            _ => "{{ input.customer.email }}".to_owned(),
        }
    }

    fn task(&mut self, kind: &str, prev: Option<&str>, scope: Option<&str>) -> String {
        let in_loop = scope.is_some();
        let r = self.value_ref(prev, in_loop);
        let data = match kind {
            "http" => {
                json!({"method": "POST", "url": "https://api.example.com/v1/things", "headers": {"x-id": r}, "body": {"value": r, "n": 3}})
            }
            "code" => json!({"expression": "({ result: input.amount * 2 })"}),
            "llm" => {
                json!({"model": "gpt-4o-mini", "prompt": format!("Summarise: {r}"), "max_tokens": 100})
            }
            // Agents are the heaviest nodes (a loop of states each); kept small so that the
            // 1,000-node graph stays under Step Functions' 1 MB.
            "agent" => json!({"model": "m", "instructions": "Help.", "input": r, "tools": [
                {"name": "get", "type": "http", "method": "GET", "url": "https://x.example/{{ args.q }}"}]}),
            "multi_agent" => {
                json!({"agents": [{"name": "a", "model": "m", "instructions": "Help."}], "strategy": "sequential", "task": r})
            }
            "vector_search" => json!({"collection": "docs", "query": r, "top_k": 3}),
            "vector_upsert" => json!({"collection": "docs", "documents": [r]}),
            "database" => {
                json!({"connection": "db", "query": "SELECT $1", "params": [r], "read_only": true})
            }
            "email" => {
                json!({"connection": "smtp", "from": "weft@example.com", "to": "{{ input.customer.email }}", "subject": "Hi", "body": format!("Value {r}")})
            }
            "slack" => json!({"connection": "slack", "text": format!("Value: {r}")}),
            "approval" => json!({"message": format!("Approve {r}?")}),
            _ => json!({"workflow_id": "child", "input": {"v": r}}),
        };
        let id = self.node(kind, data, scope);
        match self.rng.below(4) {
            0 => {
                let n = self.nodes.last_mut().map(|n| {
                    n["retry"] = json!({"max_attempts": 3, "interval_seconds": 1, "backoff_rate": 2.0});
                    n["timeout_seconds"] = json!(30);
                });
                let _ = n;
            }
            1 => {
                if let Some(n) = self.nodes.last_mut() {
                    n["on_error"] = json!("continue");
                }
            }
            _ => {}
        }
        id
    }

    /// A sequence of about `budget` nodes in `scope`; returns (entry, exit). The exit always
    /// has an output of its own.
    pub fn chain(&mut self, budget: usize, scope: Option<&str>, depth: usize) -> (String, String) {
        let mut entry: Option<String> = None;
        let mut last: Option<String> = None;
        let start_len = self.nodes.len();
        let mut step = 0usize;
        while self.nodes.len() - start_len < budget.max(1) {
            step += 1;
            let remaining = budget.saturating_sub(self.nodes.len() - start_len);
            let choice = if depth >= 3 || remaining < 8 { step % 4 } else { self.rng.below(8) as usize };
            let (e, x) = match choice {
                0 | 1 => {
                    let mut kinds: Vec<&str> =
                        compiler::NODE_TYPES.iter().copied().filter(|t| compiler::is_task_type(t)).collect();
                    if self.express_only {
                        kinds.retain(|k| !matches!(*k, "approval" | "workflow"));
                    }
                    let kind = kinds[(self.rng.below(kinds.len() as u64)) as usize];
                    let id = self.task(kind, last.as_deref(), scope);
                    (id.clone(), id)
                }
                2 => {
                    let expr = CONDITIONS[self.rng.below(CONDITIONS.len() as u64) as usize];
                    let c = self.node("condition", json!({"expression": expr}), scope);
                    let a = self.task("code", last.as_deref(), scope);
                    let b = self.task("slack", last.as_deref(), scope);
                    let d = self.node("delay", json!({"seconds": 1}), scope);
                    let m = self.task("code", None, scope);
                    self.edge(&c, &a, Some("true"));
                    self.edge(&c, &b, Some("false"));
                    self.edge(&a, &d, None);
                    self.edge(&b, &d, None);
                    self.edge(&d, &m, None);
                    (c, m)
                }
                3 => {
                    let s = self.node(
                        "switch",
                        json!({"cases": [{"name": "big", "expression": "input.amount >= 1000"}, {"name": "odd", "expression": "input.amount % 2 === 1"}]}),
                        scope,
                    );
                    let a = self.task("http", last.as_deref(), scope);
                    let b = self.task("email", last.as_deref(), scope);
                    let c = self.task("code", last.as_deref(), scope);
                    let m = self.task("code", None, scope);
                    self.edge(&s, &a, Some("big"));
                    self.edge(&s, &b, Some("odd"));
                    self.edge(&s, &c, Some("default"));
                    for x in [&a, &b, &c] {
                        self.edge(x, &m, None);
                    }
                    (s, m)
                }
                4 | 5 => {
                    let items = if scope.is_some() && self.rng.below(2) == 0 {
                        "{{ item.children }}"
                    } else {
                        "{{ input.items }}"
                    };
                    let l = self.node("loop", json!({"items": items, "concurrency": 4}), scope);
                    let inner = (remaining / 3).max(2);
                    let _ = self.chain(inner, Some(&l), depth + 1);
                    (l.clone(), l)
                }
                _ => {
                    let p = self.node("parallel", json!({}), scope);
                    let k = 2 + self.rng.below(2) as usize;
                    let mut finals = Vec::new();
                    for _ in 0..k {
                        let (be, bx) = self.chain((remaining / (k + 2)).max(1), scope, depth + 1);
                        self.edge(&p, &be, None);
                        finals.push(bx);
                    }
                    let j = self.node("join", json!({}), scope);
                    for f in finals {
                        self.edge(&f, &j, None);
                    }
                    (p, j)
                }
            };
            if let Some(l) = &last {
                self.edge(l, &e, None);
            }
            if entry.is_none() {
                entry = Some(e);
            }
            last = Some(x);
        }
        (entry.unwrap_or_default(), last.unwrap_or_default())
    }
}

/// A valid graph of about `size` nodes.
pub fn graph(size: usize, seed: u64) -> Value {
    let mut b = Builder::new(seed);
    b.nodes.push(json!({"id": "start", "type": "start", "data": {}}));
    let (entry, exit) = b.chain(size.saturating_sub(2), None, 0);
    b.nodes.push(json!({"id": "done", "type": "end", "data": {"output": {"last": format!("{{{{ nodes.{exit} }}}}"), "input": "{{ input }}"}}}));
    b.edge("start", &entry, None);
    b.edge(&exit, "done", None);
    json!({"format": "weft/v1", "id": format!("generated-{seed}"), "name": "Generated", "settings": {"type": "auto"}, "nodes": b.nodes, "edges": b.edges})
}

/// Checks that every `StartAt`, `Next`, `Default` and Catch/Choice `Next` names a state of the
/// same `States` map, recursively into Parallel branches and Map processors, and that every
/// state either moves on or ends.
pub fn check_references(machine: &Value) -> Result<(), String> {
    let states = machine.get("States").and_then(Value::as_object).ok_or("no States")?;
    let start = machine.get("StartAt").and_then(Value::as_str).ok_or("no StartAt")?;
    if !states.contains_key(start) {
        return Err(format!("StartAt {start} is not a state"));
    }
    for (name, s) in states {
        let mut targets: Vec<&str> = Vec::new();
        for key in ["Next", "Default"] {
            if let Some(t) = s.get(key).and_then(Value::as_str) {
                targets.push(t);
            }
        }
        for list in ["Choices", "Catch"] {
            for r in s.get(list).and_then(Value::as_array).into_iter().flatten() {
                targets
                    .push(r.get("Next").and_then(Value::as_str).ok_or(format!("{name}: a {list} entry without Next"))?);
            }
        }
        for t in targets {
            if !states.contains_key(t) {
                return Err(format!("{name} goes to {t}, which is not a state here"));
            }
        }
        let ty = s.get("Type").and_then(Value::as_str).unwrap_or_default();
        let ends = s.get("End") == Some(&Value::Bool(true)) || matches!(ty, "Succeed" | "Fail" | "Choice");
        if !ends && s.get("Next").is_none() {
            return Err(format!("{name} neither ends nor moves on"));
        }
        for b in s.get("Branches").and_then(Value::as_array).into_iter().flatten() {
            check_references(b)?;
        }
        if let Some(p) = s.get("ItemProcessor") {
            check_references(p)?;
        }
    }
    Ok(())
}
pub mod shapes;
