//! JSONata for states with `QueryLanguage: "JSONata"`.
//!
//! # The engine underneath: `jsonata-core`
//!
//! Two Rust JSONata crates were measured against the JSONata cases of the conformance corpus and
//! a set of everyday expressions (paths, predicates, `$count`/`$sum`/`$split`/`$join`,
//! conditionals, object constructors, `:=` bindings, lambdas with `$map`/`$filter`/`$reduce`,
//! `$formatNumber`, `$match`, `$now`):
//!
//! - `jsonata-rs` 0.3 answers most of them but calls itself incomplete and it shows: `$now`,
//!   `$formatNumber` and others are missing (T1006), `$match` answers the wrong index, object
//!   keys come out in hash order (Step Functions keeps insertion order), an expression cannot be
//!   parsed once and evaluated many times (it is tied to a bump arena and re-parsed on each
//!   `JsonAta::new`), and custom functions must be plain `fn` pointers.
//! - `jsonata-core` 2.2 (a port that targets the jsonata-js 2.x reference and passes its test
//!   suite) answered all of them, keeps key order, parses once into a plain `AstNode` that is
//!   `Send + Sync`, and takes host functions as closures. It is the one used here.
//!
//! This module wraps it with what Step Functions adds: the `$states` binding, Assign variables
//! as `$name`, AWS's six extra functions (`$partition`, `$range`, `$hash`, `$random`, `$uuid`,
//! `$parse`; `$eval` is disabled as on AWS), AWS's definition-time checks (a path at the top
//! level and `$$` are refused), the five-second evaluation limit, and AWS's conversion of
//! results to JSON (undefined is [`None`]; a non-finite number becomes the string `"Infinity"`,
//! `"-Infinity"` or `"NaN"`).

use std::rc::Rc;

use indexmap::IndexMap;
use jsonata_core::ast::{AstNode, PathStep, Stage};
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorError, EvaluatorOptions};
use jsonata_core::parser;
use jsonata_core::value::{JArray, JValue};
use serde_json::{Number, Value};

use crate::ExprError;
use crate::intrinsics::{JavaRandom, hash_hex};

/// How long one evaluation may run, as on AWS.
const TIMEOUT_MS: u64 = 5_000;
/// AWS refuses a `$range` longer than this.
const MAX_RANGE_ITEMS: i64 = 360_145;

/// A compiled JSONata expression (the inside of `{% ... %}`).
#[derive(Debug, Clone)]
pub struct Jsonata {
    source: String,
    ast: AstNode,
    /// Names referenced as `$name` (without `$`), `states` included, each once.
    variables: Vec<String>,
    /// For each of `variables`, the parts of its value the expression can reach: only those are
    /// converted to JSONata values on each evaluation, so a large input costs nothing when the
    /// expression reads one field of it.
    projections: Vec<Projection>,
    /// Fields read as `$states.<field>`, each once.
    states_fields: Vec<String>,
    /// Which of AWS's added functions the expression can call.
    aws_functions: Vec<AwsFunction>,
    /// For an expression that is only `$name` or `$name.a.b`: the name and the member chain,
    /// read straight from the JSON (see [`Jsonata::eval`]).
    simple_path: Option<(String, Vec<String>)>,
}

/// What of a value an expression reads: all of it, or only some object members.
#[derive(Debug, Clone, Default)]
struct Projection {
    whole: bool,
    members: Vec<(String, Projection)>,
}

impl Projection {
    fn insert(&mut self, chain: &[String]) {
        let Some((first, rest)) = chain.split_first() else {
            self.whole = true;
            return;
        };
        let child = match self.members.iter().position(|(k, _)| k == first) {
            Some(i) => &mut self.members[i].1,
            None => {
                self.members.push((first.clone(), Projection::default()));
                let last = self.members.len() - 1;
                &mut self.members[last].1
            }
        };
        child.insert(rest);
    }

