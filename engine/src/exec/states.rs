//! The states that never call out: Pass, Choice, Succeed, Fail, and Wait's duration (the
//! waiting itself is in `exec_async`). Pass, Choice, Succeed and Fail run without building a
//! future.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use asl_expr::ExprError;
use chrono::Utc;
use serde_json::{Map, Value};

use super::io::{
    eval_assign, eval_num, eval_tpl, input_path, input_path_arc, jsonata_output, output_path, result_path, tpl_source,
};
use super::{At, Flow, Thread, flow, prefix, rt};
use crate::definition::{ChoiceSpec, FailSpec, NumSpec, PathOpt, StrSpec, TsSpec, WaitSpec};
use crate::error::{Failure, names};
use crate::template::{Env, to_json_text};

pub(super) fn pass(th: &mut Thread, at: &At<'_>, raw: Arc<Value>, result: Option<&Value>) -> Result<Flow, Failure> {
    let st = at.st;
    if st.jsonata {
        let out = jsonata_output(th, at, &raw, None, None, st.assign.as_ref(), st.output.as_ref())?;
        return Ok(flow(st, out.map_or(raw, Arc::new)));
    }
    let ctx = || th.context(at, None);
    let fast = matches!(st.input_path, PathOpt::Root)
        && st.parameters.is_none()
        && result.is_none()
        && st.assign.is_none()
        && matches!(st.result_path, PathOpt::Root);
    if fast {
        let out = output_path(th, at, raw)?;
        return Ok(flow(st, out));
    }
    let (res, assign) = {
        let res: Value = match (result, &st.parameters) {
            (Some(r), _) => r.clone(),
            (None, Some(p)) => {
                let eff = input_path(th, at, &raw)?;
                let env = Env::new(&eff, &th.vars, &ctx);
                eval_tpl(at, p, &env)?
            }
            (None, None) => input_path(th, at, &raw)?.into_owned(),
        };
        let assign = match &st.assign {
            Some(_) => {
                let env = Env::new(&res, &th.vars, &ctx);
                eval_assign(at, st.assign.as_ref(), &env)?
            }
            None => Map::new(),
        };
        (res, assign)
    };
    let out = result_path(at, &st.result_path, raw, res)?;
    let out = output_path(th, at, out)?;
    th.vars.assign(assign);
    Ok(flow(st, out))
}

/// Output of Succeed (and Wait): InputPath then OutputPath, or JSONata Output; plus Assign.
pub(super) fn simple_output(th: &mut Thread, at: &At<'_>, raw: Arc<Value>) -> Result<Arc<Value>, Failure> {
    let st = at.st;
    if st.jsonata {
        let out = jsonata_output(th, at, &raw, None, None, st.assign.as_ref(), st.output.as_ref())?;
        return Ok(out.map_or(raw, Arc::new));
    }
    let ctx = || th.context(at, None);
    if matches!(st.input_path, PathOpt::Root) && st.assign.is_none() {
        return output_path(th, at, raw);
    }
    let eff = input_path_arc(th, at, &raw)?;
    let assign = {
        let env = Env::new(&eff, &th.vars, &ctx);
        eval_assign(at, st.assign.as_ref(), &env)?
    };
    drop(raw);
    th.vars.assign(assign);
    output_path(th, at, eff)
}

pub(super) fn choice(th: &mut Thread, at: &At<'_>, raw: Arc<Value>, c: &ChoiceSpec) -> Result<Flow, Failure> {
    let st = at.st;
    let ctx = || th.context(at, None);
    let eff = if st.jsonata { Arc::clone(&raw) } else { input_path_arc(th, at, &raw)? };
    let (next, out, assign) = {
        let env = Env::new(&eff, &th.vars, &ctx);
        let mut matched = None;
        for rule in &c.choices {
            if crate::choice::eval(&rule.cond, &env).map_err(|e| prefix(at, e))? {
                matched = Some(rule);
                break;
            }
        }
        let (next, rule_assign, rule_output) = match matched {
            Some(r) => (r.next, r.assign.as_ref(), r.output.as_ref()),
            None => match c.default {
                Some(d) => (d, None, None),
                None => {
                    return Err(Failure::new(
                        names::NO_CHOICE_MATCHED,
                        format!(
                            "An error occurred while executing the state '{}' (entered at the event id #{}). No Matches!",
                            st.name, at.entered_id
                        ),
                    ));
                }
            },
        };
        let mut assign = eval_assign(at, st.assign.as_ref(), &env)?;
        assign.extend(eval_assign(at, rule_assign, &env)?);
        let out = match rule_output.or(st.output.as_ref()) {
            Some(t) if st.jsonata => Some(eval_tpl(at, t, &env)?),
            _ => None,
        };
        (next, out, assign)
    };
    let out = match out {
        Some(o) => Arc::new(o),
        None => eff,
    };
    drop(raw);
    let out = if st.jsonata { out } else { output_path(th, at, out)? };
    th.vars.assign(assign);
    Ok(Flow::Next(next, out))
}

