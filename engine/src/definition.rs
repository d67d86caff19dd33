//! Parsing and validating a state machine definition into the compiled form the engine runs.
//!
//! [`Definition::parse`] checks what ValidateStateMachineDefinition checks (and more): unknown
//! or mistyped fields, fields of the other query language, transitions to missing states,
//! unreachable states, states that neither end nor move on, invalid JSONPath, intrinsic calls and
//! JSONata. Every problem is reported with a JSON-pointer location and the state and field.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use asl_expr::jsonata::Jsonata;
use serde_json::{Map, Value};

use crate::error::{ValidationError, ValidationErrors};
use crate::path::JsonPath;
use crate::template::{self, Tpl};

/// A validated, compiled state machine definition. Parse once, run many times (share it with
/// `Arc`).
#[derive(Debug)]
pub struct Definition {
    pub(crate) root: Arc<Machine>,
    pub(crate) timeout_seconds: Option<u64>,
    warnings: Vec<String>,
    source: Value,
}

#[derive(Debug)]
pub(crate) struct Machine {
    pub start: usize,
    pub states: Vec<State>,
    /// No state can wait (only Pass, Choice, Succeed, Fail): a run completes without yielding,
    /// so Map can run such iterations in place instead of as tasks.
    pub all_sync: bool,
}

#[derive(Debug)]
pub(crate) struct State {
    pub name: Arc<str>,
    pub jsonata: bool,
    pub kind: Kind,
    /// `None` means `End: true` (or a terminal state type).
    pub next: Option<usize>,
    pub input_path: PathOpt,
    pub output_path: PathOpt,
    pub parameters: Option<Tpl>,
    pub result_selector: Option<Tpl>,
    pub result_path: PathOpt,
    pub arguments: Option<Tpl>,
    pub output: Option<Tpl>,
    pub assign: Option<Tpl>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

/// `InputPath`, `OutputPath` and `ResultPath`: absent means `$`, `null` has its own meaning.
#[derive(Debug, Clone)]
pub(crate) enum PathOpt {
    Root,
    Null,
    Path(JsonPath),
}

#[derive(Debug)]
pub(crate) enum Kind {
    Pass { result: Option<Value> },
    Task(Box<TaskSpec>),
    Choice(Box<ChoiceSpec>),
    Wait(WaitSpec),
    Succeed,
    Fail(Box<FailSpec>),
    Parallel(Vec<Arc<Machine>>),
    Map(Box<MapSpec>),
}

/// A number that is a literal, a `...Path` or a JSONata expression.
#[derive(Debug)]
pub(crate) enum NumSpec {
    None,
    Lit(f64),
    Path(JsonPath),
    Expr(Tpl),
}

#[derive(Debug)]
pub(crate) struct TaskSpec {
    pub resource: String,
    pub timeout: NumSpec,
    pub heartbeat: NumSpec,
}

#[derive(Debug)]
pub(crate) struct ChoiceSpec {
    pub choices: Vec<ChoiceRule>,
    pub default: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct ChoiceRule {
    pub cond: Cond,
    pub next: usize,
    pub assign: Option<Tpl>,
    pub output: Option<Tpl>,
}

#[derive(Debug)]
pub(crate) enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp { var: JsonPath, op: Op, rhs: Rhs },
    Jsonata(Tpl),
}

#[derive(Debug)]
pub(crate) enum Rhs {
    Lit(Value),
    Path(JsonPath),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

const OPS: &[(&str, Op)] = &[
    ("StringEquals", Op::StringEquals),
    ("StringLessThan", Op::StringLessThan),
    ("StringGreaterThan", Op::StringGreaterThan),
    ("StringLessThanEquals", Op::StringLessThanEquals),
    ("StringGreaterThanEquals", Op::StringGreaterThanEquals),
    ("StringMatches", Op::StringMatches),
    ("NumericEquals", Op::NumericEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("BooleanEquals", Op::BooleanEquals),
    ("TimestampEquals", Op::TimestampEquals),
    ("TimestampLessThan", Op::TimestampLessThan),
    ("TimestampGreaterThan", Op::TimestampGreaterThan),
    ("TimestampLessThanEquals", Op::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Op::TimestampGreaterThanEquals),
    ("IsNull", Op::IsNull),
    ("IsPresent", Op::IsPresent),
    ("IsNumeric", Op::IsNumeric),
    ("IsString", Op::IsString),
    ("IsBoolean", Op::IsBoolean),
    ("IsTimestamp", Op::IsTimestamp),
];

#[derive(Debug)]
pub(crate) enum WaitSpec {
    Seconds(NumSpec),
    Timestamp(TsSpec),
}

#[derive(Debug)]
pub(crate) enum TsSpec {
    Lit(String),
    Path(JsonPath),
    Expr(Tpl),
}

/// `Error`/`Cause` of a Fail state.
#[derive(Debug)]
pub(crate) enum StrSpec {
    None,
    Lit(String),
    /// `ErrorPath`/`CausePath`: a path or an intrinsic call.
    Dyn(Tpl),
}

#[derive(Debug)]
pub(crate) struct FailSpec {
    pub error: StrSpec,
    pub cause: StrSpec,
}

#[derive(Debug)]
pub(crate) struct MapSpec {
    pub processor: Arc<Machine>,
    pub distributed: bool,
    pub items_path: PathOpt,
    /// JSONata `Items` (or a JSONPath-mode literal/template `Items`).
    pub items: Option<Tpl>,
    pub item_selector: Option<Tpl>,
    pub max_concurrency: NumSpec,
    pub tolerated_count: NumSpec,
    pub tolerated_percentage: NumSpec,
    pub batcher: Option<Batcher>,
    pub has_item_reader: bool,
}

#[derive(Debug)]
pub(crate) struct Batcher {
    pub max_items: NumSpec,
    pub batch_input: Option<Tpl>,
}

#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub errors: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub jitter_full: bool,
}

#[derive(Debug)]
pub(crate) struct Catcher {
    pub errors: Vec<String>,
    pub next: usize,
    pub result_path: PathOpt,
    pub output: Option<Tpl>,
    pub assign: Option<Tpl>,
}

impl Definition {
    /// Validates and compiles a definition.
    pub fn parse(v: &Value) -> Result<Definition, ValidationErrors> {
        let mut cx = Cx::default();
        let Some(top) = v.as_object() else {
            return Err(ValidationErrors(vec![ValidationError {
                code: "SCHEMA_VALIDATION_FAILED",
                location: "/".into(),
                state: None,
                field: None,
                message: "a state machine definition must be a JSON object".into(),
            }]));
        };
        for k in top.keys() {
            if !matches!(k.as_str(), "StartAt" | "States" | "Comment" | "Version" | "TimeoutSeconds" | "QueryLanguage")
            {
                cx.err(
                    "SCHEMA_VALIDATION_FAILED",
                    format!("/{k}"),
                    None,
                    Some(k),
                    format!("unknown field '{k}' at the top level"),
                );
            }
        }
        let jsonata = match top.get("QueryLanguage") {
            None => false,
            Some(Value::String(s)) if s == "JSONPath" => false,
            Some(Value::String(s)) if s == "JSONata" => true,
            Some(other) => {
                cx.err(
                    "SCHEMA_VALIDATION_FAILED",
                    "/QueryLanguage".into(),
                    None,
                    Some("QueryLanguage"),
                    format!("QueryLanguage must be \"JSONPath\" or \"JSONata\", got {other}"),
                );
                false
            }
        };
        let timeout_seconds = match top.get("TimeoutSeconds") {
            None => None,
            Some(t) => match t.as_u64() {
                Some(n) if n > 0 => Some(n),
                _ => {
                    cx.err(
                        "SCHEMA_VALIDATION_FAILED",
                        "/TimeoutSeconds".into(),
                        None,
                        Some("TimeoutSeconds"),
                        "TimeoutSeconds must be a positive integer".into(),
                    );
                    None
                }
            },
        };
        if let Some(c) = top.get("Comment")
            && !c.is_string()
        {
            cx.err(
                "SCHEMA_VALIDATION_FAILED",
                "/Comment".into(),
                None,
                Some("Comment"),
                "Comment must be a string".into(),
            );
        }
        let root = cx.machine(top, "", jsonata);
        if !cx.errs.is_empty() {
            return Err(ValidationErrors(cx.errs));
        }
        let root = root.ok_or_else(|| ValidationErrors(vec![]))?;
        Ok(Definition { root, timeout_seconds, warnings: cx.warnings, source: v.clone() })
    }

