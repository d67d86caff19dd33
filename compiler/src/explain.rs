//! `weft compile --explain`: a static estimate of what one run does and costs.
//!
//! The estimate walks the compiled ASL: a Choice takes its most expensive way (an upper bound,
//! except that the rare fallback from a native condition to JavaScript is not counted), a
//! Parallel runs all its branches, and a Map runs its body once per item (`items_per_loop`
//! items assumed for the total; the per-item figure of each loop is reported separately).
//! Prices are those of [`PriceTable::default`], documented in `docs/graph-format.md`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::{Compiled, Graph, WorkflowType};

/// Prices (USD, us-east-1, 2026) and the run-time assumptions behind the estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceTable {
    /// STANDARD: per state transition.
    pub standard_per_transition: f64,
    /// EXPRESS: per execution (request).
    pub express_per_request: f64,
    /// EXPRESS: per GB-second of duration, billed at `express_memory_mb`.
    pub express_per_gb_second: f64,
    pub express_memory_mb: f64,
    /// Lambda: per invocation.
    pub lambda_per_request: f64,
    /// Lambda (arm64): per GB-second.
    pub lambda_per_gb_second: f64,
    /// Memory of every node function.
    pub lambda_memory_mb: f64,
    /// Assumed duration of one invocation, per node type, in milliseconds.
    pub lambda_ms: Vec<(String, f64)>,
    /// Assumed duration for node types not in `lambda_ms`.
    pub default_lambda_ms: f64,
}

impl Default for PriceTable {
    fn default() -> Self {
        let ms = [
            ("http", 300.0),
            ("code", 20.0),
            ("llm", 3_000.0),
            ("agent", 15_000.0),
            ("multi_agent", 45_000.0),
            ("vector_search", 200.0),
            ("vector_upsert", 500.0),
            ("database", 50.0),
            ("email", 300.0),
            ("slack", 300.0),
            ("approval", 100.0),
        ];
        Self {
            standard_per_transition: 0.000_025,
            express_per_request: 0.000_001,
            express_per_gb_second: 0.000_016_67,
            express_memory_mb: 64.0,
            lambda_per_request: 0.000_000_2,
            lambda_per_gb_second: 0.000_013_333_4,
            lambda_memory_mb: 128.0,
            lambda_ms: ms.iter().map(|(t, m)| ((*t).to_owned(), *m)).collect(),
            default_lambda_ms: 100.0,
        }
    }
}

impl PriceTable {
    fn ms(&self, node_type: &str) -> f64 {
        self.lambda_ms.iter().find(|(t, _)| t == node_type).map_or(self.default_lambda_ms, |(_, m)| *m)
    }
}

/// One loop's Lambda invocations per item (nested loops counted with the assumed item count).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopInvocations {
    pub loop_id: String,
    pub per_item: f64,
}

/// What `weft compile --explain` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explain {
    pub workflow_type: WorkflowType,
    pub standard_reasons: Vec<String>,
    pub states: usize,
    /// Invocations per run outside any loop.
    pub lambda_invocations_fixed: f64,
    pub loops: Vec<LoopInvocations>,
    /// The assumed number of items per loop run.
    pub items_per_loop: u64,
    /// Invocations per run with `items_per_loop` items in every loop (worst-case branches).
    pub lambda_invocations_total: f64,
    pub state_transitions: f64,
    pub cost_per_1000_runs_usd: f64,
    pub prices: PriceTable,
}

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "workflow type:       {}", self.workflow_type)?;
        for r in &self.standard_reasons {
            writeln!(f, "  (STANDARD because {r})")?;
        }
        writeln!(f, "states:              {}", self.states)?;
        writeln!(f, "lambda invocations:  {} per run outside loops", trim(self.lambda_invocations_fixed))?;
        for l in &self.loops {
            writeln!(f, "  loop `{}`:  {} per item", l.loop_id, trim(l.per_item))?;
        }
        writeln!(
            f,
            "  total:             {} per run with {} items per loop (worst-case branches)",
            trim(self.lambda_invocations_total),
            self.items_per_loop
        )?;
        writeln!(f, "state transitions:   {} per run", trim(self.state_transitions))?;
        writeln!(
            f,
            "estimated cost:      ${:.4} per 1,000 runs (us-east-1 list prices; see docs/graph-format.md)",
            self.cost_per_1000_runs_usd
        )
    }
}

