//! The conformance corpus runner shared by `weft conformance` and the engine's test suite.
//!
//! A case is a JSON file `{name, definition, input, expected: {status, output | error, cause}}`
//! recorded against AWS (format: `engine/tests/conformance/README.md`). Cases run on a
//! [`VirtualClock`] so recorded Wait states take no time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::{Definition, Engine, EngineConfig, StartOptions, VirtualClock, task::NoInvoker};

/// The verdict on one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub file: PathBuf,
    /// `None` when the case passed; otherwise what differed.
    pub failure: Option<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The case files in `dir` (its `*.json`, or those of `dir/asl` if that exists), sorted.
pub fn case_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let asl = dir.join("asl");
    let dir = if asl.is_dir() { asl } else { dir.to_path_buf() };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// JSON equality where numbers compare by value (`1` equals `1.0`) and key order is ignored.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Runs one parsed case on `engine`.
pub async fn run_case_value(engine: &Engine, case: &Value) -> Option<String> {
    let Some(def_json) = case.get("definition") else { return Some("the case has no definition".into()) };
    let expected = case.get("expected").cloned().unwrap_or(Value::Null);
    let input = case.get("input").cloned().unwrap_or(Value::Object(Default::default()));
    let def = match Definition::parse(def_json) {
        Ok(d) => Arc::new(d),
        Err(e) => return Some(format!("the definition was rejected:\n{e}")),
    };
    let exec = engine.start(def, input, StartOptions::default());
    let outcome = match tokio::time::timeout(Duration::from_secs(20), exec.wait()).await {
        Ok(o) => o,
        Err(_) => {
            exec.stop(None, None);
            return Some("the execution did not finish within 20 s".into());
        }
    };
    let want_status = expected.get("status").and_then(Value::as_str).unwrap_or("");
    let mut diffs = Vec::new();
    if outcome.status.as_str() != want_status {
        diffs.push(format!("status: expected {want_status}, got {}", outcome.status.as_str()));
    }
    if want_status == "SUCCEEDED" {
        if let Some(want) = expected.get("output") {
            let got = outcome.output.clone().unwrap_or(Value::Null);
            if !json_equal(want, &got) {
                diffs.push(format!("output:\n  expected {want}\n  got      {got}"));
            }
        }
    } else {
        let field = |k: &str, got: &Option<String>| -> Option<String> {
            let want = expected.get(k)?.as_str()?;
            (got.as_deref() != Some(want)).then(|| format!("{k}:\n  expected {want:?}\n  got      {got:?}"))
        };
        diffs.extend(field("error", &outcome.error));
        diffs.extend(field("cause", &outcome.cause));
    }
    if diffs.is_empty() {
        None
    } else {
        if want_status == "SUCCEEDED" && outcome.status.as_str() != "SUCCEEDED" {
            diffs.push(format!("error: {:?}\n  cause: {:?}", outcome.error, outcome.cause));
        }
        Some(diffs.join("\n"))
    }
}

/// An engine set up as the corpus expects: no Tasks, virtual time, AWS's limits.
pub fn conformance_engine() -> Engine {
    Engine::new(EngineConfig::new(Arc::new(NoInvoker)).with_clock(Arc::new(VirtualClock::new())))
}

/// Runs every case of `dir`.
pub async fn run_dir(dir: &Path) -> std::io::Result<Vec<CaseResult>> {
    let engine = conformance_engine();
    let mut out = Vec::new();
    for file in case_files(dir)? {
        let text = std::fs::read_to_string(&file)?;
        let (name, failure) = match serde_json::from_str::<Value>(&text) {
            Ok(case) => {
                let name =
                    case.get("name").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| {
                        file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
                    });
                (name, run_case_value(&engine, &case).await)
            }
            Err(e) => (file.display().to_string(), Some(format!("the case file is not valid JSON: {e}"))),
        };
        out.push(CaseResult { name, file, failure });
    }
    Ok(out)
}