    /// Parses JSON text, then [`Definition::parse`].
    pub fn from_json_str(s: &str) -> Result<Definition, ValidationErrors> {
        let v: Value = serde_json::from_str(s).map_err(|e| {
            ValidationErrors(vec![ValidationError {
                code: "INVALID_JSON_DESCRIPTION",
                location: "/".into(),
                state: None,
                field: None,
                message: format!("the definition is not valid JSON: {e}"),
            }])
        })?;
        Definition::parse(&v)
    }

    /// Things that are accepted but behave differently locally (e.g. `ResultWriter` is ignored).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The definition as given.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// The top-level `TimeoutSeconds`.
    pub fn timeout_seconds(&self) -> Option<u64> {
        self.timeout_seconds
    }

    /// The names of the top-level states, in definition order.
    pub fn state_names(&self) -> impl Iterator<Item = &str> {
        self.root.states.iter().map(|s| s.name.as_ref())
    }
}

#[derive(Default)]
struct Cx {
    errs: Vec<ValidationError>,
    warnings: Vec<String>,
}

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage", "Assign"];
const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "ItemsPath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
    "SecondsPath",
    "TimestampPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "ErrorPath",
    "CausePath",
    "Result",
    "Iterator",
];
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];

fn allowed(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "Pass" => &["Next", "End", "Result", "ResultPath", "Parameters", "InputPath", "OutputPath", "Output"],
        "Task" => &[
            "Next",
            "End",
            "Resource",
            "Parameters",
            "Arguments",
            "ResultSelector",
            "ResultPath",
            "InputPath",
            "OutputPath",
            "Output",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
        ],
        "Choice" => &["Choices", "Default", "InputPath", "OutputPath", "Output"],
        "Wait" => &[
            "Next",
            "End",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
            "InputPath",
            "OutputPath",
            "Output",
        ],
        "Succeed" => &["InputPath", "OutputPath", "Output"],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &[
            "Next",
            "End",
            "Branches",
            "Parameters",
            "Arguments",
            "ResultSelector",
            "ResultPath",
            "InputPath",
            "OutputPath",
            "Output",
            "Retry",
            "Catch",
        ],
        "Map" => &[
            "Next",
            "End",
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "Parameters",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ResultSelector",
            "ResultPath",
            "InputPath",
            "OutputPath",
            "Output",
            "Retry",
            "Catch",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
            "Arguments",
        ],
        _ => return None,
    })
}

fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Per-state compile context.
struct Sc<'a> {
    name: &'a str,
    loc: String,
    obj: &'a Map<String, Value>,
    jsonata: bool,
}

impl Cx {
    fn err(&mut self, code: &'static str, location: String, state: Option<&str>, field: Option<&str>, message: String) {
        self.errs.push(ValidationError {
            code,
            location,
            state: state.map(str::to_owned),
            field: field.map(str::to_owned),
            message,
        });
    }

    fn serr(&mut self, sc: &Sc<'_>, field: &str, message: impl Into<String>) {
        // `field` is already a pointer suffix (e.g. `Choices/0/Next`); user keys inside it were
        // escaped by whoever built it.
        let location = format!("{}/{}", sc.loc, field);
        self.errs.push(ValidationError {
            code: "SCHEMA_VALIDATION_FAILED",
            location,
            state: Some(sc.name.to_owned()),
            field: Some(field.to_owned()),
            message: format!("state '{}', field '{field}': {}", sc.name, message.into()),
        });
    }

