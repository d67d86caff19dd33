//! The interpreter: runs a compiled state machine, writing history as it goes.
//!
//! One execution is one tokio task; Parallel branches and Map iterations are tasks of their own
//! (see `map::Runner`; dropping the parent cancels them). Every `Env` (which is not `Send`) lives
//! only inside synchronous helpers, never across an `.await`.
//!
//! This module is the driver: starting (or resuming) an execution, the [`Thread`] a sequential
//! flow of states runs on (history events, the context object `$$`), the loop from state to
//! state, and the limits checked when a state is left. The states themselves:
//!
//! - `states`: Pass, Choice, Succeed, Fail and Wait (the states that never call out);
//! - `io`: the input and output processing all states share (paths, `Parameters`, `Assign`,
//!   JSONata `Output`);
//! - `retry`: Retry and Catch around Task, Parallel and Map;
//! - `map`: Map and Parallel, which run child threads;
//! - `task`: Task (invocations, task tokens, child executions).

mod io;
mod map;
mod retry;
mod states;
mod task;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asl_expr::ExprError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use crate::definition::{Definition, Kind, Machine, State};
use crate::engine::{ExecShared, Execution, Inner, Outcome, StartOptions, Status};
use crate::error::{Failure, names};
use crate::history::{Details, EventType, HistoryLog};
use crate::template::Vars;

use self::retry::with_retry;
use self::states::{choice, fail, pass, simple_output, wait_duration};

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Per-execution data shared by all its threads.
pub(crate) struct Run {
    pub inner: Arc<Inner>,
    pub def: Arc<Definition>,
    pub exec_arn: Arc<str>,
    pub exec_name: Arc<str>,
    pub sm_arn: Arc<str>,
    pub sm_name: Arc<str>,
    pub start_date: DateTime<Utc>,
    pub input: Arc<Value>,
    pub role_arn: Arc<str>,
    /// `$$.Execution.RedriveCount`: 0 unless the execution was resumed by a redrive.
    pub redrive_count: u32,
}

/// One sequential flow of states: the execution itself, a Parallel branch or a Map iteration.
pub(crate) struct Thread {
    run: Arc<Run>,
    log: Arc<HistoryLog>,
    vars: Vars,
    prev: u64,
}

/// Where a state is in its run, for the context object and error causes.
struct At<'a> {
    st: &'a State,
    entered_id: u64,
    entered_time: DateTime<Utc>,
    retry: u32,
    token: Option<&'a str>,
}

enum Flow {
    Next(usize, Arc<Value>),
    End(Arc<Value>),
}

/// A random UUID (v4) from the thread-local generator: no system call per execution.
pub(crate) fn fast_uuid() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b: u128 = rand::random::<u128>();
    b = (b & !(0xF000u128 << 64)) | (0x4000u128 << 64);
    b = (b & !(0xC000u128 << 48)) | (0x8000u128 << 48);
    let mut out = String::with_capacity(36);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        let nibble = ((b >> (124 - 4 * i)) & 0xF) as usize;
        out.push(HEX[nibble] as char);
    }
    out
}

/// The deepest nesting of arrays and objects a state output may have (Jackson's default limit,
/// which AWS's JSON handling is built on).
const MAX_DEPTH: usize = 1000;

/// Whether `v` nests arrays/objects more than `limit` levels deep. Stops early.
fn too_deep(v: &Value, limit: usize) -> bool {
    match v {
        Value::Array(a) => limit == 0 || a.iter().any(|x| too_deep(x, limit - 1)),
        Value::Object(m) => limit == 0 || m.values().any(|x| too_deep(x, limit - 1)),
        _ => false,
    }
}