fn trim(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.1}") }
}

#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    invocations: f64,
    transitions: f64,
    lambda_gb_s: f64,
    /// Wall time in seconds along the path (EXPRESS duration).
    seconds: f64,
}

impl Cost {
    fn add(self, o: Cost) -> Cost {
        Cost {
            invocations: self.invocations + o.invocations,
            transitions: self.transitions + o.transitions,
            lambda_gb_s: self.lambda_gb_s + o.lambda_gb_s,
            seconds: self.seconds + o.seconds,
        }
    }
    fn scale(self, k: f64) -> Cost {
        Cost {
            invocations: self.invocations * k,
            transitions: self.transitions * k,
            lambda_gb_s: self.lambda_gb_s * k,
            seconds: self.seconds * k,
        }
    }
}

/// [`explain_with`] with the default prices and 10 items per loop.
pub fn explain(graph: &Graph, compiled: &Compiled) -> Explain {
    explain_with(graph, compiled, &PriceTable::default(), 10)
}

pub fn explain_with(_graph: &Graph, compiled: &Compiled, prices: &PriceTable, items_per_loop: u64) -> Explain {
    let mut w = Walker { prices, items: items_per_loop as f64, loops: Vec::new(), depth: 0 };
    let total = w.machine(&compiled.asl, 0);
    let fixed = {
        let mut w0 = Walker { prices, items: 0.0, loops: Vec::new(), depth: 0 };
        w0.machine(&compiled.asl, 0).invocations
    };
    let cost = match compiled.workflow_type {
        WorkflowType::Standard => {
            // One more transition for the execution's start.
            (total.transitions + 1.0) * prices.standard_per_transition
        }
        WorkflowType::Express => {
            // Billed in 100 ms increments at the configured memory.
            let billed = (total.seconds * 10.0).ceil().max(1.0) / 10.0;
            prices.express_per_request + billed * prices.express_memory_mb / 1024.0 * prices.express_per_gb_second
        }
    } + total.invocations * prices.lambda_per_request
        + total.lambda_gb_s * prices.lambda_per_gb_second;
    Explain {
        workflow_type: compiled.workflow_type,
        standard_reasons: compiled.standard_reasons.clone(),
        states: compiled.state_count,
        lambda_invocations_fixed: fixed,
        loops: w.loops,
        items_per_loop,
        lambda_invocations_total: total.invocations,
        state_transitions: total.transitions,
        cost_per_1000_runs_usd: cost * 1000.0,
        prices: prices.clone(),
    }
}

struct Walker<'p> {
    prices: &'p PriceTable,
    items: f64,
    loops: Vec<LoopInvocations>,
    depth: usize,
}

