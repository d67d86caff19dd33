//! `weft run GRAPH [--input JSON | --input-file FILE] [--secrets FILE] [--workflows DIR] [--fast-timers]
//! [--quiet] [--history FILE]`.
//!
//! Compiles the graph, runs the state machine on the local engine with the node functions
//! in-process (`local-functions`: the same handlers the Lambdas run), shows per-node progress on
//! stderr while it runs, and prints the execution's output JSON on stdout.
//!
//! `--history FILE` writes the execution's history there when it ends, as Step Functions'
//! `GetExecutionHistory` returns it (`{"events": [...]}`), e.g. to compare a run with the same
//! workflow on AWS or LocalStack.
//!
//! Exit 0: SUCCEEDED. Exit 1: FAILED, TIMED_OUT or ABORTED (error, cause and node on stderr).
//! Exit 2: the graph is invalid, or uses a node type whose function cannot run locally yet
//! (diagnostics on stderr), or needs secrets that `--secrets` does not give (named on stderr),
//! or a usage/IO error.
//!
//! Sub-workflows: a `workflow` node's `workflow_id` names a graph in `--workflows DIR` (each
//! `*.json` file there is a graph, found by its `id`, or by its file name without `.json` when it
//! has none); the children (and theirs) are compiled and registered with the engine, and run as
//! its child executions (`startExecution.sync:2`). A missing child, or graphs that call each
//! other in a circle, is exit 2 naming the node or the path.
//!
//! Secrets: `{{ secrets.NAME }}` is resolved only from the `--secrets` file (a JSON object of
//! strings, or dotenv `NAME=value` lines), never from the environment; the values are scrubbed
//! (`***`) from node outputs and errors, as in every deployment.
//!
//! AI nodes (`llm`, `agent`, `multi_agent`, `vector_search`, `vector_upsert`) call the model
//! provider of `OPENAI_BASE_URL` / `OPENAI_API_KEY` and the Milvus of `WEFT_MILVUS_URL` (as their
//! Lambdas do). Their text is printed live on stderr as it streams (`[node] ...`, `[node.agent]
//! ...` for a `multi_agent` node's agents), unless `--quiet`, and when any of them ran, one line
//! at the end gives the execution's model usage: `model usage: N input tokens, M output tokens,
//! $C` (every agent turn once, plus each `llm` node's output). Vector data belongs to one fixed
//! tenant, [`LOCAL_TENANT`]: every `weft run` against the same Milvus sees the same collections.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use compiler::{CompileOptions, Diagnostic, Graph};
use engine::history::Details;
use engine::{Definition, Engine, EngineConfig, EventType, HistoryEvent, StartOptions, Status};
use futures::StreamExt;
use local_functions::tenant_secrets::StaticSecrets;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow graph (weft/v1 JSON); `-` reads standard input.
    pub graph: PathBuf,
    /// The execution input as JSON text (default `{}`).
    #[arg(long, conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the execution input from a JSON file (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// The graph's `{{ secrets.NAME }}` values: a JSON object of strings or dotenv `NAME=value`
    /// lines. Without it, a graph that uses secrets does not run (exit 2, naming them).
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
    /// A folder of graphs that `workflow` nodes name by id (`workflow_id`), run as child
    /// executions.
    #[arg(long, value_name = "DIR")]
    pub workflows: Option<PathBuf>,
    /// Virtual time: `delay` nodes and retry intervals pass instantly.
    #[arg(long)]
    pub fast_timers: bool,
    /// No progress on stderr; only the output (stdout) and errors.
    #[arg(long)]
    pub quiet: bool,
    /// Write the execution's history to FILE at the end, in `GetExecutionHistory`'s shape.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
}

/// `input_schema.examples[0]` of the graph's start node, if it has one.
fn schema_example(graph: &Graph) -> Option<Value> {
    let start = graph.nodes.iter().find(|n| n.node_type == "start")?;
    start.data.get("input_schema")?.get("examples")?.as_array()?.first().cloned()
}

