//! Map and Parallel: the states that run child threads. Iterations and branches run as tokio
//! tasks of their own through [`Runner`], or in place for Map processors whose states never
//! wait; Map also evaluates its plan (items, batching, `MaxConcurrency`, tolerated failures) and
//! distributed Maps keep a child history per iteration.

use std::borrow::Cow;
use std::sync::Arc;

use asl_expr::ExprError;
use serde_json::{Map, Value};

use super::io::{bracketed, effective_params, eval_num, eval_tpl, input_path};
use super::{At, BoxFut, Thread, fast_uuid, prefix, rt, run_machine, run_sync};
use crate::definition::{Machine, MapSpec, PathOpt};
use crate::error::{Failure, names};
use crate::history::{Details, EventType, HistoryLog};
use crate::template::{Env, Vars, to_json_text};

pub(super) async fn parallel(
    th: &mut Thread,
    at: &At<'_>,
    raw: &Value,
    branches: &[Arc<Machine>],
) -> Result<Value, Failure> {
    let input = Arc::new(effective_params(th, at, raw)?);
    let started = th.emit(EventType::ParallelStateStarted, Details::None)?;
    let mut set = Runner::new();
    for (i, b) in branches.iter().enumerate() {
        let child = th.child(started);
        let fut = run_machine(child, Arc::clone(b), Arc::clone(&input));
        set.push(Box::pin(async move { (i, fut.await) }));
    }
    let mut results: Vec<Value> = vec![Value::Null; branches.len()];
    while let Some((i, r)) = set.next().await {
        match r {
            Ok(v) => {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Arc::unwrap_or_clone(v);
                }
            }
            Err(f) => {
                drop(set);
                th.prev = th.log.len() as u64;
                th.emit(EventType::ParallelStateFailed, Details::None)?;
                return Err(f);
            }
        }
    }
    th.prev = th.log.len() as u64;
    th.emit(EventType::ParallelStateSucceeded, Details::None)?;
    Ok(Value::Array(results))
}

pub(super) type IterResult = (usize, Result<Arc<Value>, Failure>);

/// Where Map iterations and Parallel branches run: each as a tokio task, so they use every core
/// of a multi-thread runtime and each gets its own cooperative budget; or, for iterations whose
/// states never wait, in place (they would finish on their first poll anyway, and a task per
/// item costs more than the item). Dropping the runner aborts whatever still runs.
pub(super) enum Runner {
    Spawned(tokio::task::JoinSet<IterResult>),
    Ready(std::collections::VecDeque<IterResult>),
}

impl Runner {
    fn new() -> Self {
        Runner::Spawned(tokio::task::JoinSet::new())
    }

    fn push(&mut self, fut: BoxFut<IterResult>) {
        match self {
            Runner::Spawned(set) => {
                set.spawn(fut);
            }
            // Not used for futures; `map` only builds a Ready runner for in-place iterations.
            Runner::Ready(_) => {}
        }
    }

    /// The next finished iteration; `None` when all are done.
    async fn next(&mut self) -> Option<IterResult> {
        match self {
            Runner::Spawned(set) => set.join_next().await.map(|joined| {
                joined.unwrap_or_else(|e| {
                    (usize::MAX, Err(Failure::new(names::RUNTIME, format!("an iteration stopped unexpectedly: {e}"))))
                })
            }),
            Runner::Ready(q) => {
                // Long in-place Maps still let other work run.
                tokio::task::consume_budget().await;
                q.pop_front()
            }
        }
    }
}

pub(super) struct MapPlan {
    items: Vec<Value>,
    max_concurrency: usize,
    tolerated_count: Option<f64>,
    tolerated_pct: Option<f64>,
}

