//! `weft exec DEFINITION.json`: runs an ASL state machine on the local engine.
//!
//! Prints `{"status":"SUCCEEDED","output":...}` or `{"status":"FAILED","error":...,"cause":...}`
//! (plus `"history"` with `--history`). Exit code 0 for SUCCEEDED, 1 for any other end, 2 for an
//! invalid definition (the validation errors go to stderr) or a usage error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use engine::{
    Definition, Engine, EngineConfig, LambdaHttpInvoker, StartOptions, Status, SystemClock, TaskInvoker, VirtualClock,
};
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The state machine definition (ASL JSON).
    pub definition: PathBuf,
    /// The execution input as JSON text.
    #[arg(long, conflicts_with = "input_file")]
    pub input: Option<String>,
    /// A file holding the execution input.
    #[arg(long)]
    pub input_file: Option<PathBuf>,
    /// Include the execution history (AWS's event shapes) in the output.
    #[arg(long)]
    pub history: bool,
    /// Don't really wait in Wait states and retry intervals (virtual time).
    #[arg(long)]
    pub fast_timers: bool,
    /// Run Task states through the Lambda Invoke API at this URL (e.g. `http://127.0.0.1:9000`
    /// for `cargo lambda watch`). Without it, Tasks fail with States.TaskFailed.
    #[arg(long)]
    pub lambda_endpoint: Option<String>,
    /// The execution name (default: a UUID).
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.definition)
        .with_context(|| format!("reading the definition {}", args.definition.display()))?;
    let definition = match Definition::from_json_str(&text) {
        Ok(d) => d,
        Err(errors) => {
            eprintln!("{} is not a valid state machine definition:", args.definition.display());
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    for w in definition.warnings() {
        eprintln!("warning: {w}");
    }
    let input: Value = match (&args.input, &args.input_file) {
        (Some(s), _) => serde_json::from_str(s).context("--input is not valid JSON")?,
        (None, Some(f)) => {
            let t = std::fs::read_to_string(f).with_context(|| format!("reading the input file {}", f.display()))?;
            serde_json::from_str(&t).with_context(|| format!("{} is not valid JSON", f.display()))?
        }
        (None, None) => Value::Object(Default::default()),
    };
    let invoker: Arc<dyn TaskInvoker> = match &args.lambda_endpoint {
        Some(url) => Arc::new(LambdaHttpInvoker::new(url.clone())),
        None => Arc::new(engine::task::NoInvoker),
    };
    let mut config = EngineConfig::new(invoker);
    config.clock = if args.fast_timers { Arc::new(VirtualClock::new()) } else { Arc::new(SystemClock) };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")?;
    let (outcome, history) = rt.block_on(async {
        let engine = Engine::new(config);
        let exec =
            engine.start(Arc::new(definition), input, StartOptions { name: args.name.clone(), ..Default::default() });
        let outcome = exec.wait().await;
        let history: Vec<Value> = exec.history_snapshot().iter().map(|e| e.to_aws_json()).collect();
        (outcome, history)
    });
    let mut out = outcome.to_json();
    if args.history
        && let Some(m) = out.as_object_mut()
    {
        m.insert("history".into(), Value::Array(history));
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(if outcome.status == Status::Succeeded { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