/// The tenant every `weft run` execution belongs to, for the vector functions (whose data is
/// scoped by tenant): one local tenant, so collections ingested by one run are searched by the next.
pub const LOCAL_TENANT: &str = "local";

/// The diagnostic code for a node whose function cannot run under `weft run` yet.
pub const NOT_RUNNABLE: &str = "not-runnable-locally";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = super::compile::read_input(&args.graph)?;
    let input = match (&args.input, &args.input_file) {
        (Some(json), _) => Some(serde_json::from_str(json).context("--input is not valid JSON")?),
        (None, Some(path)) => {
            let text = super::compile::read_input(path)?;
            Some(serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?)
        }
        (None, None) => None,
    };
    let graph = match compiler::parse(&text) {
        Ok(g) => g,
        Err(diags) => return Ok(invalid(&diags)),
    };
    let input = match input {
        Some(input) => input,
        // Without --input, a graph that documents its input runs on the first example of its
        // start node's JSON Schema (`input_schema.examples[0]`), so `weft run examples/x.json`
        // works as it is; otherwise the input is `{}`.
        None => match schema_example(&graph) {
            Some(example) => {
                if !args.quiet {
                    eprintln!("  input: the first example of the start node's input_schema");
                }
                example
            }
            None => Value::Object(Default::default()),
        },
    };
    let library = match &args.workflows {
        Some(dir) => load_workflows(dir)?,
        None => HashMap::new(),
    };
    let options = CompileOptions {
        workflows: library.keys().map(|id| (id.clone(), machine_name(id))).collect(),
        ..CompileOptions::default()
    };
    let children = match children(&graph, &library) {
        Ok(children) => children,
        Err(diags) => return Ok(invalid(&diags)),
    };
    let mut unrunnable = not_runnable(&graph);
    let mut child_definitions = Vec::new();
    for id in &children {
        let child = &library[id];
        unrunnable.extend(not_runnable(child));
        match compiler::compile(child, &options) {
            Ok(c) => child_definitions.push((id.clone(), c.asl)),
            Err(diags) => {
                eprintln!("in workflow `{id}` (--workflows):");
                return Ok(invalid(&diags));
            }
        }
    }
    let compiled = match compiler::compile(&graph, &options) {
        Ok(c) if unrunnable.is_empty() => c,
        Ok(_) => return Ok(invalid(&unrunnable)),
        Err(mut diags) => {
            diags.extend(unrunnable);
            return Ok(invalid(&diags));
        }
    };
    if !args.quiet {
        for w in &compiled.warnings {
            eprintln!("{w}");
        }
    }
    let definition = Definition::parse(&compiled.asl).map_err(|e| {
        anyhow::anyhow!("the compiled state machine was rejected by the engine (a compiler bug): {e:?}")
    })?;
    let secrets = match &args.secrets {
        Some(path) => {
            let text = super::compile::read_input(path)?;
            StaticSecrets::parse(&text).with_context(|| format!("--secrets {}", path.display()))?
        }
        None => StaticSecrets::default(),
    };
    let mut child_machines = Vec::new();
    for (id, asl) in child_definitions {
        let definition = Definition::parse(&asl).map_err(|e| {
            anyhow::anyhow!("the compiled state machine of `{id}` was rejected by the engine (a compiler bug): {e:?}")
        })?;
        child_machines.push((machine_name(&id), Arc::new(definition)));
    }
    let mut needed = compiler::secret_names(&graph);
    for id in &children {
        needed.extend(compiler::secret_names(&library[id]));
    }
    let missing: Vec<&str> = needed.iter().map(String::as_str).filter(|n| !secrets.contains(n)).collect();
    if !needed.is_empty() && !args.quiet {
        eprintln!("  secrets: {}", needed.iter().map(String::as_str).collect::<Vec<_>>().join(", "));
    }
    if !missing.is_empty() {
        let from = match &args.secrets {
            Some(path) => format!("{} does not define", path.display()),
            None => "no --secrets FILE gives".to_owned(),
        };
        eprintln!(
            "the graph needs secrets that {from}: {} (give them with --secrets FILE: a JSON object of strings, or NAME=value lines)",
            missing.join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    let sink: Arc<dyn local_functions::fn_llm::TokenSink> = if args.quiet {
        Arc::new(local_functions::fn_llm::NoSink)
    } else {
        Arc::new(local_functions::fn_llm::StderrSink)
    };
    let functions = Metered {
        inner: local_functions::LocalFunctions::from_env()
            .context("setting up the node functions")?
            .with_secrets(Arc::new(secrets))
            .with_token_sink(sink)
            .with_tenants(Arc::new(local_functions::fn_vector::StaticTenant::new(LOCAL_TENANT))),
        usage: Arc::default(),
    };
    let usage = functions.usage.clone();

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let history_file = args.history.clone();
    let outcome = runtime.block_on(async move {
        let mut config = EngineConfig::new(Arc::new(functions));
        if args.fast_timers {
            config = config.with_clock(Arc::new(engine::VirtualClock::new()));
        }
        let engine = Engine::new(config);
        for (name, definition) in child_machines {
            engine.register_state_machine(&name, definition);
        }
        let options = StartOptions { name: None, state_machine_name: Some(state_machine_name(&graph)) };
        let execution = engine.start(Arc::new(definition), input, options);
        let progress = Arc::new(Mutex::new(Progress::new(&graph, args.quiet)));
        let ticker = spawn_spinner(progress.clone());
        let mut history = Box::pin(execution.history());
        let mut events = Vec::new();
        while let Some(event) = history.next().await {
            lock(&progress).on_event(&event);
            if history_file.is_some() {
                events.push(event.to_aws_json());
            }
        }
        let outcome = execution.wait().await;
        if let Some(t) = ticker {
            t.abort();
        }
        let failed_node = lock(&progress).finish(&outcome);
        (outcome, failed_node, events)
    });
    let (outcome, failed_node, events) = outcome;
    if let Some(path) = &args.history {
        let text = serde_json::to_vec_pretty(&serde_json::json!({ "events": events }))?;
        std::fs::write(path, text).with_context(|| format!("writing the history to {}", path.display()))?;
    }
    if let Some(line) = lock(&usage).line()
        && !args.quiet
    {
        eprintln!("  {line}");
    }
    if outcome.status == Status::Succeeded {
        let output = outcome.output.unwrap_or(Value::Null);
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", serde_json::to_string_pretty(&output)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let error = outcome.error.unwrap_or_else(|| outcome.status.as_str().to_owned());
    let where_ = failed_node.map(|n| format!(" at node `{n}`")).unwrap_or_default();
    eprintln!("execution {}{where_}: {error}", outcome.status.as_str());
    if let Some(cause) = outcome.cause.as_deref().filter(|c| !c.is_empty()) {
        eprintln!("  cause: {}", readable_cause(cause));
    }
    Ok(ExitCode::from(1))
}

/// The local functions, adding up the model usage of what they return.
struct Metered {
    inner: local_functions::LocalFunctions,
    usage: Arc<Mutex<Usage>>,
}

#[async_trait::async_trait]
impl engine::TaskInvoker for Metered {
    async fn invoke(&self, call: engine::TaskCall) -> Result<Value, engine::TaskFailure> {
        let node_type = node_contract::node_type_of_function(&call.function_name);
        let output = self.inner.invoke(call).await?;
        if let Some(t) = node_type {
            lock(&self.usage).add(t, &output);
        }
        Ok(output)
    }
}

/// The model usage of an execution's successful Tasks.
#[derive(Debug, Default)]
struct Usage {
    calls: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
    estimated: bool,
}

impl Usage {
    /// An agent turn's output repeats the loop's totals so far in `usage`; its `event` holds that
    /// turn's alone, so every turn counts once. Other model nodes report their call's `usage`.
    fn add(&mut self, node_type: &str, output: &Value) {
        let of = match local_functions::function_of(node_type) {
            "agent" => &output["event"],
            "llm" | "vector_search" | "vector_upsert" => output,
            _ => return,
        };
        let Some(usage) = of.get("usage").filter(|u| u.is_object()) else { return };
        self.calls += 1;
        self.input_tokens += usage["input_tokens"].as_u64().unwrap_or(0);
        self.output_tokens += usage["output_tokens"].as_u64().unwrap_or(0);
        self.estimated |= usage["estimated"].as_bool().unwrap_or(false);
        self.cost_usd += of.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0);
    }

    /// `model usage: 812 input tokens, 64 output tokens, $0.000160`, once a model call ran.
    fn line(&self) -> Option<String> {
        (self.calls > 0).then(|| {
            format!(
                "model usage: {} input tokens, {} output tokens, ${:.6}{}",
                self.input_tokens,
                self.output_tokens,
                self.cost_usd,
                if self.estimated { " (some counts estimated)" } else { "" }
            )
        })
    }
}

fn invalid(diags: &[Diagnostic]) -> ExitCode {
    for d in diags {
        eprintln!("{d}");
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    eprintln!("the graph cannot run: {errors} error(s)");
    ExitCode::from(2)
}

/// The graphs of `dir` (`*.json`), by id (a graph without one: its file name without `.json`).
fn load_workflows(dir: &std::path::Path) -> anyhow::Result<HashMap<String, Graph>> {
    let mut graphs = HashMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("--workflows {}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let graph = compiler::parse(&text).map_err(|diags| {
            let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("{} is not a graph: {}", path.display(), text.join("; "))
        })?;
        let id = if graph.id.is_empty() {
            path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        } else {
            graph.id.clone()
        };
        if graphs.insert(id.clone(), graph).is_some() {
            anyhow::bail!("--workflows {}: two graphs have the id `{id}`", dir.display());
        }
    }
    Ok(graphs)
}

