//! The interpreter: runs a compiled state machine, writing history as it goes.
//!
//! One execution is one tokio task; Parallel branches and Map iterations are tasks of their own
//! (see `Runner`; dropping the parent cancels them). Every `Env` (which is not `Send`) lives
//! only inside synchronous helpers, never across an `.await`.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asl_expr::ExprError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::definition::{
    Catcher, Definition, Kind, Machine, MapSpec, NumSpec, PathOpt, Retrier, State, StrSpec, TaskSpec, TsSpec, WaitSpec,
};
use crate::engine::{Engine, ExecShared, Execution, Inner, Outcome, StartOptions, Status, TokenMsg};
use crate::error::{Failure, names};
use crate::history::{Details, EventType, HistoryLog};
use crate::path::Root;
use crate::task::{TaskCall, TaskContext};
use crate::template::{Env, Tpl, Vars, to_json_text};

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
        Arc::from(format!("arn:aws:states:{}:{}:stateMachine:{sm_name}", cfg.region, cfg.account_id))
    };
    let exec_arn: Arc<str> =
        Arc::from(format!("arn:aws:states:{}:{}:execution:{sm_name}:{exec_name}", cfg.region, cfg.account_id));
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

/// `InputPath`: the effective input, borrowed from the raw input where possible.
fn input_path<'a>(th: &Thread, at: &At<'_>, raw: &'a Value) -> Result<Cow<'a, Value>, Failure> {
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
fn bracketed(p: &str) -> String {
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

trait SelectedExt<'a> {
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
fn input_path_arc(th: &Thread, at: &At<'_>, raw: &Arc<Value>) -> Result<Arc<Value>, Failure> {
    match &at.st.input_path {
        PathOpt::Root => Ok(Arc::clone(raw)),
        _ => Ok(Arc::new(input_path(th, at, raw)?.into_owned())),
    }
}

fn output_path(th: &Thread, at: &At<'_>, v: Arc<Value>) -> Result<Arc<Value>, Failure> {
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

fn result_path(at: &At<'_>, rp: &PathOpt, raw: Arc<Value>, result: Value) -> Result<Arc<Value>, Failure> {
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
fn eval_assign(at: &At<'_>, tpl: Option<&Tpl>, env: &Env<'_>) -> Result<Map<String, Value>, Failure> {
    let Some(t) = tpl else { return Ok(Map::new()) };
    match t.eval(env) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Ok(Map::new()),
        Err(e) => Err(prefix(at, e)),
    }
}

fn eval_tpl(at: &At<'_>, t: &Tpl, env: &Env<'_>) -> Result<Value, Failure> {
    t.eval(env).map_err(|e| prefix(at, e))
}

/// A number field: literal, `...Path` or JSONata. `what` names the field in causes.
fn eval_num(
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

fn tpl_source(t: &Tpl) -> String {
    match t {
        Tpl::Jsonata { src, .. } => src.to_string(),
        _ => String::new(),
    }
}

/// A value as it appears inside AWS's quoted causes: strings bare, the rest as JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => to_json_text(other),
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

fn pass(th: &mut Thread, at: &At<'_>, raw: Arc<Value>, result: Option<&Value>) -> Result<Flow, Failure> {
    let st = at.st;
    let ctx = || th.context(at, None);
    if st.jsonata {
        let env = Env::new(&raw, &th.vars, &ctx);
        let assign = eval_assign(at, st.assign.as_ref(), &env)?;
        let out = match &st.output {
            Some(t) => Some(eval_tpl(at, t, &env)?),
            None => None,
        };
        drop(env);
        th.vars.assign(assign);
        return Ok(flow(st, out.map_or(raw, Arc::new)));
    }
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
fn simple_output(th: &mut Thread, at: &At<'_>, raw: Arc<Value>) -> Result<Arc<Value>, Failure> {
    let st = at.st;
    let ctx = || th.context(at, None);
    if st.jsonata {
        let env = Env::new(&raw, &th.vars, &ctx);
        let assign = eval_assign(at, st.assign.as_ref(), &env)?;
        let out = match &st.output {
            Some(t) => Some(eval_tpl(at, t, &env)?),
            None => None,
        };
        drop(env);
        th.vars.assign(assign);
        return Ok(out.map_or(raw, Arc::new));
    }
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

fn choice(th: &mut Thread, at: &At<'_>, raw: Arc<Value>, c: &crate::definition::ChoiceSpec) -> Result<Flow, Failure> {
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

fn fail(th: &Thread, at: &At<'_>, raw: &Value, f: &crate::definition::FailSpec) -> Result<Failure, Failure> {
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

fn wait_duration(th: &Thread, at: &At<'_>, raw: &Value, w: &WaitSpec) -> Result<Duration, Failure> {
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

/// Task, Parallel and Map: run with Retry, then Catch.
async fn with_retry(th: &mut Thread, at: &At<'_>, raw: Arc<Value>) -> Result<Flow, Failure> {
    let st = at.st;
    let mut counts = vec![0u32; st.retry.len()];
    let mut retry = 0u32;
    loop {
        let at_now = At { st, entered_id: at.entered_id, entered_time: at.entered_time, retry, token: None };
        let attempt = match &st.kind {
            Kind::Task(t) => task(th, &at_now, &raw, t).await,
            Kind::Parallel(bs) => parallel(th, &at_now, &raw, bs).await,
            Kind::Map(m) => map(th, &at_now, &raw, m).await,
            _ => unreachable_kind(&at_now),
        };
        let failure = match attempt {
            Ok(result) => {
                let out = post_process(th, &at_now, raw, result)?;
                return Ok(flow(st, out));
            }
            Err(f) => f,
        };
        if let Some(delay) = retry_delay(&st.retry, &mut counts, &failure) {
            th.run.inner.config.clock.sleep(delay).await;
            retry += 1;
            continue;
        }
        if let Some(c) = st.catch.iter().find(|c| failure.matches(&c.errors)) {
            let out = catch_output(th, &at_now, raw, c, &failure)?;
            return Ok(Flow::Next(c.next, out));
        }
        return Err(failure);
    }
}

fn unreachable_kind(at: &At<'_>) -> Result<Value, Failure> {
    Err(rt(at, "internal error: this state type has no task body"))
}

fn retry_delay(retriers: &[Retrier], counts: &mut [u32], f: &Failure) -> Option<Duration> {
    let (i, r) = retriers.iter().enumerate().find(|(_, r)| f.matches(&r.errors))?;
    if counts[i] >= r.max_attempts {
        return None;
    }
    let n = counts[i];
    counts[i] += 1;
    let mut secs = r.interval_seconds * r.backoff_rate.powi(n as i32);
    if let Some(max) = r.max_delay_seconds {
        secs = secs.min(max);
    }
    if r.jitter_full {
        secs *= rand::random::<f64>();
    }
    Some(Duration::from_secs_f64(secs.clamp(0.0, 1e9)))
}

fn catch_output(
    th: &mut Thread,
    at: &At<'_>,
    raw: Arc<Value>,
    c: &Catcher,
    f: &Failure,
) -> Result<Arc<Value>, Failure> {
    let err_out = f.to_error_output();
    let ctx = || th.context(at, None);
    if at.st.jsonata {
        let (out, assign) = {
            let env = Env::new(&raw, &th.vars, &ctx).with_error_output(Some(&err_out));
            let assign = eval_assign(at, c.assign.as_ref(), &env)?;
            let out = match &c.output {
                Some(t) => eval_tpl(at, t, &env)?,
                None => err_out.clone(),
            };
            (out, assign)
        };
        th.vars.assign(assign);
        return Ok(Arc::new(out));
    }
    let assign = {
        let env = Env::new(&err_out, &th.vars, &ctx);
        eval_assign(at, c.assign.as_ref(), &env)?
    };
    let out = result_path(at, &c.result_path, raw, err_out)?;
    th.vars.assign(assign);
    Ok(out)
}

/// ResultSelector, Assign, ResultPath and OutputPath (or JSONata Assign and Output) applied to a
/// Task/Map/Parallel result.
fn post_process(th: &mut Thread, at: &At<'_>, raw: Arc<Value>, result: Value) -> Result<Arc<Value>, Failure> {
    let st = at.st;
    let ctx = || th.context(at, None);
    if st.jsonata {
        let (out, assign) = {
            let env = Env::new(&raw, &th.vars, &ctx).with_result(Some(&result));
            let assign = eval_assign(at, st.assign.as_ref(), &env)?;
            let out = match &st.output {
                Some(t) => Some(eval_tpl(at, t, &env)?),
                None => None,
            };
            (out, assign)
        };
        th.vars.assign(assign);
        return Ok(Arc::new(out.unwrap_or(result)));
    }
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
fn effective_params(th: &Thread, at: &At<'_>, raw: &Value) -> Result<Value, Failure> {
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

async fn parallel(th: &mut Thread, at: &At<'_>, raw: &Value, branches: &[Arc<Machine>]) -> Result<Value, Failure> {
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

type IterResult = (usize, Result<Arc<Value>, Failure>);

/// Where Map iterations and Parallel branches run: each as a tokio task, so they use every core
/// of a multi-thread runtime and each gets its own cooperative budget; or, for iterations whose
/// states never wait, in place (they would finish on their first poll anyway, and a task per
/// item costs more than the item). Dropping the runner aborts whatever still runs.
enum Runner {
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

struct MapPlan {
    items: Vec<Value>,
    max_concurrency: usize,
    tolerated_count: Option<f64>,
    tolerated_pct: Option<f64>,
}

fn map_plan(th: &Thread, at: &At<'_>, raw: &Value, m: &MapSpec) -> Result<MapPlan, Failure> {
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
fn map_inputs(th: &Thread, at: &At<'_>, raw: &Value, m: &MapSpec, items: Vec<Value>) -> Result<Vec<Value>, Failure> {
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

async fn map(th: &mut Thread, at: &At<'_>, raw: &Value, m: &MapSpec) -> Result<Value, Failure> {
    let st = at.st;
    let plan = map_plan(th, at, raw, m)?;
    let n = plan.items.len();
    let inputs = map_inputs(th, at, raw, m, plan.items)?;
    let started = th.emit(EventType::MapStateStarted, Details::MapStateStarted { length: n })?;
    if m.distributed {
        let arn = format!("{}/{}:{}", th.run.exec_arn.replace(":execution:", ":mapRun:"), st.name, fast_uuid());
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

/// What kind of thing a Task's `Resource` names.
enum Target<'a> {
    /// `arn:aws:states:::lambda:invoke[.waitForTaskToken]`.
    LambdaInvoke { wait_token: bool },
    /// A bare Lambda function ARN.
    LambdaArn(&'a str),
    /// `arn:aws:states:::states:startExecution[.sync[:2]]`.
    StartExecution { sync: u8 },
    /// Any other service integration, handed to the invoker as is.
    Service { service: &'a str, wait_token: bool },
}

fn classify(resource: &str) -> Option<Target<'_>> {
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::") {
        let (service, action) = rest.split_once(':')?;
        let (action, wait_token) = match action.strip_suffix(".waitForTaskToken") {
            Some(a) => (a, true),
            None => (action, false),
        };
        return Some(match (service, action) {
            ("lambda", "invoke") => Target::LambdaInvoke { wait_token },
            ("states", "startExecution") if !wait_token => Target::StartExecution { sync: 0 },
            ("states", "startExecution.sync") => Target::StartExecution { sync: 1 },
            ("states", "startExecution.sync:2") => Target::StartExecution { sync: 2 },
            _ => Target::Service { service, wait_token },
        });
    }
    let parts: Vec<&str> = resource.split(':').collect();
    if parts.len() >= 7 && parts[2] == "lambda" && parts[5] == "function" {
        return Some(Target::LambdaArn(parts[6]));
    }
    None
}

async fn task(th: &mut Thread, at: &At<'_>, raw: &Value, t: &TaskSpec) -> Result<Value, Failure> {
    let st = at.st;
    let region = th.run.inner.config.region.clone();
    let Some(target) = classify(&t.resource) else {
        return Err(rt(at, format!("The resource '{}' is not supported by the local engine.", t.resource)));
    };
    let timeout = eval_num(th, at, &t.timeout, raw, "TimeoutSeconds", true)?.map(|s| s as u64);
    let heartbeat = eval_num(th, at, &t.heartbeat, raw, "HeartbeatSeconds", true)?.map(|s| s as u64);
    let wait_token =
        matches!(target, Target::LambdaInvoke { wait_token: true } | Target::Service { wait_token: true, .. });
    let token = wait_token.then(|| format!("{}-{}", fast_uuid(), Engine::next_id(&th.run.inner)));
    let params = {
        let at_tok = At {
            st,
            entered_id: at.entered_id,
            entered_time: at.entered_time,
            retry: at.retry,
            token: token.as_deref(),
        };
        effective_params(th, &at_tok, raw)?
    };
    if let Some(limit) = th.run.inner.config.payload_limit
        && json_size(&params) > limit
    {
        return Err(Failure::new(
            names::DATA_LIMIT_EXCEEDED,
            format!(
                "The state/task '{}' has an input with a size exceeding the maximum number of bytes service limit.",
                st.name
            ),
        ));
    }
    let (resource_type, resource) = match &target {
        Target::LambdaInvoke { .. } => {
            ("lambda".to_owned(), t.resource.trim_start_matches("arn:aws:states:::lambda:").to_owned())
        }
        Target::StartExecution { .. } => {
            ("states".to_owned(), t.resource.trim_start_matches("arn:aws:states:::states:").to_owned())
        }
        Target::Service { service, .. } => (
            service.to_string(),
            t.resource
                .trim_start_matches("arn:aws:states:::")
                .split_once(':')
                .map_or(String::new(), |x| x.1.to_owned()),
        ),
        Target::LambdaArn(_) => (String::new(), t.resource.clone()),
    };
    let bare = matches!(target, Target::LambdaArn(_));
    if bare {
        th.emit(
            EventType::LambdaFunctionScheduled,
            Details::LambdaScheduled { resource: t.resource.clone(), input: params.clone(), timeout_seconds: timeout },
        )?;
        th.emit(EventType::LambdaFunctionStarted, Details::None)?;
    } else {
        th.emit(
            EventType::TaskScheduled,
            Details::TaskScheduled {
                resource_type: resource_type.clone(),
                resource: resource.clone(),
                region,
                parameters: params.clone(),
                timeout_seconds: timeout,
                heartbeat_seconds: heartbeat,
            },
        )?;
        th.emit(
            EventType::TaskStarted,
            Details::TaskStarted { resource_type: resource_type.clone(), resource: resource.clone() },
        )?;
    }

    let ctx = TaskContext {
        execution_arn: th.run.exec_arn.to_string(),
        state_name: st.name.to_string(),
        retry_count: at.retry,
        task_token: token.clone(),
    };
    // Register the token before invoking: the function may call back before it returns.
    let mut token_rx = None;
    if let Some(tok) = &token {
        let (tx, rx) = mpsc::unbounded_channel();
        th.run.inner.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(tok.clone(), tx);
        token_rx = Some(rx);
    }
    let _guard = TokenGuard { inner: Arc::clone(&th.run.inner), token: token.clone() };
    let clock = Arc::clone(&th.run.inner.config.clock);
    let deadline = async {
        match timeout {
            Some(s) => clock.deadline(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);

    let invoked = tokio::select! {
        r = invoke(th, &target, &t.resource, params, ctx) => r,
        _ = &mut deadline => Err(Failure { error: Some(names::TIMEOUT.into()), cause: None }),
    };
    let result = match (invoked, token_rx) {
        (Ok(submitted), Some(mut rx)) => {
            // `.waitForTaskToken`: the invocation only hands out the token; wait for the callback.
            th.emit(
                EventType::TaskSubmitted,
                Details::TaskOutput {
                    resource_type: resource_type.clone(),
                    resource: resource.clone(),
                    output: submitted,
                },
            )?;
            loop {
                let beat = async {
                    match heartbeat {
                        Some(s) => clock.deadline(Duration::from_secs(s)).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(TokenMsg::Success(v)) => break Ok(v),
                        Some(TokenMsg::Failure(f)) => break Err(f),
                        Some(TokenMsg::Heartbeat) => continue,
                        None => break Err(Failure::new(names::RUNTIME, "the callback channel closed")),
                    },
                    _ = beat => break Err(Failure { error: Some(names::HEARTBEAT_TIMEOUT.into()), cause: None }),
                    _ = &mut deadline => break Err(Failure { error: Some(names::TIMEOUT.into()), cause: None }),
                }
            }
        }
        (r, _) => r,
    };
    match result {
        Ok(v) => {
            if let Some(limit) = th.run.inner.config.payload_limit
                && json_size(&v) > limit
            {
                let f = Failure::new(
                    names::DATA_LIMIT_EXCEEDED,
                    format!(
                        "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                        st.name
                    ),
                );
                emit_task_failure(th, bare, &resource_type, &resource, &f)?;
                return Err(f);
            }
            if bare {
                th.emit(EventType::LambdaFunctionSucceeded, Details::LambdaSucceeded { output: v.clone() })?;
            } else {
                th.emit(EventType::TaskSucceeded, Details::TaskOutput { resource_type, resource, output: v.clone() })?;
            }
            Ok(v)
        }
        Err(f) => {
            emit_task_failure(th, bare, &resource_type, &resource, &f)?;
            Err(f)
        }
    }
}

fn emit_task_failure(
    th: &mut Thread,
    bare: bool,
    resource_type: &str,
    resource: &str,
    f: &Failure,
) -> Result<(), Failure> {
    let timed_out = matches!(f.error_name(), names::TIMEOUT | names::HEARTBEAT_TIMEOUT);
    if bare {
        let ty = if timed_out { EventType::LambdaFunctionTimedOut } else { EventType::LambdaFunctionFailed };
        th.emit(ty, Details::LambdaError { error: f.error.clone(), cause: f.cause.clone() })?;
    } else {
        let ty = if timed_out { EventType::TaskTimedOut } else { EventType::TaskFailed };
        th.emit(
            ty,
            Details::TaskError {
                resource_type: resource_type.to_owned(),
                resource: resource.to_owned(),
                error: f.error.clone(),
                cause: f.cause.clone(),
            },
        )?;
    }
    Ok(())
}

/// Removes a task token from the registry when the task ends, however it ends.
struct TokenGuard {
    inner: Arc<Inner>,
    token: Option<String>,
}

impl Drop for TokenGuard {
    fn drop(&mut self) {
        if let Some(t) = &self.token {
            self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner()).remove(t);
        }
    }
}

async fn invoke(
    th: &Thread,
    target: &Target<'_>,
    resource: &str,
    params: Value,
    ctx: TaskContext,
) -> Result<Value, Failure> {
    let invoker = Arc::clone(&th.run.inner.config.invoker);
    match target {
        Target::LambdaInvoke { wait_token } => {
            let Some(obj) = params.as_object() else {
                return Err(Failure::new(names::RUNTIME, "lambda:invoke needs Parameters with FunctionName"));
            };
            let Some(fname) = obj.get("FunctionName").and_then(Value::as_str) else {
                return Err(Failure::new(
                    names::RUNTIME,
                    "The field 'FunctionName' is required by lambda:invoke but was not found in the Parameters.",
                ));
            };
            let payload = obj.get("Payload").cloned().unwrap_or(Value::Object(Map::new()));
            let call =
                TaskCall { resource: resource.to_owned(), function_name: fname.to_owned(), payload, context: ctx };
            let out = invoker.invoke(call).await.map_err(|e| Failure { error: Some(e.error), cause: Some(e.cause) })?;
            let wrapped = json!({
                "ExecutedVersion": "$LATEST",
                "Payload": out,
                "SdkHttpMetadata": {"HttpHeaders": {"Content-Type": "application/json"}, "HttpStatusCode": 200},
                "SdkResponseMetadata": {"RequestId": uuid::Uuid::new_v4().to_string()},
                "StatusCode": 200,
            });
            let _ = wait_token;
            Ok(wrapped)
        }
        Target::LambdaArn(name) => {
            let call = TaskCall {
                resource: resource.to_owned(),
                function_name: (*name).to_owned(),
                payload: params,
                context: ctx,
            };
            invoker.invoke(call).await.map_err(|e| Failure { error: Some(e.error), cause: Some(e.cause) })
        }
        Target::Service { .. } => {
            let call =
                TaskCall { resource: resource.to_owned(), function_name: String::new(), payload: params, context: ctx };
            invoker.invoke(call).await.map_err(|e| Failure { error: Some(e.error), cause: Some(e.cause) })
        }
        Target::StartExecution { sync } => start_child(th, *sync, params).await,
    }
}

/// `states:startExecution[.sync[:2]]`: a child execution on the same engine.
async fn start_child(th: &Thread, sync: u8, params: Value) -> Result<Value, Failure> {
    let inner = &th.run.inner;
    let Some(arn) = params.get("StateMachineArn").and_then(Value::as_str) else {
        return Err(Failure::new(names::RUNTIME, "startExecution needs Parameters.StateMachineArn"));
    };
    let def = inner.machines.read().unwrap_or_else(|p| p.into_inner()).get(arn).cloned();
    let Some(def) = def else {
        return Err(Failure::new(
            "StepFunctions.StateMachineDoesNotExistException",
            format!("State Machine Does Not Exist: '{arn}'"),
        ));
    };
    let sm_name = arn.rsplit(':').next().unwrap_or("child").to_owned();
    let input = match params.get("Input") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Some(v) => v.clone(),
        None => Value::Object(Map::new()),
    };
    let name = params.get("Name").and_then(Value::as_str).map(str::to_owned);
    let exec = start(Arc::clone(inner), def, input.clone(), StartOptions { name, state_machine_name: Some(sm_name) });
    if sync == 0 {
        return Ok(json!({"ExecutionArn": exec.arn(), "StartDate": ts(exec.start_date())}));
    }
    let o = exec.wait().await;
    let as_field = |v: &Value| if sync == 2 { v.clone() } else { Value::String(to_json_text(v)) };
    let mut desc = json!({
        "ExecutionArn": exec.arn(),
        "Input": as_field(&input),
        "InputDetails": {"Included": true},
        "Name": exec.name(),
        "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE",
        "StartDate": ts(o.start_date),
        "StateMachineArn": arn,
        "Status": o.status.as_str(),
        "StopDate": ts(o.stop_date),
    });
    match o.status {
        Status::Succeeded => {
            if let Some(m) = desc.as_object_mut() {
                m.insert("Output".into(), as_field(o.output.as_ref().unwrap_or(&Value::Null)));
                m.insert("OutputDetails".into(), json!({"Included": true}));
            }
            Ok(desc)
        }
        _ => {
            if let Some(m) = desc.as_object_mut() {
                if let Some(e) = &o.error {
                    m.insert("Error".into(), e.clone().into());
                }
                if let Some(c) = &o.cause {
                    m.insert("Cause".into(), c.clone().into());
                }
            }
            let error = match o.status {
                Status::TimedOut => names::TIMEOUT,
                _ => names::TASK_FAILED,
            };
            Err(Failure::new(error, to_json_text(&desc)))
        }
    }
}