pub(super) fn fail(th: &Thread, at: &At<'_>, raw: &Value, f: &FailSpec) -> Result<Failure, Failure> {
    let ctx = || th.context(at, None);
    let env = Env::new(raw, &th.vars, &ctx);
    let get = |s: &StrSpec, field: &str| -> Result<Option<String>, Failure> {
        match s {
            StrSpec::None => Ok(None),
            StrSpec::Lit(s) => Ok(Some(s.clone())),
            StrSpec::Dyn(t) => match eval_tpl(at, t, &env)? {
                Value::String(s) => Ok(Some(s)),
                other if at.st.jsonata => Err(prefix(
                    at,
                    ExprError::query(format!(
                        "The JSONata expression '{}' specified for the field '{field}' returned an unexpected data type. Expected: string, but got: {}",
                        tpl_source(t),
                        to_json_text(&other)
                    )),
                )),
                other => Err(rt(
                    at,
                    format!("The {field}Path field must refer to a string, but got: {}", to_json_text(&other)),
                )),
            },
        }
    };
    let error = get(&f.error, "Error")?;
    let cause = get(&f.cause, "Cause")?;
    Ok(Failure { error, cause })
}

pub(super) fn wait_duration(th: &Thread, at: &At<'_>, raw: &Value, w: &WaitSpec) -> Result<Duration, Failure> {
    match w {
        WaitSpec::Seconds(NumSpec::Path(p)) => {
            let eff = input_path(th, at, raw)?;
            let ctx = || th.context(at, None);
            let env = Env::new(&eff, &th.vars, &ctx);
            let v = env
                .resolve(p)
                .map(Cow::into_owned)
                .ok_or_else(|| rt(at, format!("The SecondsPath parameter does not reference an input value: {p}")))?;
            match v.as_i64() {
                Some(n) if n >= 0 => Ok(Duration::from_secs(n as u64)),
                Some(_) => Err(rt(
                    at,
                    format!("The SecondsPath parameter references a negative value: {p} == {}", to_json_text(&v)),
                )),
                None => Err(rt(
                    at,
                    format!("The SecondsPath parameter cannot be parsed as a long value: {p} == {}", to_json_text(&v)),
                )),
            }
        }
        WaitSpec::Seconds(spec) => {
            let n = eval_num(th, at, spec, raw, "Seconds", true)?.unwrap_or(0.0);
            if n < 0.0 {
                return Err(prefix(at, ExprError::query("The Seconds field must be a non-negative integer.")));
            }
            Ok(Duration::from_secs_f64(n))
        }
        WaitSpec::Timestamp(spec) => {
            let text = match spec {
                TsSpec::Lit(s) => s.clone(),
                TsSpec::Path(p) => {
                    let eff = input_path(th, at, raw)?;
                    let ctx = || th.context(at, None);
                    let env = Env::new(&eff, &th.vars, &ctx);
                    let v = env.resolve(p).map(Cow::into_owned).ok_or_else(|| {
                        rt(at, format!("The TimestampPath parameter does not reference an input value: {p}"))
                    })?;
                    match v {
                        Value::String(s) => s,
                        other => {
                            return Err(rt(
                                at,
                                format!(
                                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {}",
                                    to_json_text(&other)
                                ),
                            ));
                        }
                    }
                }
                TsSpec::Expr(t) => {
                    let ctx = || th.context(at, None);
                    let env = Env::new(raw, &th.vars, &ctx);
                    match eval_tpl(at, t, &env)? {
                        Value::String(s) => s,
                        other => {
                            return Err(prefix(
                                at,
                                ExprError::query(format!(
                                    "The JSONata expression '{}' specified for the field 'Timestamp' returned an unexpected data type. Expected: string, but got: {}",
                                    tpl_source(t),
                                    to_json_text(&other)
                                )),
                            ));
                        }
                    }
                }
            };
            let Some(target) = crate::choice::parse_timestamp(&text) else {
                let field = if matches!(spec, TsSpec::Path(_)) { "TimestampPath" } else { "Timestamp" };
                return Err(rt(
                    at,
                    format!(
                        "The {field} parameter does not reference a valid ISO-8601 extended offset date-time format string: {text}"
                    ),
                ));
            };
            let now = th.run.inner.config.clock.now();
            Ok((target.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO))
        }
    }
}
