//! How data flows through a state: `InputPath`, `Parameters`/`Arguments`, `ResultSelector`,
//! `ResultPath`, `OutputPath` and `Assign` in JSONPath states, and `Assign`/`Output` in JSONata
//! states (one helper, [`jsonata_output`], for every state type). Also the evaluation of number
//! fields (`...Path`, JSONata) and the causes AWS gives when a path selects nothing.

use std::borrow::Cow;
use std::sync::Arc;

use asl_expr::ExprError;
use serde_json::{Map, Value};

use super::{At, Thread, prefix, rt};
use crate::definition::{NumSpec, PathOpt};
use crate::error::Failure;
use crate::path::Root;
use crate::template::{Env, Tpl, to_json_text};

/// `InputPath`: the effective input, borrowed from the raw input where possible.
pub(super) fn input_path<'a>(th: &Thread, at: &At<'_>, raw: &'a Value) -> Result<Cow<'a, Value>, Failure> {
    match &at.st.input_path {
        PathOpt::Root => Ok(Cow::Borrowed(raw)),
        PathOpt::Null => Ok(Cow::Owned(Value::Object(Map::new()))),
        PathOpt::Path(p) => {
            if matches!(p.root(), Root::Input) {
                return match p.select(raw).into_value_ref() {
                    Some(v) => Ok(v),
                    None => Err(rt(at, format!("Invalid path '{p}' : No results for path: {}", bracketed(p.as_str())))),
                };
            }
            let ctx = || th.context(at, None);
            let env = Env::new(raw, &th.vars, &ctx);
            match env.resolve(p) {
                Some(v) => Ok(Cow::Owned(v.into_owned())),
                None => Err(rt(at, format!("Invalid path '{p}' : No results for path: {}", bracketed(p.as_str())))),
            }
        }
    }
}

/// `$.a.b` -> `$['a']['b']`, as Jayway prints paths in its errors.
pub(super) fn bracketed(p: &str) -> String {
    let Some(rest) = p.strip_prefix('$') else { return p.to_owned() };
    let mut out = String::from("$");
    for part in rest.split('.').filter(|s| !s.is_empty()) {
        match part.find('[') {
            Some(i) => {
                if i > 0 {
                    out.push_str(&format!("['{}']", &part[..i]));
                }
                out.push_str(&part[i..]);
            }
            None => out.push_str(&format!("['{part}']")),
        }
    }
    out
}

pub(super) trait SelectedExt<'a> {
    fn into_value_ref(self) -> Option<Cow<'a, Value>>;
}

impl<'a> SelectedExt<'a> for crate::path::Selected<'a> {
    fn into_value_ref(self) -> Option<Cow<'a, Value>> {
        use crate::path::Selected;
        match self {
            Selected::One(v) => Some(Cow::Borrowed(v)),
            Selected::Missing => None,
            Selected::Many(vs) => Some(Cow::Owned(Value::Array(vs.into_iter().cloned().collect()))),
            Selected::Computed(v) => Some(Cow::Owned(v)),
        }
    }
}

/// The effective input as a shared value: the same `Arc` when `InputPath` is `$`.
pub(super) fn input_path_arc(th: &Thread, at: &At<'_>, raw: &Arc<Value>) -> Result<Arc<Value>, Failure> {
    match &at.st.input_path {
        PathOpt::Root => Ok(Arc::clone(raw)),
        _ => Ok(Arc::new(input_path(th, at, raw)?.into_owned())),
    }
}

pub(super) fn output_path(th: &Thread, at: &At<'_>, v: Arc<Value>) -> Result<Arc<Value>, Failure> {
    match &at.st.output_path {
        PathOpt::Root => Ok(v),
        PathOpt::Null => Ok(Arc::new(Value::Object(Map::new()))),
        PathOpt::Path(p) if !matches!(p.root(), Root::Input) => {
            let ctx = || th.context(at, None);
            let env = Env::new(&v, &th.vars, &ctx);
            match env.resolve(p) {
                Some(x) => Ok(Arc::new(x.into_owned())),
                None => Err(rt(at, format!("Invalid path '{p}' : No results for path: {}", bracketed(p.as_str())))),
            }
        }
        PathOpt::Path(p) => {
            if p.is_definite() {
                // Take the selected part out when nobody else holds the value; copy it otherwise.
                let found = match Arc::try_unwrap(v) {
                    Ok(owned) => p.take(owned),
                    Err(shared) => p.select(&shared).into_value(),
                };
                match found {
                    Some(x) => Ok(Arc::new(x)),
                    None => Err(rt(at, format!("Invalid path '{p}' : No results for path: {}", bracketed(p.as_str())))),
                }
            } else {
                Ok(Arc::new(p.select(&v).into_value().unwrap_or(Value::Array(vec![]))))
            }
        }
    }
}

pub(super) fn result_path(at: &At<'_>, rp: &PathOpt, raw: Arc<Value>, result: Value) -> Result<Arc<Value>, Failure> {
    match rp {
        PathOpt::Root => Ok(Arc::new(result)),
        PathOpt::Null => Ok(raw),
        PathOpt::Path(p) => {
            let mut raw = Arc::unwrap_or_clone(raw);
            match p.set(&mut raw, result) {
                Ok(()) => Ok(Arc::new(raw)),
                Err(_) => {
                    Err(rt(at, format!("Unable to apply ResultPath \"{p}\" to input \"{}\"", to_json_text(&raw))))
                }
            }
        }
    }
}

/// Evaluates an `Assign` block to the new variables (applied by the caller after `Output`, since
/// AWS evaluates both with the variables as they were when the state started).
pub(super) fn eval_assign(at: &At<'_>, tpl: Option<&Tpl>, env: &Env<'_>) -> Result<Map<String, Value>, Failure> {
    let Some(t) = tpl else { return Ok(Map::new()) };
    match t.eval(env) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Ok(Map::new()),
        Err(e) => Err(prefix(at, e)),
    }
}