/// The engine's name for the state machine of workflow `id`.
fn machine_name(id: &str) -> String {
    let name: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') { c } else { '_' }).collect();
    format!("workflow-{name}")
}

/// The ids of every workflow `graph` reaches through `workflow` nodes, or diagnostics for a
/// missing child and for graphs that call each other in a circle (iterative depth-first walk).
fn children(graph: &Graph, library: &HashMap<String, Graph>) -> Result<Vec<String>, Vec<Diagnostic>> {
    let root = if graph.id.is_empty() { "(this graph)".to_owned() } else { graph.id.clone() };
    let mut problems = Vec::new();
    let mut reached: Vec<String> = Vec::new();
    // Depth-first with an explicit stack of (workflow, its calls, next call to follow); `path`
    // is the chain being walked, for naming a circle.
    let mut path: Vec<String> = vec![root.clone()];
    let mut stack: Vec<(Vec<(String, String)>, usize)> = vec![(compiler::workflow_calls(graph), 0)];
    let mut done: HashSet<String> = HashSet::new();
    while let Some((edges, next)) = stack.last_mut() {
        let Some((node, child)) = edges.get(*next).cloned() else {
            stack.pop();
            if let Some(w) = path.pop() {
                done.insert(w);
            }
            continue;
        };
        *next += 1;
        if path.contains(&child) || child == graph.id {
            let mut circle: Vec<String> = path.iter().skip_while(|w| **w != child).cloned().collect();
            if circle.is_empty() {
                circle = path.clone();
            }
            circle.push(child.clone());
            problems.push(
                Diagnostic::error(
                    "workflow-cycle",
                    format!("workflows call each other in a circle: {}", circle.join(" → ")),
                )
                .at_node(node),
            );
            continue;
        }
        if done.contains(&child) {
            continue;
        }
        let Some(g) = library.get(&child) else {
            problems.push(
                Diagnostic::error(
                    NOT_RUNNABLE,
                    format!("node `{node}` runs workflow `{child}`, which is not among the graphs of --workflows DIR"),
                )
                .at_node(node),
            );
            continue;
        };
        reached.push(child.clone());
        path.push(child);
        stack.push((compiler::workflow_calls(g), 0));
    }
    if problems.is_empty() { Ok(reached) } else { Err(problems) }
}