/// The size of a value serialized as compact JSON, without allocating the text.
pub(crate) fn json_size(v: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn prefix(at: &At<'_>, e: ExprError) -> Failure {
    Failure {
        error: Some(e.error),
        cause: Some(format!(
            "An error occurred while executing the state '{}' (entered at the event id #{}). {}",
            at.st.name, at.entered_id, e.cause
        )),
    }
}

fn rt(at: &At<'_>, cause: impl Into<String>) -> Failure {
    prefix(at, ExprError::runtime(cause))
}

/// Starts an execution as a tokio task.
pub(crate) fn start(inner: Arc<Inner>, def: Arc<Definition>, input: Value, opts: StartOptions) -> Execution {
    start_at(inner, def, input, opts, None)
}

/// Where a resumed (redriven) execution continues: a top-level state index, its input and the
/// redrive count.
pub(crate) type ResumeAt = (usize, Value, u32);

/// Starts an execution, or resumes one at a top-level state (no `ExecutionStarted` event then:
/// the caller continues a history it already holds).
pub(crate) fn start_at(
    inner: Arc<Inner>,
    def: Arc<Definition>,
    input: Value,
    opts: StartOptions,
    resume: Option<ResumeAt>,
) -> Execution {
    let cfg = &inner.config;
    let sm_name: Arc<str> = match opts.state_machine_name {
        Some(n) => Arc::from(n),
        None => Arc::clone(&inner.default_sm_name),
    };
    let exec_name: Arc<str> = Arc::from(opts.name.unwrap_or_else(fast_uuid));
    let sm_arn: Arc<str> = if Arc::ptr_eq(&sm_name, &inner.default_sm_name) {
        Arc::clone(&inner.default_sm_arn)
    } else {
        Arc::from(arn::StateMachineArn::new(&cfg.region, &cfg.account_id, &sm_name).to_string())
    };
    let exec_arn: Arc<str> =
        Arc::from(arn::ExecutionArn::new(&cfg.region, &cfg.account_id, &sm_name, &exec_name).to_string());
    let start_date = cfg.clock.now();
    let log = Arc::new(HistoryLog::new(cfg.history_limit));
    let (stop_tx, stop_rx) = oneshot::channel::<Failure>();
    let role_arn = Arc::clone(&inner.role_arn);
    let input = Arc::new(input);
    let shared = Arc::new(ExecShared {
        arn: Arc::clone(&exec_arn),
        name: Arc::clone(&exec_name),
        state_machine_arn: Arc::clone(&sm_arn),
        start_date,
        input: Arc::clone(&input),
        log: Arc::clone(&log),
        outcome: std::sync::OnceLock::new(),
        done: tokio::sync::Notify::new(),
        stop: Mutex::new(Some(stop_tx)),
    });
    let run = Arc::new(Run {
        inner: Arc::clone(&inner),
        def: Arc::clone(&def),
        exec_arn,
        exec_name,
        sm_arn,
        sm_name,
        start_date,
        input: Arc::clone(&input),
        role_arn: Arc::clone(&role_arn),
        redrive_count: resume.as_ref().map_or(0, |r| r.2),
    });
    let finisher = Finisher { shared: Arc::clone(&shared), start_date };
    let fut = async move {
        let finisher = finisher;
        let clock = Arc::clone(&run.inner.config.clock);
        let mut th = Thread { run: Arc::clone(&run), log: Arc::clone(&log), vars: Vars::default(), prev: 0 };
        let started = match resume {
            Some(_) => Ok(0),
            None => th.emit(
                EventType::ExecutionStarted,
                Details::ExecutionStarted { input: Arc::clone(&input), role_arn: role_arn.to_string() },
            ),
        };
        let too_big = run.inner.config.payload_limit.is_some_and(|l| json_size(&input) > l);
        let result: Result<Arc<Value>, (Status, Failure)> = if let Err(f) = started {
            Err((Status::Failed, f))
        } else if too_big {
            Err((
                Status::Failed,
                Failure::new(
                    names::DATA_LIMIT_EXCEEDED,
                    "The input to the execution exceeds the maximum number of bytes service limit.",
                ),
            ))
        } else {
            let machine = Arc::clone(&run.def.root);
            let body = match resume {
                Some((idx, state_input, _)) => run_machine_from(th, machine, idx, Arc::new(state_input)),
                None => run_machine(th, machine, input),
            };
            let timeout = run.def.timeout_seconds.map(|s| clock.deadline(Duration::from_secs(s)));
            tokio::select! {
                r = body => r.map_err(|f| (Status::Failed, f)),
                stop = stop_rx => {
                    let f = stop.unwrap_or(Failure { error: None, cause: None });
                    Err((Status::Aborted, f))
                }
                _ = async { match timeout { Some(t) => t.await, None => std::future::pending().await } } => {
                    Err((Status::TimedOut, Failure { error: Some(names::TIMEOUT.into()), cause: Some("The execution timed out.".into()) }))
                }
            }
        };
        let last = log.len() as u64;
        let now = clock.now();
        let outcome = match result {
            Ok(output) => {
                let _ = log.push(
                    EventType::ExecutionSucceeded,
                    last,
                    now,
                    Details::ExecutionSucceeded { output: Arc::clone(&output) },
                    true,
                );
                let output = Arc::unwrap_or_clone(output);
                Outcome {
                    status: Status::Succeeded,
                    output: Some(output),
                    error: None,
                    cause: None,
                    start_date,
                    stop_date: now,
                }
            }
            Err((status, f)) => {
                let ty = match status {
                    Status::Aborted => EventType::ExecutionAborted,
                    Status::TimedOut => EventType::ExecutionTimedOut,
                    _ => EventType::ExecutionFailed,
                };
                let _ =
                    log.push(ty, last, now, Details::Error { error: f.error.clone(), cause: f.cause.clone() }, true);
                Outcome { status, output: None, error: f.error, cause: f.cause, start_date, stop_date: now }
            }
        };
        log.close();
        finisher.shared.finish(outcome);
    };
    tokio::spawn(fut);
    Execution { shared }
}

/// Gives waiters an outcome even if the runner is dropped before it ends (its runtime shut
/// down): they would otherwise wait forever.
struct Finisher {
    shared: Arc<ExecShared>,
    start_date: DateTime<Utc>,
}

impl Drop for Finisher {
    fn drop(&mut self) {
        if self.shared.outcome.get().is_none() {
            self.shared.finish(Outcome {
                status: Status::Aborted,
                output: None,
                error: Some(names::RUNTIME.into()),
                cause: Some("the engine's runtime shut down while the execution was running".into()),
                start_date: self.start_date,
                stop_date: Utc::now(),
            });
        }
    }
}

impl Thread {
    fn emit(&mut self, ty: EventType, details: Details) -> Result<u64, Failure> {
        let now = self.run.inner.config.clock.now();
        self.emit_at(ty, details, now)
    }

    fn emit_at(&mut self, ty: EventType, details: Details, now: DateTime<Utc>) -> Result<u64, Failure> {
        match self.log.push(ty, self.prev, now, details, false) {
            Ok(id) => {
                self.prev = id;
                Ok(id)
            }
            Err(_) => Err(Failure::new(
                names::RUNTIME,
                format!(
                    "The execution reached the maximum number of history events ({}).",
                    self.run.inner.config.history_limit
                ),
            )),
        }
    }

    fn child(&self, prev: u64) -> Thread {
        Thread { run: Arc::clone(&self.run), log: Arc::clone(&self.log), vars: self.vars.child(), prev }
    }

    /// The context object (`$$`) for a state.
    fn context(&self, at: &At<'_>, item: Option<(usize, &Value)>) -> Value {
        let r = &self.run;
        let mut m = Map::new();
        m.insert(
            "Execution".into(),
            json!({
                "Id": r.exec_arn.as_ref(),
                "Input": *r.input,
                "StartTime": ts(r.start_date),
                "Name": r.exec_name.as_ref(),
                "RoleArn": r.role_arn.as_ref(),
                "RedriveCount": r.redrive_count,
            }),
        );
        m.insert("StateMachine".into(), json!({"Id": r.sm_arn.as_ref(), "Name": r.sm_name.as_ref()}));
        m.insert(
            "State".into(),
            json!({"EnteredTime": ts(at.entered_time), "Name": at.st.name.as_ref(), "RetryCount": at.retry}),
        );
        if let Some(t) = at.token {
            m.insert("Task".into(), json!({"Token": t}));
        }
        if let Some((i, v)) = item {
            m.insert("Map".into(), json!({"Item": {"Index": i, "Value": v}}));
        }
        Value::Object(m)
    }
}

/// Runs a state machine from its StartAt to an end, returning the final output.
pub(crate) fn run_machine(th: Thread, machine: Arc<Machine>, input: Arc<Value>) -> BoxFut<Result<Arc<Value>, Failure>> {
    let start = machine.start;
    run_machine_from(th, machine, start, input)
}

/// States that never wait take nanoseconds; a run of them shares one reading of the clock
/// (refreshed every 32 states), which keeps millisecond timestamps honest and the clock off the
/// hot path. A state that waited (Task, Wait, Map, Parallel) makes the reading stale: start a new
/// `ClockReading::default()` after it.
#[derive(Default)]
struct ClockReading(Option<(DateTime<Utc>, u32)>);

impl ClockReading {
    fn now(&mut self, th: &Thread) -> DateTime<Utc> {
        match self.0 {
            Some((t, n)) if n < 32 => {
                self.0 = Some((t, n + 1));
                t
            }
            _ => {
                let t = th.run.inner.config.clock.now();
                self.0 = Some((t, 0));
                t
            }
        }
    }
}

/// Runs a state machine from the state at `idx` to an end.
fn run_machine_from(
    mut th: Thread,
    machine: Arc<Machine>,
    idx: usize,
    input: Arc<Value>,
) -> BoxFut<Result<Arc<Value>, Failure>> {
    Box::pin(async move {
        let mut idx = idx;
        let mut input = input;
        let mut clock_reading = ClockReading::default();
        loop {
            let st = &machine.states[idx];
            let (entered_ty, exited_ty) = state_event_types(&st.kind);
            let entered_time = clock_reading.now(&th);
            let entered_id = th.emit_at(
                entered_ty,
                Details::StateEntered { name: Arc::clone(&st.name), input: Arc::clone(&input) },
                entered_time,
            )?;
            let at = At { st, entered_id, entered_time, retry: 0, token: None };
            // The address only: a raw pointer would make this future not `Send`.
            let input_ptr = Arc::as_ptr(&input) as usize;
            // Pass, Choice, Succeed and Fail never wait: run them without building a future.
            // Those states take no time, so their exit shares the entry's timestamp.
            let (flow, exited_time) = match &st.kind {
                Kind::Pass { result } => (pass(&mut th, &at, input, result.as_ref())?, entered_time),
                Kind::Choice(c) => (choice(&mut th, &at, input, c)?, entered_time),
                Kind::Succeed => (Flow::End(simple_output(&mut th, &at, input)?), entered_time),
                Kind::Fail(f) => return Err(fail(&th, &at, &input, f)?),
                _ => {
                    let f = exec_async(&mut th, &at, input).await?;
                    clock_reading = ClockReading::default();
                    (f, th.run.inner.config.clock.now())
                }
            };
            match leave_state(&mut th, &at, exited_ty, flow, input_ptr, exited_time)? {
                Flow::Next(n, output) => {
                    idx = n;
                    input = output;
                }
                Flow::End(output) => return Ok(output),
            }
            // A loop of states that never wait must still let other executions (and `stop`) run.
            tokio::task::consume_budget().await;
        }
    })
}

/// Runs a machine whose states never wait ([`Machine::all_sync`]) to its end, in place.
fn run_sync(th: &mut Thread, machine: &Machine, input: Arc<Value>) -> Result<Arc<Value>, Failure> {
    let mut idx = machine.start;
    let mut input = input;
    let mut clock_reading = ClockReading::default();
    loop {
        let st = &machine.states[idx];
        let (entered_ty, exited_ty) = state_event_types(&st.kind);
        let entered_time = clock_reading.now(th);
        let entered_id = th.emit_at(
            entered_ty,
            Details::StateEntered { name: Arc::clone(&st.name), input: Arc::clone(&input) },
            entered_time,
        )?;
        let at = At { st, entered_id, entered_time, retry: 0, token: None };
        let input_ptr = Arc::as_ptr(&input) as usize;
        let flow = match &st.kind {
            Kind::Pass { result } => pass(th, &at, input, result.as_ref())?,
            Kind::Choice(c) => choice(th, &at, input, c)?,
            Kind::Succeed => Flow::End(simple_output(th, &at, input)?),
            Kind::Fail(f) => return Err(fail(th, &at, &input, f)?),
            _ => return Err(rt(&at, "internal error: a waiting state in a machine run in place")),
        };
        match leave_state(th, &at, exited_ty, flow, input_ptr, entered_time)? {
            Flow::Next(n, output) => {
                idx = n;
                input = output;
            }
            Flow::End(output) => return Ok(output),
        }
    }
}

/// After a state ran: refuses an output nested without bound, records the state's exit, and
/// hands back where to go. A state that built a new value could have nested it deeper (e.g. a
/// loop wrapping its input in Parameters); values nested without bound would overflow the stack
/// when dropped or serialized, so they fail the execution instead.
fn leave_state(
    th: &mut Thread,
    at: &At<'_>,
    exited_ty: Option<EventType>,
    flow: Flow,
    input_ptr: usize,
    exited_time: DateTime<Utc>,
) -> Result<Flow, Failure> {
    let output = match &flow {
        Flow::Next(_, v) | Flow::End(v) => v,
    };
    if Arc::as_ptr(output) as usize != input_ptr && too_deep(output, MAX_DEPTH) {
        return Err(rt(at, format!("The state's output is nested deeper than {MAX_DEPTH} levels.")));
    }
    if let Some(ty) = exited_ty {
        th.emit_at(
            ty,
            Details::StateExited { name: Arc::clone(&at.st.name), output: Arc::clone(output) },
            exited_time,
        )?;
    }
    Ok(flow)
}

fn state_event_types(k: &Kind) -> (EventType, Option<EventType>) {
    use EventType::*;
    match k {
        Kind::Pass { .. } => (PassStateEntered, Some(PassStateExited)),
        Kind::Task(_) => (TaskStateEntered, Some(TaskStateExited)),
        Kind::Choice(_) => (ChoiceStateEntered, Some(ChoiceStateExited)),
        Kind::Wait(_) => (WaitStateEntered, Some(WaitStateExited)),
        Kind::Succeed => (SucceedStateEntered, Some(SucceedStateExited)),
        Kind::Fail(_) => (FailStateEntered, None),
        Kind::Parallel(_) => (ParallelStateEntered, Some(ParallelStateExited)),
        Kind::Map(_) => (MapStateEntered, Some(MapStateExited)),
    }
}

fn flow(st: &State, v: Arc<Value>) -> Flow {
    match st.next {
        Some(n) => Flow::Next(n, v),
        None => Flow::End(v),
    }
}

/// The states that can wait: Wait, Task, Parallel, Map. Boxed so that the loop in
/// [`run_machine_from`] stays small for the synchronous states.
fn exec_async<'a>(
    th: &'a mut Thread,
    at: &'a At<'a>,
    raw: Arc<Value>,
) -> Pin<Box<dyn Future<Output = Result<Flow, Failure>> + Send + 'a>> {
    Box::pin(async move {
        let st = at.st;
        match &st.kind {
            Kind::Wait(w) => {
                let d = wait_duration(th, at, &raw, w)?;
                if !d.is_zero() {
                    th.run.inner.config.clock.sleep(d).await;
                }
                let out = simple_output(th, at, raw)?;
                Ok(flow(st, out))
            }
            _ => with_retry(th, at, raw).await,
        }
    })
}