impl Walker<'_> {
    fn machine(&mut self, m: &Value, depth: usize) -> Cost {
        let (Some(start), Some(states)) =
            (m.get("StartAt").and_then(Value::as_str), m.get("States").and_then(Value::as_object))
        else {
            return Cost::default();
        };
        if depth > 64 {
            return Cost::default();
        }
        self.depth = depth;
        self.path(start, states, depth)
    }

    /// The costliest path from `start` (longest by invocations, then transitions), memoized per
    /// state. Walks with an explicit stack (a chain of 10,000 states would otherwise recurse
    /// 10,000 deep), visiting states in the order a recursive walk would, so loops are listed in
    /// definition order. A state already on the current path counts as free (compiled
    /// definitions have no cycles).
    fn path<'s>(&mut self, start: &'s str, states: &'s serde_json::Map<String, Value>, depth: usize) -> Cost {
        enum Step<'s> {
            Enter(&'s str),
            Leave(&'s str, Cost, Vec<&'s str>),
        }
        let mut memo: HashMap<&'s str, Cost> = HashMap::new();
        let mut open: HashSet<&'s str> = HashSet::new();
        let mut steps = vec![Step::Enter(start)];
        while let Some(step) = steps.pop() {
            match step {
                Step::Enter(name) => {
                    if memo.contains_key(name) || open.contains(name) {
                        continue;
                    }
                    let Some((key, s)) = states.get_key_value(name) else {
                        continue;
                    };
                    let name = key.as_str();
                    open.insert(name);
                    let own = self.own(name, s, depth);
                    let nexts = nexts(s);
                    let children: Vec<Step<'s>> = nexts.iter().rev().map(|&n| Step::Enter(n)).collect();
                    steps.push(Step::Leave(name, own, nexts));
                    steps.extend(children);
                }
                Step::Leave(name, own, nexts) => {
                    let mut best = Cost::default();
                    for n in nexts {
                        let c = memo.get(n).copied().unwrap_or_default();
                        if c.invocations > best.invocations
                            || (c.invocations == best.invocations && c.transitions > best.transitions)
                        {
                            best = c;
                        }
                    }
                    open.remove(name);
                    memo.insert(name, own.add(best));
                }
            }
        }
        memo.get(start).copied().unwrap_or_default()
    }

    /// The cost of one state on its own (nested branches and loop bodies included).
    fn own(&mut self, name: &str, s: &Value, depth: usize) -> Cost {
        let mut own = Cost { transitions: 1.0, ..Cost::default() };
        let resource = s.get("Resource").and_then(Value::as_str).unwrap_or_default();
        if resource.starts_with("arn:aws:states:::lambda:invoke") {
            let node_type = s.pointer("/Parameters/Payload/node/type").and_then(Value::as_str).unwrap_or_default();
            let ms = self.prices.ms(node_type);
            own.invocations = 1.0;
            own.lambda_gb_s = ms / 1000.0 * self.prices.lambda_memory_mb / 1024.0;
            if !resource.ends_with("waitForTaskToken") {
                own.seconds = ms / 1000.0;
            }
        }
        if let Some(secs) = s.get("Seconds").and_then(Value::as_f64) {
            own.seconds += secs;
        }
        if let Some(branches) = s.get("Branches").and_then(Value::as_array) {
            let mut longest: f64 = 0.0;
            for b in branches {
                let c = self.machine(b, depth + 1);
                longest = longest.max(c.seconds);
                own = own.add(Cost { seconds: 0.0, ..c });
            }
            own.seconds += longest;
        }
        if let Some(body) = s.get("ItemProcessor") {
            let per_item = self.machine(body, depth + 1);
            if self.items > 0.0 {
                self.loops.push(LoopInvocations { loop_id: name.to_owned(), per_item: per_item.invocations });
            }
            own = own.add(per_item.scale(self.items));
        }
        own
    }
}

/// The states a state can go on to (guards that fall back to JavaScript, the rare path, are
/// not counted).
fn nexts(s: &Value) -> Vec<&str> {
    let mut nexts: Vec<&str> = Vec::new();
    if let Some(n) = s.get("Next").and_then(Value::as_str) {
        nexts.push(n);
    }
    if let Some(rules) = s.get("Choices").and_then(Value::as_array) {
        for r in rules {
            if let Some(n) = r.get("Next").and_then(Value::as_str)
                && !is_guard_target(n)
            {
                nexts.push(n);
            }
        }
        if let Some(d) = s.get("Default").and_then(Value::as_str) {
            nexts.push(d);
        }
    }
    nexts
}

fn is_guard_target(name: &str) -> bool {
    name.rsplit_once(".js").is_some_and(|(_, k)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
}