/// Nodes whose type needs a function that does not run locally yet, one diagnostic each.
/// (`workflow` nodes run as child executions: [`children`] checks them.)
pub fn not_runnable(graph: &Graph) -> Vec<Diagnostic> {
    graph
        .nodes
        .iter()
        .filter(|n| node_contract::logical_id(&n.node_type).is_some() && !local_functions::is_available(&n.node_type))
        .map(|n| {
            Diagnostic::error(
                NOT_RUNNABLE,
                format!(
                    "node `{}` has type `{}`, {}, so `weft run` cannot execute it \
                     (runnable function types: {})",
                    n.id,
                    n.node_type,
                    if n.node_type == "approval" {
                        "which waits for a decision through the API: run it under `weft serve`"
                    } else {
                        "whose function does not exist yet"
                    },
                    local_functions::AVAILABLE.join(", ")
                ),
            )
            .at_node(n.id.clone())
        })
        .collect()
}

fn state_machine_name(graph: &Graph) -> String {
    let id: String = graph.id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect();
    if id.is_empty() { "weft".to_owned() } else { id }
}

/// What a failed Task reports: a `workflow` node's `States.TaskFailed` carries the child
/// execution's description as its cause, so its error and cause are the child's.
fn child_error(error: String, cause: Option<&str>) -> (String, String) {
    if error == "States.TaskFailed"
        && let Some(child) = cause.and_then(|c| serde_json::from_str::<Value>(c).ok())
        && child.get("ExecutionArn").is_some()
        && let Some(child_error) = child.get("Error").and_then(Value::as_str)
    {
        let child_cause = child.get("Cause").and_then(Value::as_str).map(readable_cause).unwrap_or_default();
        return (child_error.to_owned(), child_cause);
    }
    (error, cause.map(readable_cause).unwrap_or_default())
}