    /// The part of `v` this projection reaches, as a JSONata value. Anything but an object is
    /// taken whole, because a path step over an array reads every element.
    fn apply(&self, v: &Value) -> JValue {
        match v {
            Value::Object(map) if !self.whole => {
                let m: IndexMap<String, JValue> =
                    self.members.iter().filter_map(|(k, p)| Some((k.clone(), p.apply(map.get(k)?)))).collect();
                JValue::object(m)
            }
            other => to_jvalue(other),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AwsFunction {
    Partition,
    Range,
    Hash,
    Random,
    Uuid,
    Parse,
    Eval,
}

impl AwsFunction {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "partition" => Self::Partition,
            "range" => Self::Range,
            "hash" => Self::Hash,
            "random" => Self::Random,
            "uuid" => Self::Uuid,
            "parse" => Self::Parse,
            "eval" => Self::Eval,
            _ => return None,
        })
    }
}

/// Compiles an expression. Errors are AWS's definition errors: `INVALID_JSONATA_EXPRESSION` for
/// one that does not parse, `UNSUPPORTED_JSONATA_EXPRESSION` for one Step Functions refuses (a
/// path read from the top-level context, `$$`); the engine adds the location.
pub fn compile(expr: &str) -> Result<Jsonata, ExprError> {
    let ast = parser::parse(expr).map_err(|e| ExprError::new("INVALID_JSONATA_EXPRESSION", e.to_string()))?;
    let mut walk = Walk::default();
    walk.node(&ast, true)?;
    let mut aws_functions = Vec::new();
    for name in walk.functions.iter().chain(walk.variables.iter().map(|(n, _)| n)) {
        if let Some(f) = AwsFunction::from_name(name)
            && !aws_functions.contains(&f)
        {
            aws_functions.push(f);
        }
    }
    let (variables, projections) = walk.variables.into_iter().unzip();
    let simple_path = simple_path(&ast);
    Ok(Jsonata {
        simple_path,
        source: expr.to_owned(),
        ast,
        variables,
        projections,
        states_fields: walk.states_fields,
        aws_functions,
    })
}

/// Extracts the expression from a string of the form `{% ... %}` (AWS requires the delimiters at
/// both ends, with no surrounding whitespace); `None` for any other string.
pub fn strip_delimiters(s: &str) -> Option<&str> {
    s.strip_prefix("{%")?.strip_suffix("%}")
}

impl Jsonata {
    /// The expression's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Variables the expression reads, without `$` (includes `states` and any local `:=` names).
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// The fields of `$states` the expression reads (`input`, `result`, `errorOutput`,
    /// `context`), so the engine can refuse `$states.errorOutput` outside a catcher as AWS does.
    pub fn states_fields(&self) -> &[String] {
        &self.states_fields
    }

    /// Evaluates with `$states` bound to `states` (`{input, result?, errorOutput?, context}`) and
    /// `vars` giving Assign variables by name without `$`. `Ok(None)` means the result is
    /// undefined; the engine decides where that is AWS's `States.QueryEvaluationError`
    /// ([`undefined_cause`]). Evaluation errors are `States.QueryEvaluationError` with JSONata's
    /// own message (e.g. `T2001: The left side of the + operator must evaluate to a number`).
    pub fn eval(&self, states: &Value, vars: &dyn Fn(&str) -> Option<Value>) -> Result<Option<Value>, ExprError> {
        // A plain path over objects is read from the JSON directly: it gives what JSONata gives,
        // keeps integers beyond 2^53 exact (JSONata numbers are doubles; AWS keeps a long), and
        // skips the conversions. Anything else, such as a step over an array, which JSONata maps
        // over the elements, goes to the evaluator.
        if let Some((name, chain)) = &self.simple_path {
            let owned;
            let root = if name == "states" {
                states
            } else {
                match vars(name) {
                    Some(v) => {
                        owned = v;
                        &owned
                    }
                    None => return Ok(None),
                }
            };
            let mut current = Some(root);
            for key in chain {
                current = match current {
                    Some(Value::Object(m)) => match m.get(key) {
                        Some(v) => Some(v),
                        None => return Ok(None),
                    },
                    _ => None,
                };
            }
            if let Some(v) = current {
                return Ok(Some(whole_floats_as_integers(v)));
            }
        }
        let mut context = Context::new();
        for (name, projection) in self.variables.iter().zip(&self.projections) {
            if name == "states" {
                context.bind("states".to_owned(), projection.apply(states));
            } else if let Some(v) = vars(name) {
                context.bind(name.clone(), projection.apply(&v));
            }
        }
        let options = EvaluatorOptions { timeout_ms: Some(TIMEOUT_MS), ..Default::default() };
        let mut evaluator = Evaluator::with_options(context, options);
        register_aws_functions(&mut evaluator, &self.aws_functions)?;
        let result = evaluator
            .evaluate(&self.ast, &JValue::Undefined)
            .map_err(|e| ExprError::query(aws_message(e.message())))?;
        check_result_shape(&result)?;
        Ok(from_jvalue(&result))
    }
}