    /// Compiles `{StartAt, States}` found at `loc`.
    fn machine(&mut self, obj: &Map<String, Value>, loc: &str, jsonata: bool) -> Option<Arc<Machine>> {
        let Some(states) = obj.get("States").and_then(Value::as_object) else {
            self.err(
                "SCHEMA_VALIDATION_FAILED",
                format!("{loc}/States"),
                None,
                Some("States"),
                "'States' must be an object of states".into(),
            );
            return None;
        };
        if states.is_empty() {
            self.err(
                "SCHEMA_VALIDATION_FAILED",
                format!("{loc}/States"),
                None,
                Some("States"),
                "'States' must contain at least one state".into(),
            );
            return None;
        }
        let index: HashMap<&str, usize> = states.keys().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
        let start = match obj.get("StartAt") {
            Some(Value::String(s)) => match index.get(s.as_str()) {
                Some(i) => *i,
                None => {
                    self.err(
                        "MISSING_TRANSITION_TARGET",
                        format!("{loc}/StartAt"),
                        None,
                        Some("StartAt"),
                        format!("StartAt names '{s}', which is not a state"),
                    );
                    0
                }
            },
            _ => {
                self.err(
                    "SCHEMA_VALIDATION_FAILED",
                    format!("{loc}/StartAt"),
                    None,
                    Some("StartAt"),
                    "'StartAt' must be the name of a state".into(),
                );
                0
            }
        };
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "StartAt" | "States" | "Comment" | "Version" | "TimeoutSeconds" | "QueryLanguage" | "ProcessorConfig"
            ) {
                self.err(
                    "SCHEMA_VALIDATION_FAILED",
                    format!("{loc}/{}", esc(k)),
                    None,
                    Some(k),
                    format!("unknown field '{k}'"),
                );
            }
        }
        let mut out = Vec::with_capacity(states.len());
        let mut edges: Vec<Vec<usize>> = Vec::with_capacity(states.len());
        for (name, sv) in states {
            let sloc = format!("{loc}/States/{}", esc(name));
            if name.is_empty() || name.chars().count() > 80 {
                self.err(
                    "SCHEMA_VALIDATION_FAILED",
                    sloc.clone(),
                    Some(name),
                    None,
                    format!("state name '{name}' must be 1 to 80 characters"),
                );
            }
            let Some(so) = sv.as_object() else {
                self.err(
                    "SCHEMA_VALIDATION_FAILED",
                    sloc,
                    Some(name),
                    None,
                    format!("state '{name}' must be an object"),
                );
                continue;
            };
            let (state, targets) = self.state(name, so, sloc, jsonata, &index);
            out.push(state);
            edges.push(targets);
        }
        if out.len() != states.len() {
            return None;
        }
        // Every state must be reachable from StartAt.
        let mut seen = vec![false; out.len()];
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if i < seen.len() && !seen[i] {
                seen[i] = true;
                stack.extend(edges[i].iter().copied());
            }
        }
        for (i, s) in out.iter().enumerate() {
            if !seen[i] {
                self.err(
                    "UNREACHABLE_STATE",
                    format!("{loc}/States/{}", esc(&s.name)),
                    Some(&s.name),
                    None,
                    format!("state '{}' is not reachable from StartAt", s.name),
                );
            }
        }
        let all_sync =
            out.iter().all(|s| matches!(s.kind, Kind::Pass { .. } | Kind::Choice(_) | Kind::Succeed | Kind::Fail(_)));
        Some(Arc::new(Machine { start, states: out, all_sync }))
    }

    fn target(&mut self, sc: &Sc<'_>, field: &str, v: Option<&Value>, index: &HashMap<&str, usize>) -> Option<usize> {
        match v {
            Some(Value::String(t)) => match index.get(t.as_str()) {
                Some(i) => Some(*i),
                None => {
                    self.errs.push(ValidationError {
                        code: "MISSING_TRANSITION_TARGET",
                        location: format!("{}/{}", sc.loc, field),
                        state: Some(sc.name.to_owned()),
                        field: Some(field.rsplit('/').next().unwrap_or(field).to_owned()),
                        message: format!("state '{}', field '{field}': '{t}' is not a state", sc.name),
                    });
                    None
                }
            },
            Some(_) => {
                self.serr(sc, field, "must be the name of a state");
                None
            }
            None => None,
        }
    }

    fn state(
        &mut self,
        name: &str,
        obj: &Map<String, Value>,
        loc: String,
        machine_jsonata: bool,
        index: &HashMap<&str, usize>,
    ) -> (State, Vec<usize>) {
        let jsonata = match obj.get("QueryLanguage") {
            None => machine_jsonata,
            Some(Value::String(s)) if s == "JSONata" => true,
            Some(Value::String(s)) if s == "JSONPath" => {
                if machine_jsonata {
                    self.err("SCHEMA_VALIDATION_FAILED", format!("{loc}/QueryLanguage"), Some(name), Some("QueryLanguage"),
                        format!("state '{name}': a state cannot use JSONPath when the state machine's QueryLanguage is JSONata"));
                }
                false
            }
            Some(_) => {
                self.err(
                    "SCHEMA_VALIDATION_FAILED",
                    format!("{loc}/QueryLanguage"),
                    Some(name),
                    Some("QueryLanguage"),
                    format!("state '{name}': QueryLanguage must be \"JSONPath\" or \"JSONata\""),
                );
                machine_jsonata
            }
        };
        let sc = Sc { name, loc, obj, jsonata };
        let ty = match obj.get("Type") {
            Some(Value::String(t)) => t.as_str(),
            _ => {
                self.serr(&sc, "Type", "missing or not a string");
                ""
            }
        };
        let allowed_fields = allowed(ty);
        if allowed_fields.is_none() && !ty.is_empty() {
            self.serr(&sc, "Type", format!("unknown state type '{ty}'"));
        }
        if let Some(allowed_fields) = allowed_fields {
            for k in obj.keys() {
                let k = k.as_str();
                if !(COMMON.contains(&k) || allowed_fields.contains(&k)) {
                    self.serr(&sc, &esc(k), format!("unknown field for a {ty} state"));
                } else if jsonata && JSONPATH_ONLY.contains(&k) {
                    self.serr(&sc, k, "this field is only allowed with QueryLanguage JSONPath; use Arguments/Output/Assign with JSONata");
                } else if !jsonata && JSONATA_ONLY.contains(&k) && !(k == "Items" && ty == "Map") {
                    self.serr(&sc, k, "this field is only allowed with QueryLanguage JSONata");
                }
            }
        }
        if ty == "Fail" && obj.contains_key("Assign") {
            self.serr(&sc, "Assign", "a Fail state cannot assign variables");
        }
        if let Some(c) = obj.get("Comment")
            && !c.is_string()
        {
            self.serr(&sc, "Comment", "must be a string");
        }

        let mut targets = Vec::new();
        // Transitions.
        let terminal = matches!(ty, "Choice" | "Succeed" | "Fail");
        let next = if terminal {
            None
        } else {
            let n = self.target(&sc, "Next", obj.get("Next"), index);
            let end = match obj.get("End") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    self.serr(&sc, "End", "must be a boolean");
                    false
                }
            };
            match (obj.contains_key("Next"), end) {
                (true, true) => self.serr(&sc, "End", "a state cannot have both Next and End"),
                (false, false) if !ty.is_empty() && allowed_fields.is_some() => self.errs.push(ValidationError {
                    code: "MISSING_TRANSITION_TARGET",
                    location: sc.loc.clone(),
                    state: Some(name.to_owned()),
                    field: Some("Next".into()),
                    message: format!("state '{name}' must have either 'Next' or 'End: true'"),
                }),
                _ => {}
            }
            if let Some(n) = n {
                targets.push(n);
            }
            n
        };

        let input_path = self.path_opt(&sc, "InputPath", false);
        let output_path = self.path_opt(&sc, "OutputPath", false);
        let result_path = self.path_opt(&sc, "ResultPath", true);
        let parameters = if ty == "Map" { None } else { self.jp_tpl(&sc, "Parameters") };
        let result_selector = self.jp_tpl(&sc, "ResultSelector");
        let arguments = self.jn_tpl(&sc, "Arguments");
        let output = self.jn_tpl(&sc, "Output");
        let assign = match obj.get("Assign") {
            None => None,
            Some(Value::Object(_)) => {
                if jsonata {
                    self.jn_tpl(&sc, "Assign")
                } else {
                    self.jp_tpl(&sc, "Assign")
                }
            }
            Some(_) => {
                self.serr(&sc, "Assign", "must be an object");
                None
            }
        };
        let retry = if obj.contains_key("Retry") { self.retry(&sc) } else { Vec::new() };
        let catch = if obj.contains_key("Catch") { self.catch(&sc, index, &mut targets) } else { Vec::new() };

        let kind = match ty {
            "Pass" => Kind::Pass { result: obj.get("Result").cloned() },
            "Task" => self.task(&sc),
            "Choice" => self.choice(&sc, index, &mut targets),
            "Wait" => self.wait(&sc),
            "Succeed" => Kind::Succeed,
            "Fail" => self.fail(&sc),
            "Parallel" => self.parallel(&sc, jsonata_root(machine_jsonata, jsonata)),
            "Map" => self.map(&sc, jsonata_root(machine_jsonata, jsonata)),
            _ => Kind::Succeed,
        };
        let state = State {
            name: Arc::from(name),
            jsonata,
            kind,
            next,
            input_path,
            output_path,
            parameters,
            result_selector,
            result_path,
            arguments,
            output,
            assign,
            retry,
            catch,
        };
        (state, targets)
    }

    fn path_opt(&mut self, sc: &Sc<'_>, field: &str, reference: bool) -> PathOpt {
        match sc.obj.get(field) {
            None => PathOpt::Root,
            Some(Value::Null) => PathOpt::Null,
            Some(Value::String(s)) => match JsonPath::parse(s) {
                Ok(p) => {
                    if reference && (!p.is_reference_path() || !matches!(p.root(), crate::path::Root::Input)) {
                        self.serr(
                            sc,
                            field,
                            format!("'{s}' must be a reference path (only names and indexes, starting with '$')"),
                        );
                    }
                    if matches!(p.root(), crate::path::Root::Context) && field != "InputPath" {
                        self.serr(sc, field, format!("'{s}' cannot refer to the context object"));
                    }
                    if p.is_root() && matches!(p.root(), crate::path::Root::Input) {
                        PathOpt::Root
                    } else {
                        PathOpt::Path(p)
                    }
                }
                Err(e) => {
                    self.serr(sc, field, format!("invalid JSONPath: {}", e.reason));
                    PathOpt::Root
                }
            },
            Some(_) => {
                self.serr(sc, field, "must be a JSONPath string or null");
                PathOpt::Root
            }
        }
    }

    fn jp_tpl(&mut self, sc: &Sc<'_>, field: &str) -> Option<Tpl> {
        let v = sc.obj.get(field)?;
        if sc.jsonata {
            return None;
        }
        match template::compile_jsonpath(v) {
            Ok(t) => Some(t),
            Err(errs) => {
                for e in errs {
                    self.serr(sc, &format!("{field}{}", e.at), e.message);
                }
                None
            }
        }
    }

    fn jn_tpl_value(&mut self, sc: &Sc<'_>, field: &str, v: &Value) -> Option<Tpl> {
        match template::compile_jsonata(v, field) {
            Ok(t) => Some(t),
            Err(errs) => {
                for e in errs {
                    self.serr(sc, &format!("{field}{}", e.at), e.message);
                }
                None
            }
        }
    }

    fn jn_tpl(&mut self, sc: &Sc<'_>, field: &str) -> Option<Tpl> {
        let v = sc.obj.get(field)?;
        if !sc.jsonata {
            return None;
        }
        self.jn_tpl_value(sc, field, v)
    }

    /// A number field with its `...Path` twin, or a JSONata expression.
    fn num(&mut self, sc: &Sc<'_>, field: &str, path_field: &str, integer: bool) -> NumSpec {
        let lit = sc.obj.get(field);
        let path = sc.obj.get(path_field);
        if lit.is_some() && path.is_some() {
            self.serr(sc, path_field, format!("cannot be used together with '{field}'"));
        }
        if let Some(v) = lit {
            if let Value::String(s) = v
                && sc.jsonata
                && template::jsonata_inner(s).is_some()
            {
                return self.jn_tpl_value(sc, field, v).map_or(NumSpec::None, NumSpec::Expr);
            }
            return match v.as_f64() {
                Some(n) if n >= 0.0 && (!integer || n.fract() == 0.0) => NumSpec::Lit(n),
                _ => {
                    self.serr(
                        sc,
                        field,
                        if integer { "must be a non-negative integer" } else { "must be a non-negative number" },
                    );
                    NumSpec::None
                }
            };
        }
        if let Some(v) = path {
            return match v.as_str().map(JsonPath::parse) {
                Some(Ok(p)) => NumSpec::Path(p),
                Some(Err(e)) => {
                    self.serr(sc, path_field, format!("invalid JSONPath: {}", e.reason));
                    NumSpec::None
                }
                None => {
                    self.serr(sc, path_field, "must be a JSONPath string");
                    NumSpec::None
                }
            };
        }
        NumSpec::None
    }

    fn errors_list(&mut self, sc: &Sc<'_>, field: &str, v: Option<&Value>) -> Vec<String> {
        match v {
            Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {
                a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()
            }
            _ => {
                self.serr(sc, field, "ErrorEquals must be a non-empty array of error names");
                Vec::new()
            }
        }
    }

    fn retry(&mut self, sc: &Sc<'_>) -> Vec<Retrier> {
        let Some(Value::Array(items)) = sc.obj.get("Retry") else {
            self.serr(sc, "Retry", "must be an array of retriers");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, r) in items.iter().enumerate() {
            let f = format!("Retry/{i}");
            let Some(o) = r.as_object() else {
                self.serr(sc, &f, "a retrier must be an object");
                continue;
            };
            for k in o.keys() {
                if !matches!(
                    k.as_str(),
                    "ErrorEquals"
                        | "IntervalSeconds"
                        | "MaxAttempts"
                        | "BackoffRate"
                        | "MaxDelaySeconds"
                        | "JitterStrategy"
                        | "Comment"
                ) {
                    self.serr(sc, &format!("{f}/{k}"), "unknown field in a retrier");
                }
            }
            let errors = self.errors_list(sc, &format!("{f}/ErrorEquals"), o.get("ErrorEquals"));
            let num = |cx: &mut Cx, k: &str, def: f64, min: f64| -> f64 {
                match o.get(k) {
                    None => def,
                    Some(v) => match v.as_f64() {
                        Some(n) if n >= min => n,
                        _ => {
                            cx.serr(sc, &format!("{f}/{k}"), format!("must be a number >= {min}"));
                            def
                        }
                    },
                }
            };
            let interval_seconds = num(self, "IntervalSeconds", 1.0, 1.0);
            let max_attempts = num(self, "MaxAttempts", 3.0, 0.0) as u32;
            let backoff_rate = num(self, "BackoffRate", 2.0, 1.0);
            let max_delay_seconds = o.get("MaxDelaySeconds").map(|_| num(self, "MaxDelaySeconds", 0.0, 1.0));
            let jitter_full = match o.get("JitterStrategy") {
                None => false,
                Some(Value::String(s)) if s == "FULL" => true,
                Some(Value::String(s)) if s == "NONE" => false,
                Some(_) => {
                    self.serr(sc, &format!("{f}/JitterStrategy"), "must be \"FULL\" or \"NONE\"");
                    false
                }
            };
            out.push(Retrier { errors, interval_seconds, max_attempts, backoff_rate, max_delay_seconds, jitter_full });
        }
        out
    }

    fn catch(&mut self, sc: &Sc<'_>, index: &HashMap<&str, usize>, targets: &mut Vec<usize>) -> Vec<Catcher> {
        let Some(Value::Array(items)) = sc.obj.get("Catch") else {
            self.serr(sc, "Catch", "must be an array of catchers");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, c) in items.iter().enumerate() {
            let f = format!("Catch/{i}");
            let Some(o) = c.as_object() else {
                self.serr(sc, &f, "a catcher must be an object");
                continue;
            };
            for k in o.keys() {
                let ok = match k.as_str() {
                    "ErrorEquals" | "Next" | "Comment" | "Assign" => true,
                    "ResultPath" => !sc.jsonata,
                    "Output" => sc.jsonata,
                    _ => false,
                };
                if !ok {
                    self.serr(
                        sc,
                        &format!("{f}/{k}"),
                        "unknown field in a catcher (or one of the other query language)",
                    );
                }
            }
            let errors = self.errors_list(sc, &format!("{f}/ErrorEquals"), o.get("ErrorEquals"));
            if !o.contains_key("Next") {
                self.serr(sc, &format!("{f}/Next"), "a catcher needs 'Next'");
            }
            let sub = Sc { name: sc.name, loc: format!("{}/{f}", sc.loc), obj: o, jsonata: sc.jsonata };
            let next = self.target(&sub, "Next", o.get("Next"), index);
            let result_path = self.path_opt(&sub, "ResultPath", true);
            let output = self.jn_tpl(&sub, "Output");
            let assign = if sc.jsonata { self.jn_tpl(&sub, "Assign") } else { self.jp_tpl(&sub, "Assign") };
            if let Some(n) = next {
                targets.push(n);
                out.push(Catcher { errors, next: n, result_path, output, assign });
            }
        }
        out
    }

    fn task(&mut self, sc: &Sc<'_>) -> Kind {
        let resource = match sc.obj.get("Resource") {
            Some(Value::String(s)) if s.starts_with("arn:") => s.clone(),
            Some(Value::String(s)) if sc.jsonata && template::jsonata_inner(s).is_some() => {
                self.serr(sc, "Resource", "must be a literal ARN");
                String::new()
            }
            _ => {
                self.serr(sc, "Resource", "a Task needs a 'Resource' ARN");
                String::new()
            }
        };
        let timeout = self.num(sc, "TimeoutSeconds", "TimeoutSecondsPath", true);
        let heartbeat = self.num(sc, "HeartbeatSeconds", "HeartbeatSecondsPath", true);
        if let (NumSpec::Lit(t), NumSpec::Lit(h)) = (&timeout, &heartbeat)
            && h >= t
        {
            self.serr(sc, "HeartbeatSeconds", "must be smaller than TimeoutSeconds");
        }
        Kind::Task(Box::new(TaskSpec { resource, timeout, heartbeat }))
    }

    fn choice(&mut self, sc: &Sc<'_>, index: &HashMap<&str, usize>, targets: &mut Vec<usize>) -> Kind {
        let default = self.target(sc, "Default", sc.obj.get("Default"), index);
        if let Some(d) = default {
            targets.push(d);
        }
        let mut choices = Vec::new();
        match sc.obj.get("Choices") {
            Some(Value::Array(a)) if !a.is_empty() => {
                for (i, r) in a.iter().enumerate() {
                    let f = format!("Choices/{i}");
                    let Some(o) = r.as_object() else {
                        self.serr(sc, &f, "a choice rule must be an object");
                        continue;
                    };
                    let sub = Sc { name: sc.name, loc: format!("{}/{f}", sc.loc), obj: o, jsonata: sc.jsonata };
                    if !o.contains_key("Next") {
                        self.serr(sc, &format!("{f}/Next"), "a top-level choice rule needs 'Next'");
                    }
                    let next = self.target(&sub, "Next", o.get("Next"), index);
                    let cond = self.cond(sc, &f, o, true);
                    let assign = match o.get("Assign") {
                        None => None,
                        Some(_) if sc.jsonata => self.jn_tpl(&sub, "Assign"),
                        Some(_) => self.jp_tpl(&sub, "Assign"),
                    };
                    let output = self.jn_tpl(&sub, "Output");
                    if let Some(next) = next {
                        // Count the transition even when the rule is invalid, so that its
                        // target is not also reported as unreachable.
                        targets.push(next);
                        if let Some(cond) = cond {
                            choices.push(ChoiceRule { cond, next, assign, output });
                        }
                    }
                }
            }
            _ => self.serr(sc, "Choices", "a Choice state needs a non-empty 'Choices' array"),
        }
        Kind::Choice(Box::new(ChoiceSpec { choices, default }))
    }

    fn cond(&mut self, sc: &Sc<'_>, f: &str, o: &Map<String, Value>, top: bool) -> Option<Cond> {
        for k in o.keys() {
            let ok = match k.as_str() {
                "Next" | "Assign" | "Output" => top,
                "Comment" => true,
                "Condition" => sc.jsonata,
                "Variable" | "And" | "Or" | "Not" => !sc.jsonata,
                other => !sc.jsonata && OPS.iter().any(|(n, _)| *n == other || format!("{n}Path") == other),
            };
            if !ok {
                self.serr(
                    sc,
                    &format!("{f}/{k}"),
                    "unknown field in a choice rule (or one of the other query language)",
                );
            }
        }
        if sc.jsonata {
            return match o.get("Condition") {
                Some(v @ Value::String(s)) if template::jsonata_inner(s).is_some() => {
                    let sub = Sc { name: sc.name, loc: sc.loc.clone(), obj: sc.obj, jsonata: true };
                    self.jn_tpl_value(&sub, &format!("{f}/Condition"), v).map(Cond::Jsonata)
                }
                Some(v @ Value::Bool(_)) => Some(Cond::Jsonata(Tpl::Lit(v.clone()))),
                _ => {
                    self.serr(sc, &format!("{f}/Condition"), "a JSONata choice rule needs a 'Condition' expression");
                    None
                }
            };
        }
        for comb in ["And", "Or"] {
            if let Some(v) = o.get(comb) {
                let Some(a) = v.as_array().filter(|a| !a.is_empty()) else {
                    self.serr(sc, &format!("{f}/{comb}"), "must be a non-empty array of rules");
                    return None;
                };
                let mut rules = Vec::new();
                for (i, r) in a.iter().enumerate() {
                    let Some(ro) = r.as_object() else {
                        self.serr(sc, &format!("{f}/{comb}/{i}"), "a rule must be an object");
                        continue;
                    };
                    rules.extend(self.cond(sc, &format!("{f}/{comb}/{i}"), ro, false));
                }
                return Some(if comb == "And" { Cond::And(rules) } else { Cond::Or(rules) });
            }
        }
        if let Some(v) = o.get("Not") {
            let Some(ro) = v.as_object() else {
                self.serr(sc, &format!("{f}/Not"), "must be a rule object");
                return None;
            };
            return self.cond(sc, &format!("{f}/Not"), ro, false).map(|c| Cond::Not(Box::new(c)));
        }
        let var = match o.get("Variable") {
            Some(Value::String(s)) => match JsonPath::parse(s) {
                Ok(p) => p,
                Err(e) => {
                    self.serr(sc, &format!("{f}/Variable"), format!("invalid JSONPath: {}", e.reason));
                    return None;
                }
            },
            _ => {
                self.serr(sc, &format!("{f}/Variable"), "a comparison needs a 'Variable' path");
                return None;
            }
        };
        let mut found = None;
        for (k, v) in o {
            let (opname, is_path) = match k.strip_suffix("Path") {
                Some(base) if OPS.iter().any(|(n, _)| *n == base) => (base, true),
                _ => (k.as_str(), false),
            };
            let Some((_, op)) = OPS.iter().find(|(n, _)| *n == opname) else { continue };
            if found.is_some() {
                self.serr(sc, &format!("{f}/{k}"), "a choice rule must have exactly one comparison operator");
                return None;
            }
            let rhs = if is_path {
                if matches!(
                    op,
                    Op::IsNull | Op::IsPresent | Op::IsNumeric | Op::IsString | Op::IsBoolean | Op::IsTimestamp
                ) {
                    self.serr(sc, &format!("{f}/{k}"), "unknown comparison operator");
                    return None;
                }
                match v.as_str().map(JsonPath::parse) {
                    Some(Ok(p)) => Rhs::Path(p),
                    _ => {
                        self.serr(sc, &format!("{f}/{k}"), "must be a valid JSONPath");
                        return None;
                    }
                }
            } else {
                let ok = match op {
                    Op::StringEquals
                    | Op::StringLessThan
                    | Op::StringGreaterThan
                    | Op::StringLessThanEquals
                    | Op::StringGreaterThanEquals
                    | Op::StringMatches => v.is_string(),
                    Op::NumericEquals
                    | Op::NumericLessThan
                    | Op::NumericGreaterThan
                    | Op::NumericLessThanEquals
                    | Op::NumericGreaterThanEquals => v.is_number(),
                    Op::TimestampEquals
                    | Op::TimestampLessThan
                    | Op::TimestampGreaterThan
                    | Op::TimestampLessThanEquals
                    | Op::TimestampGreaterThanEquals => {
                        v.as_str().is_some_and(|s| crate::choice::parse_timestamp(s).is_some())
                    }
                    _ => v.is_boolean(),
                };
                if !ok {
                    self.serr(sc, &format!("{f}/{k}"), "the operand has the wrong type for this operator");
                    return None;
                }
                Rhs::Lit(v.clone())
            };
            found = Some((*op, rhs));
        }
        match found {
            Some((op, rhs)) => Some(Cond::Cmp { var, op, rhs }),
            None => {
                self.serr(sc, f, "a choice rule needs a comparison operator, And, Or or Not");
                None
            }
        }
    }

    fn wait(&mut self, sc: &Sc<'_>) -> Kind {
        let o = sc.obj;
        let n = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"].iter().filter(|k| o.contains_key(**k)).count();
        if n != 1 {
            self.serr(
                sc,
                "Seconds",
                "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath",
            );
        }
        if o.contains_key("Seconds") || o.contains_key("SecondsPath") {
            return Kind::Wait(WaitSpec::Seconds(self.num(sc, "Seconds", "SecondsPath", true)));
        }
        let ts = match (o.get("Timestamp"), o.get("TimestampPath")) {
            (Some(v @ Value::String(s)), _) if sc.jsonata && template::jsonata_inner(s).is_some() => {
                self.jn_tpl_value(sc, "Timestamp", v).map_or(TsSpec::Lit(String::new()), TsSpec::Expr)
            }
            (Some(Value::String(s)), _) => {
                if crate::choice::parse_timestamp(s).is_none() {
                    self.serr(sc, "Timestamp", "must be an RFC 3339 timestamp");
                }
                TsSpec::Lit(s.clone())
            }
            (Some(_), _) => {
                self.serr(sc, "Timestamp", "must be an RFC 3339 timestamp string");
                TsSpec::Lit(String::new())
            }
            (None, Some(Value::String(s))) => match JsonPath::parse(s) {
                Ok(p) => TsSpec::Path(p),
                Err(e) => {
                    self.serr(sc, "TimestampPath", format!("invalid JSONPath: {}", e.reason));
                    TsSpec::Lit(String::new())
                }
            },
            _ => TsSpec::Lit(String::new()),
        };
        Kind::Wait(WaitSpec::Timestamp(ts))
    }

    fn str_spec(&mut self, sc: &Sc<'_>, field: &str, path_field: &str) -> StrSpec {
        match (sc.obj.get(field), sc.obj.get(path_field)) {
            (Some(_), Some(_)) => {
                self.serr(sc, path_field, format!("cannot be used together with '{field}'"));
                StrSpec::None
            }
            (Some(v @ Value::String(s)), None) => {
                if sc.jsonata && template::jsonata_inner(s).is_some() {
                    self.jn_tpl_value(sc, field, v).map_or(StrSpec::None, StrSpec::Dyn)
                } else {
                    StrSpec::Lit(s.clone())
                }
            }
            (Some(_), None) => {
                self.serr(sc, field, "must be a string");
                StrSpec::None
            }
            (None, Some(Value::String(s))) => match template::compile_dollar(s, path_field) {
                Ok(t) => StrSpec::Dyn(t),
                Err(m) => {
                    self.serr(sc, path_field, m);
                    StrSpec::None
                }
            },
            (None, Some(_)) => {
                self.serr(sc, path_field, "must be a JSONPath or an intrinsic function");
                StrSpec::None
            }
            (None, None) => StrSpec::None,
        }
    }

    fn fail(&mut self, sc: &Sc<'_>) -> Kind {
        let error = self.str_spec(sc, "Error", "ErrorPath");
        let cause = self.str_spec(sc, "Cause", "CausePath");
        Kind::Fail(Box::new(FailSpec { error, cause }))
    }

    fn parallel(&mut self, sc: &Sc<'_>, jsonata: bool) -> Kind {
        let mut branches = Vec::new();
        match sc.obj.get("Branches") {
            Some(Value::Array(a)) if !a.is_empty() => {
                for (i, b) in a.iter().enumerate() {
                    match b.as_object() {
                        Some(bo) => {
                            if let Some(m) = self.machine(bo, &format!("{}/Branches/{i}", sc.loc), jsonata) {
                                branches.push(m);
                            }
                        }
                        None => self.serr(
                            sc,
                            &format!("Branches/{i}"),
                            "a branch must be an object with StartAt and States",
                        ),
                    }
                }
            }
            _ => self.serr(sc, "Branches", "a Parallel state needs a non-empty 'Branches' array"),
        }
        Kind::Parallel(branches)
    }

    fn map(&mut self, sc: &Sc<'_>, jsonata: bool) -> Kind {
        let o = sc.obj;
        let (proc_field, proc) = match (o.get("ItemProcessor"), o.get("Iterator")) {
            (Some(p), None) => ("ItemProcessor", p),
            (None, Some(p)) => ("Iterator", p),
            (Some(_), Some(_)) => {
                self.serr(sc, "Iterator", "use either ItemProcessor or the legacy Iterator, not both");
                return Kind::Succeed;
            }
            (None, None) => {
                self.serr(sc, "ItemProcessor", "a Map state needs an 'ItemProcessor'");
                return Kind::Succeed;
            }
        };
        let Some(po) = proc.as_object() else {
            self.serr(sc, proc_field, "must be an object with StartAt and States");
            return Kind::Succeed;
        };
        let mut distributed = false;
        if let Some(pc) = po.get("ProcessorConfig") {
            match pc.get("Mode").and_then(Value::as_str) {
                Some("DISTRIBUTED") => distributed = true,
                Some("INLINE") | None => {}
                Some(other) => {
                    self.serr(sc, &format!("{proc_field}/ProcessorConfig/Mode"), format!("unknown mode '{other}'"))
                }
            }
        }
        let processor = self.machine(po, &format!("{}/{proc_field}", sc.loc), jsonata);
        let items_path = if sc.jsonata { PathOpt::Root } else { self.path_opt(sc, "ItemsPath", false) };
        let items = match o.get("Items") {
            None => None,
            Some(v) if sc.jsonata => self.jn_tpl_value(sc, "Items", v),
            Some(v) => match template::compile_jsonpath(v) {
                Ok(t) => Some(t),
                Err(_) => {
                    self.serr(sc, "Items", "must be an array or a JSONata expression");
                    None
                }
            },
        };
        if o.contains_key("Items") && o.contains_key("ItemsPath") {
            self.serr(sc, "Items", "cannot be used together with ItemsPath");
        }
        let item_selector = match (o.get("ItemSelector"), o.get("Parameters")) {
            (Some(_), Some(_)) => {
                self.serr(sc, "Parameters", "use either ItemSelector or the legacy Parameters, not both");
                None
            }
            (Some(v), None) => {
                if sc.jsonata {
                    self.jn_tpl_value(sc, "ItemSelector", v)
                } else {
                    self.jp_tpl(sc, "ItemSelector")
                }
            }
            (None, Some(_)) => self.jp_tpl(sc, "Parameters"),
            (None, None) => None,
        };
        let max_concurrency = self.num(sc, "MaxConcurrency", "MaxConcurrencyPath", true);
        let tolerated_count = self.num(sc, "ToleratedFailureCount", "ToleratedFailureCountPath", true);
        let tolerated_percentage = self.num(sc, "ToleratedFailurePercentage", "ToleratedFailurePercentagePath", false);
        if let NumSpec::Lit(p) = tolerated_percentage
            && p > 100.0
        {
            self.serr(sc, "ToleratedFailurePercentage", "must be between 0 and 100");
        }
        let batcher = match o.get("ItemBatcher") {
            None => None,
            Some(Value::Object(bo)) => {
                let sub = Sc { name: sc.name, loc: format!("{}/ItemBatcher", sc.loc), obj: bo, jsonata: sc.jsonata };
                let max_items = self.num(&sub, "MaxItemsPerBatch", "MaxItemsPerBatchPath", true);
                let batch_input = match bo.get("BatchInput") {
                    None => None,
                    Some(v) if sc.jsonata => self.jn_tpl_value(&sub, "BatchInput", v),
                    Some(_) => self.jp_tpl(&sub, "BatchInput"),
                };
                Some(Batcher { max_items, batch_input })
            }
            Some(_) => {
                self.serr(sc, "ItemBatcher", "must be an object");
                None
            }
        };
        if o.contains_key("ResultWriter") {
            self.warnings.push(format!(
                "state '{}': ResultWriter is ignored by the local engine; results stay in the state output",
                sc.name
            ));
        }
        let has_item_reader = o.contains_key("ItemReader");
        if has_item_reader {
            self.warnings.push(format!(
                "state '{}': ItemReader cannot read from S3 locally; the state will fail with States.ItemReaderFailed",
                sc.name
            ));
        }
        match processor {
            Some(processor) => Kind::Map(Box::new(MapSpec {
                processor,
                distributed,
                items_path,
                items,
                item_selector,
                max_concurrency,
                tolerated_count,
                tolerated_percentage,
                batcher,
                has_item_reader,
            })),
            None => Kind::Succeed,
        }
    }
}

/// Nested state machines inherit the top-level query language, not their parent state's.
fn jsonata_root(machine_jsonata: bool, _state_jsonata: bool) -> bool {
    machine_jsonata
}

/// Used by the JSONata helpers.
#[allow(dead_code)]
pub(crate) type Expr = Jsonata;

/// Collects every state name in a machine and its nested machines (used by tests).
#[allow(dead_code)]
pub(crate) fn all_names(m: &Machine) -> HashSet<String> {
    let mut out = HashSet::new();
    for s in &m.states {
        out.insert(s.name.to_string());
        match &s.kind {
            Kind::Parallel(bs) => bs.iter().for_each(|b| out.extend(all_names(b))),
            Kind::Map(ms) => out.extend(all_names(&ms.processor)),
            _ => {}
        }
    }
    out
}