/// A Lambda failure's cause is `{"errorMessage": ..., "errorType": ...}`; show the message.
fn readable_cause(cause: &str) -> String {
    serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|v| v.get("errorMessage").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| cause.to_owned())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where an event belongs: the state whose entry started its causal chain, and whether that
/// chain runs inside a Map iteration (whose states are summarised per loop, not printed each).
#[derive(Clone)]
struct Origin {
    state: Arc<str>,
    entered: DateTime<Utc>,
    in_iteration: bool,
}

struct MapCount {
    done: usize,
    failed: usize,
    total: Option<usize>,
}

/// Live per-node progress on stderr, built from the execution history as it streams.
struct Progress {
    quiet: bool,
    tty: bool,
    nodes: HashMap<String, String>,
    origins: HashMap<u64, Origin>,
    /// States that failed an attempt and may be retried, by name.
    failed_attempts: HashMap<Arc<str>, u32>,
    running: Vec<Arc<str>>,
    top_entered: HashMap<Arc<str>, DateTime<Utc>>,
    maps: HashMap<Arc<str>, MapCount>,
    last_failed: Option<String>,
    frame: usize,
    spinner_shown: bool,
}

impl Progress {
    fn new(graph: &Graph, quiet: bool) -> Self {
        Self {
            quiet,
            tty: std::io::stderr().is_terminal(),
            nodes: graph.nodes.iter().map(|n| (n.id.clone(), n.node_type.clone())).collect(),
            origins: HashMap::new(),
            failed_attempts: HashMap::new(),
            running: Vec::new(),
            top_entered: HashMap::new(),
            maps: HashMap::new(),
            last_failed: None,
            frame: 0,
            spinner_shown: false,
        }
    }