/// AWS's cause for an expression whose result is undefined where a value is needed; `field` is
/// the location relative to the state, such as `Output`, `Output/a/b[0]` or `Assign/x`.
pub fn undefined_cause(expr: &str, field: &str) -> String {
    format!("The JSONata expression '{expr}' specified for the field '{field}' returned nothing (undefined).")
}

/// AWS's cause for an expression that failed; `message` is the cause [`Jsonata::eval`] returned.
pub fn eval_error_cause(expr: &str, field: &str, message: &str) -> String {
    format!(
        "The JSONata expression '{expr}' specified for the field '{field}' threw an error during evaluation. {message}"
    )
}

/// Rewrites jsonata-core's wording of an error into the jsonata-js wording AWS reports, where the
/// two are known to differ.
fn aws_message(msg: &str) -> String {
    for side in ["T2001: The left side of the ", "T2002: The right side of the "] {
        if let Some(rest) = msg.strip_prefix(side)
            && let Some((op, tail)) = rest.split_once(' ')
            && !op.starts_with('"')
        {
            return format!("{side}\"{op}\" {tail}");
        }
    }
    if msg.starts_with("T1006: Attempted to invoke a non-function") {
        return "T1006: Attempted to invoke a non-function".to_owned();
    }
    if let Some(head) = msg.strip_prefix("D3138: ") {
        let head = head.rsplit_once(" (").map_or(head, |(h, tail)| if tail.ends_with(" values)") { h } else { head });
        return format!("D3138: {head}");
    }
    if msg == "D3020: Third argument of split function must be a positive number" {
        return "D3020: Third argument of split function must evaluate to a positive number".to_owned();
    }
    if msg == "D3010: Pattern cannot be empty" {
        return "Second argument of replace function cannot be an empty string".to_owned();
    }
    if let Some(value) = msg.strip_prefix("D3030: Cannot convert '").and_then(|r| r.strip_suffix("' to number")) {
        return format!("D3030: Unable to cast value to a number: {}", Value::String(value.to_owned()));
    }
    msg.to_owned()
}

/// Collects variable names and checks AWS's definition-time rules.
#[derive(Default)]
struct Walk {
    variables: Vec<(String, Projection)>,
    states_fields: Vec<String>,
    /// Names of the functions called as `$name(...)`.
    functions: Vec<String>,
}

impl Walk {
    /// Records that `$name` is read through `chain` (object member names; empty: all of it).
    fn variable(&mut self, name: &str, chain: &[String]) {
        if name.is_empty() {
            return;
        }
        let i = match self.variables.iter().position(|(v, _)| v == name) {
            Some(i) => i,
            None => {
                self.variables.push((name.to_owned(), Projection::default()));
                self.variables.len() - 1
            }
        };
        self.variables[i].1.insert(chain);
    }