pub(super) fn eval_tpl(at: &At<'_>, t: &Tpl, env: &Env<'_>) -> Result<Value, Failure> {
    t.eval(env).map_err(|e| prefix(at, e))
}

/// A number field: literal, `...Path` or JSONata. `what` names the field in causes.
pub(super) fn eval_num(
    th: &Thread,
    at: &At<'_>,
    spec: &NumSpec,
    input: &Value,
    what: &str,
    integer: bool,
) -> Result<Option<f64>, Failure> {
    match spec {
        NumSpec::None => Ok(None),
        NumSpec::Lit(n) => Ok(Some(*n)),
        NumSpec::Path(p) => {
            let ctx = || th.context(at, None);
            let env = Env::new(input, &th.vars, &ctx);
            let v = env.resolve(p).map(Cow::into_owned).ok_or_else(|| {
                rt(at, format!("Invalid path '{p}' : No results for path: {}", bracketed(p.as_str())))
            })?;
            let kind = if integer { "integer" } else { "float" };
            // AWS accepts numbers and numeric strings ("1") here.
            let n = match &v {
                Value::Number(n) if integer => n.as_i64().map(|x| x as f64).or_else(|| n.as_u64().map(|x| x as f64)),
                Value::Number(n) => n.as_f64(),
                Value::String(s) if integer => s.trim().parse::<i64>().ok().map(|x| x as f64),
                Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
                _ => None,
            };
            match n {
                Some(n) => Ok(Some(n)),
                None => Err(rt(
                    at,
                    format!(
                        "The {what}Path field refers to value \"{}\" which is not a valid {kind}: {p}",
                        value_text(&v)
                    ),
                )),
            }
        }
        NumSpec::Expr(t) => {
            let ctx = || th.context(at, None);
            let env = Env::new(input, &th.vars, &ctx);
            let v = eval_tpl(at, t, &env)?;
            match v.as_f64() {
                Some(n) if !integer || n.fract() == 0.0 => Ok(Some(n)),
                _ => Err(prefix(
                    at,
                    ExprError::query(format!(
                        "The JSONata expression '{}' specified for the field '{what}' returned an unexpected data type. Expected: {}, but got: {}",
                        tpl_source(t),
                        if integer { "integer" } else { "number" },
                        to_json_text(&v)
                    )),
                )),
            }
        }
    }
}

pub(super) fn tpl_source(t: &Tpl) -> String {
    match t {
        Tpl::Jsonata { src, .. } => src.to_string(),
        _ => String::new(),
    }
}

/// A value as it appears inside AWS's quoted causes: strings bare, the rest as JSON.
pub(super) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => to_json_text(other),
    }
}

/// A JSONata state's `Assign` and `Output` (the state's, or a catcher's): both see the variables
/// as they were when the state started, then the new variables are applied. `result` and
/// `error_output` are `$states.result` and `$states.errorOutput` where the state has them.
/// `None` when there is no `Output`; the caller knows the default (the input, the result or the
/// error output).
pub(super) fn jsonata_output(
    th: &mut Thread,
    at: &At<'_>,
    input: &Value,
    result: Option<&Value>,
    error_output: Option<&Value>,
    assign: Option<&Tpl>,
    output: Option<&Tpl>,
) -> Result<Option<Value>, Failure> {
    let (out, assign) = {
        let ctx = || th.context(at, None);
        let env = Env::new(input, &th.vars, &ctx).with_result(result).with_error_output(error_output);
        let assign = eval_assign(at, assign, &env)?;
        let out = output.map(|t| eval_tpl(at, t, &env)).transpose()?;
        (out, assign)
    };
    th.vars.assign(assign);
    Ok(out)
}

/// ResultSelector, Assign, ResultPath and OutputPath (or JSONata Assign and Output) applied to a
/// Task/Map/Parallel result.
pub(super) fn post_process(
    th: &mut Thread,
    at: &At<'_>,
    raw: Arc<Value>,
    result: Value,
) -> Result<Arc<Value>, Failure> {
    let st = at.st;
    if st.jsonata {
        let out = jsonata_output(th, at, &raw, Some(&result), None, st.assign.as_ref(), st.output.as_ref())?;
        return Ok(Arc::new(out.unwrap_or(result)));
    }
    let ctx = || th.context(at, None);
    let result = match &st.result_selector {
        Some(t) => {
            let env = Env::new(&result, &th.vars, &ctx);
            eval_tpl(at, t, &env)?
        }
        None => result,
    };
    let assign = {
        let env = Env::new(&result, &th.vars, &ctx);
        eval_assign(at, st.assign.as_ref(), &env)?
    };
    let out = result_path(at, &st.result_path, raw, result)?;
    let out = output_path(th, at, out)?;
    th.vars.assign(assign);
    Ok(out)
}

/// The effective input handed to the body of Task/Parallel: InputPath + Parameters, or JSONata
/// Arguments.
pub(super) fn effective_params(th: &Thread, at: &At<'_>, raw: &Value) -> Result<Value, Failure> {
    let st = at.st;
    let ctx = || th.context(at, None);
    if st.jsonata {
        return match &st.arguments {
            Some(t) => {
                let env = Env::new(raw, &th.vars, &ctx);
                eval_tpl(at, t, &env)
            }
            None => Ok(raw.clone()),
        };
    }
    let eff = input_path(th, at, raw)?;
    match &st.parameters {
        Some(p) => {
            let env = Env::new(&eff, &th.vars, &ctx);
            eval_tpl(at, p, &env)
        }
        None => Ok(eff.into_owned()),
    }
}