pub(super) fn map_plan(th: &Thread, at: &At<'_>, raw: &Value, m: &MapSpec) -> Result<MapPlan, Failure> {
    let st = at.st;
    let ctx = || th.context(at, None);
    let eff = if st.jsonata { Cow::Borrowed(raw) } else { input_path(th, at, raw)? };
    let max_c = eval_num(th, at, &m.max_concurrency, &eff, "MaxConcurrency", true)?;
    if let Some(n) = max_c
        && n < 0.0
    {
        return Err(rt(at, "MaxConcurrency cannot be negative."));
    }
    let tc = eval_num(th, at, &m.tolerated_count, &eff, "ToleratedFailureCount", true)?;
    if let Some(n) = tc
        && n < 0.0
    {
        return Err(rt(at, "ToleratedFailureCount cannot be negative."));
    }
    let tp = eval_num(th, at, &m.tolerated_percentage, &eff, "ToleratedFailurePercentage", false)?;
    if let Some(p) = tp
        && !(0.0..=100.0).contains(&p)
    {
        return Err(rt(at, "ToleratedFailurePercentage must be between 0 and 100."));
    }
    if m.has_item_reader {
        return Err(Failure::new(
            names::ITEM_READER_FAILED,
            format!(
                "An error occurred while executing the state '{}' (entered at the event id #{}). ItemReader is not supported by the local engine.",
                st.name, at.entered_id
            ),
        ));
    }
    let items_val: Value = match &m.items {
        Some(t) => {
            let env = Env::new(&eff, &th.vars, &ctx);
            eval_tpl(at, t, &env)?
        }
        None => match &m.items_path {
            PathOpt::Root | PathOpt::Null => eff.into_owned(),
            PathOpt::Path(p) => {
                let env = Env::new(&eff, &th.vars, &ctx);
                match env.resolve(p) {
                    Some(v) => v.into_owned(),
                    None => {
                        return Err(rt(
                            at,
                            format!("Invalid path '{p}' : No results for path: {}", bracketed(p.as_str())),
                        ));
                    }
                }
            }
        },
    };
    let items = match items_val {
        Value::Array(a) => a,
        other => {
            let e = if st.jsonata || m.items.is_some() {
                ExprError::query(format!("Map state input must be an array but was: {}", to_json_text(&other)))
            } else {
                ExprError::runtime(format!("Map state input must be an array but was: {}", to_json_text(&other)))
            };
            return Err(prefix(at, e));
        }
    };
    let items = match &m.batcher {
        None => items,
        Some(b) => {
            let size = eval_num(th, at, &b.max_items, raw, "MaxItemsPerBatch", true)?
                .unwrap_or(items.len().max(1) as f64)
                .max(1.0) as usize;
            let batch_input = match &b.batch_input {
                Some(t) => {
                    let env = Env::new(raw, &th.vars, &ctx);
                    Some(eval_tpl(at, t, &env)?)
                }
                None => None,
            };
            items
                .chunks(size)
                .map(|c| {
                    let mut o = Map::new();
                    if let Some(bi) = &batch_input {
                        o.insert("BatchInput".into(), bi.clone());
                    }
                    o.insert("Items".into(), Value::Array(c.to_vec()));
                    Value::Object(o)
                })
                .collect()
        }
    };
    Ok(MapPlan { items, max_concurrency: max_c.unwrap_or(0.0) as usize, tolerated_count: tc, tolerated_pct: tp })
}

/// The inputs of the iterations: ItemSelector (or legacy Parameters) applied per item.
pub(super) fn map_inputs(
    th: &Thread,
    at: &At<'_>,
    raw: &Value,
    m: &MapSpec,
    items: Vec<Value>,
) -> Result<Vec<Value>, Failure> {
    let Some(sel) = &m.item_selector else { return Ok(items) };
    let eff = if at.st.jsonata { Cow::Borrowed(raw) } else { input_path(th, at, raw)? };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let ctx = || th.context(at, Some((i, item)));
        let env = Env::new(&eff, &th.vars, &ctx);
        out.push(eval_tpl(at, sel, &env)?);
    }
    Ok(out)
}