    /// `top` is true where the expression would read the top-level context item, which Step
    /// Functions does not provide: a path that starts there is refused.
    fn node(&mut self, node: &AstNode, top: bool) -> Result<(), ExprError> {
        match node {
            AstNode::String(_)
            | AstNode::Number(_)
            | AstNode::Boolean(_)
            | AstNode::Null
            | AstNode::Undefined
            | AstNode::Placeholder
            | AstNode::Regex { .. }
            | AstNode::Wildcard
            | AstNode::Descendant
            | AstNode::Parent(_) => Ok(()),
            AstNode::Name(name) => {
                if top {
                    Err(unsupported(format!("Reference to '{name}' at the top level is not supported.")))
                } else {
                    Ok(())
                }
            }
            AstNode::Variable(name) => {
                self.variable(name, &[]);
                Ok(())
            }
            AstNode::ParentVariable(_) => Err(unsupported("Reference to '$$' is not supported.")),
            AstNode::Path { steps } => self.path(steps, top),
            AstNode::Binary { lhs, rhs, .. } => {
                self.node(lhs, top)?;
                self.node(rhs, top)
            }
            AstNode::Unary { operand, .. } => self.node(operand, top),
            AstNode::Function { name, args, .. } => {
                if !self.functions.contains(name) {
                    self.functions.push(name.clone());
                }
                self.nodes(args, top)
            }
            AstNode::Call { procedure, args } => {
                self.node(procedure, top)?;
                self.nodes(args, top)
            }
            // A lambda body keeps the context of the expression that defines it.
            AstNode::Lambda { body, .. } => self.node(body, top),
            AstNode::Array(items) | AstNode::Block(items) | AstNode::ArrayGroup(items) => self.nodes(items, top),
            AstNode::Object(pairs) => {
                for (k, v) in pairs {
                    self.node(k, top)?;
                    self.node(v, top)?;
                }
                Ok(())
            }
            AstNode::ObjectTransform { input, pattern } => {
                self.node(input, top)?;
                for (k, v) in pattern {
                    self.node(k, false)?;
                    self.node(v, false)?;
                }
                Ok(())
            }
            AstNode::Conditional { condition, then_branch, else_branch } => {
                self.node(condition, top)?;
                self.node(then_branch, top)?;
                if let Some(e) = else_branch {
                    self.node(e, top)?;
                }
                Ok(())
            }
            AstNode::FunctionApplication(expr) => self.node(expr, false),
            AstNode::Sort { input, terms } => {
                self.node(input, top)?;
                for (t, _) in terms {
                    self.node(t, false)?;
                }
                Ok(())
            }
            AstNode::Transform { location, update, delete } => {
                self.node(location, false)?;
                self.node(update, false)?;
                if let Some(d) = delete {
                    self.node(d, false)?;
                }
                Ok(())
            }
        }
    }

    fn nodes(&mut self, nodes: &[AstNode], top: bool) -> Result<(), ExprError> {
        for n in nodes {
            self.node(n, top)?;
        }
        Ok(())
    }

    /// Only the first step of a path reads the context it is evaluated in. A path that starts at
    /// a variable records which members of it are read.
    fn path(&mut self, steps: &[PathStep], top: bool) -> Result<(), ExprError> {
        let mut rest = steps;
        if let Some((first, after)) = steps.split_first()
            && let AstNode::Variable(name) = &first.node
        {
            let mut chain = Vec::new();
            if first.stages.is_empty() {
                for step in after {
                    let AstNode::Name(member) = &step.node else {
                        break;
                    };
                    chain.push(member.clone());
                    if !step.stages.is_empty() {
                        break;
                    }
                }
            }
            if name == "states"
                && let Some(field) = chain.first()
                && !self.states_fields.contains(field)
            {
                self.states_fields.push(field.clone());
            }
            self.variable(name, &chain);
            self.stages(first)?;
            rest = after;
        }
        let skipped = steps.len() - rest.len();
        for (i, step) in rest.iter().enumerate() {
            self.node(&step.node, top && i + skipped == 0)?;
            self.stages(step)?;
        }
        Ok(())
    }

    fn stages(&mut self, step: &PathStep) -> Result<(), ExprError> {
        for stage in &step.stages {
            if let Stage::Filter(f) = stage {
                self.node(f, false)?;
            }
        }
        Ok(())
    }
}

fn unsupported(cause: impl Into<String>) -> ExprError {
    ExprError::new("UNSUPPORTED_JSONATA_EXPRESSION", cause)
}

/// JSON into JSONata's value model (every number becomes a double, as in jsonata-js).
fn to_jvalue(v: &Value) -> JValue {
    match v {
        Value::Null => JValue::Null,
        Value::Bool(b) => JValue::Bool(*b),
        Value::Number(n) => JValue::Number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => JValue::String(Rc::from(s.as_str())),
        Value::Array(items) => {
            let flat = !items.iter().any(Value::is_array);
            JValue::Array(JArray::new_flat(items.iter().map(to_jvalue).collect(), flat))
        }
        Value::Object(map) => {
            let m: IndexMap<String, JValue> = map.iter().map(|(k, v)| (k.clone(), to_jvalue(v))).collect();
            JValue::object(m)
        }
    }
}