    /// The graph node a state belongs to: the state of that name, or the longest node id the
    /// state name starts with (helper states such as a condition's evaluation Task).
    fn node_of(&self, state: &str) -> Option<String> {
        if self.nodes.contains_key(state) {
            return Some(state.to_owned());
        }
        self.nodes
            .keys()
            .filter(|id| {
                state.starts_with(id.as_str())
                    && state[id.len()..].chars().next().is_some_and(|c| !c.is_ascii_alphanumeric() && c != '_')
            })
            .max_by_key(|id| id.len())
            .cloned()
    }

    /// Whether the state is a node's own state (not a helper state such as `<id>.output`).
    fn is_node(&self, state: &str) -> bool {
        self.nodes.contains_key(state)
    }

    fn label(&self, state: &str) -> String {
        match self.node_of(state) {
            Some(node) if node == state => {
                format!("{state} ({})", self.nodes.get(&node).map(String::as_str).unwrap_or("?"))
            }
            Some(node) => format!("{node} [{state}]"),
            None => state.to_owned(),
        }
    }

    fn line(&mut self, text: String) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.spinner_shown {
            let _ = write!(err, "\r\x1b[2K");
            self.spinner_shown = false;
        }
        let _ = writeln!(err, "{text}");
    }

    fn on_event(&mut self, ev: &HistoryEvent) {
        let parent = self.origins.get(&ev.previous_event_id).cloned();
        match (&ev.event_type, &ev.details) {
            (_, Details::StateEntered { name, .. }) => {
                let in_iteration = parent.as_ref().is_some_and(|p| p.in_iteration);
                self.origins.insert(ev.id, Origin { state: name.clone(), entered: ev.timestamp, in_iteration });
                if !in_iteration {
                    self.top_entered.insert(name.clone(), ev.timestamp);
                    self.running.push(name.clone());
                    if self.is_node(name) && !self.tty {
                        self.line(format!("  started   {}", self.label(name)));
                    }
                }
            }
            (EventType::MapIterationStarted, Details::MapIteration { name, .. }) => {
                self.origins.insert(ev.id, Origin { state: name.clone(), entered: ev.timestamp, in_iteration: true });
            }
            (EventType::MapIterationSucceeded | EventType::MapIterationFailed, Details::MapIteration { name, .. }) => {
                let count = self.maps.entry(name.clone()).or_insert(MapCount { done: 0, failed: 0, total: None });
                if ev.event_type == EventType::MapIterationFailed {
                    count.failed += 1;
                } else {
                    count.done += 1;
                }
            }
            (EventType::MapStateStarted, Details::MapStateStarted { length }) => {
                if let Some(p) = &parent {
                    self.maps.insert(p.state.clone(), MapCount { done: 0, failed: 0, total: Some(*length) });
                }
                self.inherit(ev.id, parent);
            }
            (_, Details::StateExited { name, .. }) => {
                // State names are unique in a state machine, and only Map iterations run the same
                // state several times at once, so top-level states are tracked by name.
                if let Some(entered) = self.top_entered.remove(name) {
                    self.running.retain(|r| r != name);
                    if self.last_failed.as_deref() == self.node_of(name).as_deref() {
                        self.last_failed = None;
                    }
                    if self.is_node(name) {
                        let took = ev.timestamp - entered;
                        let extra = match self.maps.get(name) {
                            Some(m) => format!(", {} item(s)", m.done + m.failed),
                            None => String::new(),
                        };
                        self.line(format!("  \u{2713} done    {} in {}{extra}", self.label(name), show(took)));
                    }
                }
                self.inherit(ev.id, parent);
            }
            (
                EventType::TaskFailed
                | EventType::LambdaFunctionFailed
                | EventType::TaskTimedOut
                | EventType::LambdaFunctionTimedOut,
                Details::TaskError { error, cause, .. }
                | Details::LambdaError { error, cause }
                | Details::Error { error, cause },
            ) => {
                if let Some(p) = &parent {
                    let attempt = self.failed_attempts.entry(p.state.clone()).or_insert(0);
                    *attempt += 1;
                    let attempt = *attempt;
                    let state = p.state.clone();
                    self.last_failed = self.node_of(&state).or_else(|| Some(state.to_string()));
                    let (error, cause) = child_error(error.clone().unwrap_or_default(), cause.as_deref());
                    let took = ev.timestamp - p.entered;
                    self.line(format!(
                        "  \u{2717} failed  {} (attempt {attempt}) after {}: {error}: {}",
                        self.label(&state),
                        show(took),
                        first_line(&cause)
                    ));
                }
                self.inherit(ev.id, parent);
            }
            (EventType::TaskScheduled | EventType::LambdaFunctionScheduled, _) => {
                if let Some(p) = &parent
                    && let Some(attempts) = self.failed_attempts.get(&p.state)
                    && self.last_failed.as_deref() == self.node_of(&p.state).as_deref()
                {
                    let label = self.label(&p.state);
                    let n = attempts + 1;
                    self.line(format!("  \u{21bb} retry   {label} (attempt {n})"));
                }
                self.inherit(ev.id, parent);
            }
            (EventType::FailStateEntered, _) => {
                self.inherit(ev.id, parent);
            }
            _ => self.inherit(ev.id, parent),
        }
    }

    fn inherit(&mut self, id: u64, parent: Option<Origin>) {
        if let Some(p) = parent {
            self.origins.insert(id, p);
        }
    }

    fn spin(&mut self) {
        if self.quiet || !self.tty {
            return;
        }
        const FRAMES: [char; 10] = [
            '\u{280b}', '\u{2819}', '\u{2839}', '\u{2838}', '\u{283c}', '\u{2834}', '\u{2826}', '\u{2827}', '\u{2807}',
            '\u{280f}',
        ];
        self.frame = (self.frame + 1) % FRAMES.len();
        let mut seen = HashSet::new();
        let running: Vec<String> = self
            .running
            .iter()
            .filter(|s| seen.insert(s.to_string()))
            .filter_map(|s| {
                let node = self.node_of(s)?;
                Some(match self.maps.get(s) {
                    Some(m) => match m.total {
                        Some(t) => format!("{node} {}/{t}", m.done + m.failed),
                        None => format!("{node} {}", m.done + m.failed),
                    },
                    None => node,
                })
            })
            .collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{} running {}", FRAMES[self.frame], running.join(", "));
        let _ = err.flush();
        self.spinner_shown = true;
    }

    /// Clears the spinner and returns the node the execution failed at, if it failed.
    fn finish(&mut self, outcome: &engine::Outcome) -> Option<String> {
        if self.spinner_shown {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.spinner_shown = false;
        }
        let took = outcome.stop_date - outcome.start_date;
        if !self.quiet {
            eprintln!("  {} in {}", outcome.status.as_str(), show(took));
        }
        if outcome.status == Status::Succeeded {
            return None;
        }
        // A failure outside a Task (e.g. `States.Runtime` on a bad path) names no task; the
        // state still open when the execution ended is where it failed.
        self.last_failed.clone().or_else(|| self.running.iter().rev().find_map(|s| self.node_of(s)))
    }
}

fn spawn_spinner(progress: Arc<Mutex<Progress>>) -> Option<tokio::task::JoinHandle<()>> {
    let show = {
        let p = lock(&progress);
        p.tty && !p.quiet
    };
    show.then(|| {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(80)).await;
                lock(&progress).spin();
            }
        })
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

fn show(d: chrono::TimeDelta) -> String {
    let micros = d.num_microseconds().unwrap_or(i64::MAX);
    if micros < 1_000 {
        format!("{micros} \u{b5}s")
    } else if micros < 10_000_000 {
        format!("{:.1} ms", micros as f64 / 1000.0)
    } else {
        format!("{:.1} s", micros as f64 / 1e6)
    }
}