pub(super) async fn map(th: &mut Thread, at: &At<'_>, raw: &Value, m: &MapSpec) -> Result<Value, Failure> {
    let st = at.st;
    let plan = map_plan(th, at, raw, m)?;
    let n = plan.items.len();
    let inputs = map_inputs(th, at, raw, m, plan.items)?;
    let started = th.emit(EventType::MapStateStarted, Details::MapStateStarted { length: n })?;
    if m.distributed {
        // The engine made this ARN itself, so it parses.
        let arn = match arn::ExecutionArn::parse(&th.run.exec_arn) {
            Ok(exec) => exec.map_run(&st.name, &fast_uuid()),
            Err(_) => format!("{}/{}:{}", th.run.exec_arn.replace(":execution:", ":mapRun:"), st.name, fast_uuid()),
        };
        th.emit(EventType::MapRunStarted, Details::MapRunStarted { map_run_arn: arn })?;
    }
    let limit = if plan.max_concurrency == 0 { n.max(1) } else { plan.max_concurrency };
    let tolerance_set = plan.tolerated_count.is_some() || plan.tolerated_pct.is_some();
    let mut results: Vec<Value> = vec![Value::Null; n];
    let mut failures = 0usize;
    let mut set = Runner::new();
    let mut inputs = inputs.into_iter().enumerate();
    let outer_vars = Arc::new(th.vars.clone());
    let in_place = m.processor.all_sync && !m.distributed;
    if in_place {
        set = Runner::Ready(std::collections::VecDeque::new());
    }
    let spawn_one = |set: &mut Runner, th: &Thread, i: usize, input: Value| {
        if let Runner::Ready(q) = set {
            let mut child = Thread {
                run: Arc::clone(&th.run),
                log: Arc::clone(&th.log),
                vars: Vars::child_of(&outer_vars),
                prev: started,
            };
            let r = child
                .emit(EventType::MapIterationStarted, Details::MapIteration { name: Arc::clone(&st.name), index: i })
                .and_then(|_| run_sync(&mut child, &m.processor, Arc::new(input)));
            let ty = if r.is_ok() { EventType::MapIterationSucceeded } else { EventType::MapIterationFailed };
            let _ = child.emit(ty, Details::MapIteration { name: Arc::clone(&st.name), index: i });
            q.push_back((i, r));
            return;
        }
        let run = Arc::clone(&th.run);
        let log = if m.distributed {
            // Distributed iterations are child executions with a history of their own.
            Arc::new(HistoryLog::new(run.inner.config.history_limit))
        } else {
            Arc::clone(&th.log)
        };
        let vars = Vars::child_of(&outer_vars);
        let name = Arc::clone(&st.name);
        let machine = Arc::clone(&m.processor);
        let distributed = m.distributed;
        set.push(Box::pin(async move {
            let input = Arc::new(input);
            let mut child = Thread { run, log, vars, prev: started };
            if distributed {
                child.prev = 0;
                let _ = child.emit(
                    EventType::ExecutionStarted,
                    Details::ExecutionStarted { input: Arc::clone(&input), role_arn: String::new() },
                );
            } else if let Err(f) =
                child.emit(EventType::MapIterationStarted, Details::MapIteration { name: Arc::clone(&name), index: i })
            {
                return (i, Err(f));
            }
            let log = Arc::clone(&child.log);
            let clock = Arc::clone(&child.run.inner.config.clock);
            let r = run_machine(child, machine, input).await;
            if !distributed {
                let ty = if r.is_ok() { EventType::MapIterationSucceeded } else { EventType::MapIterationFailed };
                let last = log.len() as u64;
                let _ = log.push(ty, last, clock.now(), Details::MapIteration { name, index: i }, false);
            }
            (i, r)
        }));
    };
    for _ in 0..limit {
        match inputs.next() {
            Some((i, input)) => spawn_one(&mut set, th, i, input),
            None => break,
        }
    }
    let mut first_failure: Option<Failure> = None;
    while let Some((i, r)) = set.next().await {
        match r {
            Ok(v) => {
                if i < n {
                    results[i] = Arc::unwrap_or_clone(v);
                }
            }
            Err(f) => {
                th.prev = th.log.len() as u64;
                if f.error_name() == names::RUNTIME && !tolerance_set {
                    drop(set);
                    th.emit(EventType::MapStateFailed, Details::None)?;
                    return Err(f);
                }
                failures += 1;
                if i < n {
                    results[i] = f.to_error_output();
                }
                let over_count = failures as f64 > plan.tolerated_count.unwrap_or(0.0);
                let over_pct = plan.tolerated_pct.is_none_or(|p| (failures as f64) * 100.0 / (n as f64) > p);
                let over = if tolerance_set {
                    match (plan.tolerated_count, plan.tolerated_pct) {
                        (Some(_), Some(_)) => over_count && over_pct,
                        (Some(_), None) => over_count,
                        (None, Some(_)) => over_pct,
                        (None, None) => true,
                    }
                } else {
                    true
                };
                if first_failure.is_none() {
                    first_failure = Some(f);
                }
                if over {
                    drop(set);
                    th.emit(EventType::MapStateFailed, Details::None)?;
                    if m.distributed {
                        let fail = Failure::new(
                            names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            "The specified tolerated failure threshold was exceeded",
                        );
                        th.emit(
                            EventType::MapRunFailed,
                            Details::Error { error: fail.error.clone(), cause: fail.cause.clone() },
                        )?;
                        return Err(fail);
                    }
                    if tolerance_set {
                        return Err(Failure::new(
                            names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            "The specified tolerated failure threshold was exceeded",
                        ));
                    }
                    return Err(first_failure.unwrap_or_else(|| Failure::new(names::RUNTIME, "a Map iteration failed")));
                }
            }
        }
        if let Some((i, input)) = inputs.next() {
            spawn_one(&mut set, th, i, input);
        }
    }
    // Keep this thread's event chain after the iterations' events.
    th.prev = th.log.len() as u64;
    if m.distributed {
        th.emit(EventType::MapRunSucceeded, Details::None)?;
    }
    th.emit(EventType::MapStateSucceeded, Details::None)?;
    Ok(Value::Array(results))
}