/// A JSONata result as JSON; `None` for undefined (and for a function, which has no JSON form).
/// How deeply a result may nest (AWS's limit for JSON values, as the engine's for state outputs).
const MAX_RESULT_DEPTH: usize = 1000;
/// How many values a result may hold, counting shared ones each time they occur (as converting
/// does): more could never fit in a 256 KiB payload, and `[$a, $a]` doubling in a `$reduce`
/// would otherwise take exponential time and memory to convert.
const MAX_RESULT_VALUES: usize = 262_144;

/// Refuses a result [`from_jvalue`] should not convert: one nested deeper than
/// [`MAX_RESULT_DEPTH`] (conversion recurses once per level) or with more than
/// [`MAX_RESULT_VALUES`] values. Walks with an explicit stack and stops at the first excess.
fn check_result_shape(v: &JValue) -> Result<(), ExprError> {
    let mut stack: Vec<(&JValue, usize)> = vec![(v, 0)];
    let mut count = 0usize;
    while let Some((v, depth)) = stack.pop() {
        count += 1;
        if count > MAX_RESULT_VALUES {
            return Err(ExprError::query(format!("The JSONata result holds more than {MAX_RESULT_VALUES} values.")));
        }
        let children: Box<dyn Iterator<Item = &JValue>> = match v {
            JValue::Array(items) => Box::new(items.iter()),
            JValue::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth + 1 > MAX_RESULT_DEPTH {
            return Err(ExprError::query(format!(
                "The JSONata result is nested deeper than {MAX_RESULT_DEPTH} levels."
            )));
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

fn from_jvalue(v: &JValue) -> Option<Value> {
    Some(match v {
        JValue::Null => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(f) => number_to_json(*f),
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(items) => Value::Array(items.iter().filter_map(from_jvalue).collect()),
        JValue::Object(map) => {
            Value::Object(map.iter().filter_map(|(k, v)| Some((k.clone(), from_jvalue(v)?))).collect())
        }
        JValue::Undefined | JValue::Lambda(_) | JValue::Builtin { .. } | JValue::Regex { .. } => {
            return None;
        }
    })
}

/// `$name` or `$name.a.b` with no predicates, as (name, members).
fn simple_path(ast: &AstNode) -> Option<(String, Vec<String>)> {
    match ast {
        AstNode::Variable(name) if !name.is_empty() => Some((name.clone(), Vec::new())),
        AstNode::Path { steps } => {
            let plain = |s: &PathStep| {
                s.stages.is_empty()
                    && s.focus.is_none()
                    && s.index_var.is_none()
                    && s.ancestor_label.is_none()
                    && !s.is_tuple
            };
            let (first, rest) = steps.split_first()?;
            let AstNode::Variable(name) = &first.node else {
                return None;
            };
            if name.is_empty() || !steps.iter().all(plain) {
                return None;
            }
            let chain = rest
                .iter()
                .map(|s| match &s.node {
                    AstNode::Name(n) => Some(n.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Some((name.clone(), chain))
        }
        _ => None,
    }
}

/// A copy of `v` with whole floats written as integers, as [`number_to_json`] writes JSONata's.
fn whole_floats_as_integers(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => n.as_f64().map_or(Value::Null, number_to_json),
        Value::Array(items) => Value::Array(items.iter().map(whole_floats_as_integers).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), whole_floats_as_integers(x))).collect()),
        other => other.clone(),
    }
}

/// Whole numbers are written as integers (AWS prints `3`, not `3.0`, and `0` for `-0`); numbers
/// JSON cannot hold are written as the string JavaScript names them by, as AWS does.
fn number_to_json(f: f64) -> Value {
    if f.is_nan() {
        return Value::String("NaN".into());
    }
    if f.is_infinite() {
        return Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into());
    }
    if f.fract() == 0.0 {
        if f.abs() < 9.2e18 {
            return Value::from(f as i64);
        }
        if f > 0.0 && f < 1.8e19 {
            return Value::from(f as u64);
        }
    }
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn arg(args: &[JValue], i: usize) -> Option<&JValue> {
    args.get(i).filter(|v| !v.is_undefined())
}

fn signature_error(function: &str, position: usize) -> EvaluatorError {
    EvaluatorError::TypeError(format!(
        "T0410: Argument {position} of function \"{function}\" does not match function signature"
    ))
}

/// A number argument truncated towards zero, as AWS's functions read them.
fn int_arg(args: &[JValue], i: usize, function: &str) -> Result<Option<i64>, EvaluatorError> {
    match arg(args, i) {
        None => Ok(None),
        Some(JValue::Number(f)) if f.is_finite() => Ok(Some(f.trunc() as i64)),
        Some(_) => Err(signature_error(function, i + 1)),
    }
}

fn register_aws_functions(ev: &mut Evaluator, used: &[AwsFunction]) -> Result<(), ExprError> {
    let reg = |e: EvaluatorError| ExprError::query(e.message().to_owned());
    for f in used {
        match f {
            AwsFunction::Partition => ev.register_fn("partition", partition),
            AwsFunction::Range => ev.register_fn("range", range),
            AwsFunction::Hash => ev.register_fn("hash", hash),
            AwsFunction::Random => ev.register_fn_override("random", random),
            AwsFunction::Uuid => {
                ev.register_fn("uuid", |_: &[JValue]| Ok(JValue::from(uuid::Uuid::new_v4().to_string())))
            }
            AwsFunction::Parse => ev.register_fn("parse", parse),
            // AWS disables `$eval` (`$parse` replaces it): a call answers T1006 as for any
            // non-function.
            AwsFunction::Eval => ev.register_fn_override("eval", |_: &[JValue]| {
                Err(EvaluatorError::TypeError("T1006: Attempted to invoke a non-function".into()))
            }),
        }
        .map_err(reg)?;
    }
    Ok(())
}

fn partition(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let items: Vec<JValue> = match arg(args, 0) {
        None => return Ok(JValue::Undefined),
        Some(JValue::Array(a)) => a.iter().cloned().collect(),
        Some(single) => vec![single.clone()],
    };
    let Some(size) = int_arg(args, 1, "partition")? else {
        return Ok(JValue::Undefined);
    };
    // AWS answers undefined for an empty array or a size below one.
    if items.is_empty() || size < 1 {
        return Ok(JValue::Undefined);
    }
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    Ok(JValue::array(items.chunks(size).map(|c| JValue::array(c.to_vec())).collect()))
}

fn range(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let (Some(start), Some(end), Some(step)) =
        (int_arg(args, 0, "range")?, int_arg(args, 1, "range")?, int_arg(args, 2, "range")?)
    else {
        return Ok(JValue::Undefined);
    };
    if step == 0 || (step > 0 && start > end) || (step < 0 && start < end) {
        return Ok(JValue::Undefined);
    }
    let count = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
    if count > i128::from(MAX_RANGE_ITEMS) {
        return Err(EvaluatorError::EvaluationError("Expression evaluation memory limit exceeded".into()));
    }
    // A one-element range is the bare number, as a JSONata singleton sequence.
    if count == 1 {
        return Ok(JValue::Number(start as f64));
    }
    Ok(JValue::array((0..count).map(|i| JValue::Number((i128::from(start) + i * i128::from(step)) as f64)).collect()))
}

fn hash(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let Some(value) = arg(args, 0) else {
        return Ok(JValue::Undefined);
    };
    let Some(algorithm) = arg(args, 1) else {
        return Ok(JValue::Undefined);
    };
    let Some(algorithm) = algorithm.as_str() else {
        return Err(signature_error("hash", 2));
    };
    let data = match value.as_str() {
        Some(s) => s.to_owned(),
        None => from_jvalue(value).map(|v| v.to_string()).unwrap_or_default(),
    };
    hash_hex(&data, algorithm).map(JValue::from).ok_or_else(|| {
        EvaluatorError::EvaluationError(format!(
            "The hash algorithm '{algorithm}' is not supported; use one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"
        ))
    })
}

fn random(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    Ok(JValue::Number(match int_arg(args, 0, "random")? {
        Some(seed) => JavaRandom::new(seed).next_double(),
        None => rand::random::<f64>(),
    }))
}

fn parse(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let Some(text) = arg(args, 0) else {
        return Ok(JValue::Undefined);
    };
    let Some(text) = text.as_str() else {
        return Err(signature_error("parse", 1));
    };
    let v: Value = serde_json::from_str(text)
        .map_err(|e| EvaluatorError::EvaluationError(format!("D3030: Unable to parse the JSON string: {e}")))?;
    Ok(to_jvalue(&v))
}
