//! The working state a turn receives (`NodeEvent::state`): checked, each problem a
//! `Config.Invalid` naming the field (`state.messages[3]: ...`).

use model_client::Message;
use node_contract::{NodeError, error_names, kind_of};
use serde_json::{Map, Value, json};

/// Token counts and cost, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Totals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub estimated: bool,
}

impl Totals {
    pub(crate) fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    pub(crate) fn add(&mut self, other: &Totals) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cost_usd += other.cost_usd;
        self.estimated |= other.estimated;
    }

    pub(crate) fn plus(mut self, other: &Totals) -> Totals {
        self.add(other);
        self
    }

    /// `{"input_tokens", "output_tokens", "estimated"}`.
    pub(crate) fn usage_json(&self) -> Value {
        json!({"input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "estimated": self.estimated})
    }

    /// Reads `{"usage": {...}, "cost_usd": n}` out of `v` (an output, a summary, `carried`);
    /// absent fields count 0. `at` names `v` in messages.
    pub(crate) fn read(v: &Value, at: &str) -> Result<Totals, NodeError> {
        match v {
            Value::Object(o) => Self::read_map(o, at),
            _ => Err(invalid(at, format!("must be an object, got {}", kind_of(v)))),
        }
    }

    fn read_map(o: &Map<String, Value>, at: &str) -> Result<Totals, NodeError> {
        let mut t = Totals::default();
        match o.get("usage") {
            None | Some(Value::Null) => {}
            Some(Value::Object(u)) => {
                t.input_tokens = count(u, "input_tokens", &format!("{at}.usage"))?;
                t.output_tokens = count(u, "output_tokens", &format!("{at}.usage"))?;
                t.estimated = u.get("estimated").and_then(Value::as_bool).unwrap_or(false);
            }
            Some(other) => {
                return Err(invalid(&format!("{at}.usage"), format!("must be an object, got {}", kind_of(other))));
            }
        }
        t.cost_usd = match o.get("cost_usd") {
            None | Some(Value::Null) => 0.0,
            Some(c) => c
                .as_f64()
                .filter(|c| c.is_finite() && *c >= 0.0)
                .ok_or_else(|| invalid(&format!("{at}.cost_usd"), "must be a number of US dollars, 0 or more"))?,
        };
        Ok(t)
    }
}

fn count(u: &Map<String, Value>, field: &str, at: &str) -> Result<u64, NodeError> {
    match u.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| invalid(&format!("{at}.{field}"), "must be a whole number of tokens")),
    }
}

pub(crate) fn invalid(field: &str, problem: impl std::fmt::Display) -> NodeError {
    NodeError::new(error_names::CONFIG_INVALID, format!("{field}: {problem}"))
}

/// The incoming working state.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Every field as received; those a turn does not rewrite are carried over as they are.
    pub raw: Map<String, Value>,
    pub turn: u64,
    pub input: Option<Value>,
    /// Earlier agents' outputs or summaries (objects).
    pub prior: Vec<Value>,
    /// Spent before this loop: `carried`, or the sum of `prior`.
    pub carried: Totals,
    /// `budget` as given: `Some(None)` is an explicit `null` (no cap).
    pub budget: Option<Option<u64>>,
    pub messages: Vec<Message>,
    pub steps: Vec<Value>,
    /// This loop's usage and cost so far.
    pub spent: Totals,
    /// A supervisor's collected agent summaries (from its transfers' results).
    pub agents: Vec<Value>,
    pub results: Vec<Value>,
}

/// Reads `state` (missing: the first turn, `{"turn": 0}`). The fields a turn rewrites
/// (`messages`, `steps`, `results`, `agents`) are moved out of `raw`; the rest stays to be
/// carried over.
pub(crate) fn parse(state: Option<Value>) -> Result<State, NodeError> {
    let mut raw = match state {
        None | Some(Value::Null) => return Ok(State::default()),
        Some(Value::Object(o)) => o,
        Some(other) => return Err(invalid("state", format!("must be an object, got {}", kind_of(&other)))),
    };
    let messages = raw.remove("messages");
    let steps = raw.remove("steps");
    let results = raw.remove("results");
    let agents = raw.remove("agents");
    let mut s = State::default();
    let get = |f: &str| raw.get(f).filter(|v| !v.is_null());
    s.turn = match get("turn") {
        None => 0,
        Some(v) => v.as_u64().ok_or_else(|| invalid("state.turn", "must be a whole number (model calls so far)"))?,
    };
    s.input = get("input").cloned();
    s.prior = objects(get("prior").cloned(), "state.prior")?;
    s.carried = match get("carried") {
        Some(c) => Totals::read(c, "state.carried")?,
        None => {
            let mut sum = Totals::default();
            for (i, p) in s.prior.iter().enumerate() {
                sum.add(&Totals::read(p, &format!("state.prior[{i}]"))?);
            }
            sum
        }
    };
    s.budget = match raw.get("budget") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(
            v.as_u64().ok_or_else(|| invalid("state.budget", "must be a whole number of tokens (or null: no cap)"))?,
        )),
    };
    s.spent = Totals::read_map(&raw, "state")?;
    s.messages = match messages {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut messages = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                messages
                    .push(serde_json::from_value(item).map_err(|e| {
                        invalid(&format!("state.messages[{i}]"), format!("is not a chat message: {e}"))
                    })?);
            }
            messages
        }
        Some(other) => return Err(invalid("state.messages", format!("must be an array, got {}", kind_of(&other)))),
    };
    s.steps = match steps {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(invalid("state.steps", format!("must be an array, got {}", kind_of(&other)))),
    };
    s.agents = objects(agents, "state.agents")?;
    s.results = objects(results, "state.results")?;
    s.raw = raw;
    Ok(s)
}

fn objects(v: Option<Value>, at: &str) -> Result<Vec<Value>, NodeError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_object() {
                    return Err(invalid(&format!("{at}[{i}]"), format!("must be an object, got {}", kind_of(item))));
                }
            }
            Ok(items)
        }
        Some(other) => Err(invalid(at, format!("must be an array, got {}", kind_of(&other)))),
    }
}
