//! The conformance corpus runner shared by `weft conformance` and the engine's test suite.
//!
//! A case is a JSON file `{name, definition, input, expected: {status, output | error, cause}}`
//! recorded against AWS (format: `engine/tests/conformance/README.md`). Cases run on a
//! [`VirtualClock`] so recorded Wait states take no time.
//!
//! A corpus may come with [`Exclusions`]: cases allowed to fail, each with its reason. [`judge`]
//! applies them the same way for `weft conformance --exclusions FILE` and for the engine's test:
//! a failing case must be excluded, an excluded case must still fail (else the entry is stale),
//! and an entry must name a case of the corpus.

use std::collections::BTreeMap;
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

/// JSON equality as AWS's output would show it: key order is ignored, numbers compare by their
/// exact text (`1` is not `1.0`, `9007199254740993` is not `9007199254740992`, `-0.0` is not
/// `0.0`). serde_json reads an integer beyond the 64-bit range as a float, on both sides alike.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.to_string() == y.to_string(),
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

/// The cases a corpus is allowed to fail, each with its reason: the list items
/// `` - `case name`: reason `` of a Markdown file. Lines that are not list items are prose; a list
/// item of another form is an error, so a typo cannot silently drop an exclusion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusions {
    reasons: BTreeMap<String, String>,
}

/// An exclusions file that does not say what it means to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExclusionsError {
    #[error("line {line}: an exclusion is written \"- `case name`: reason\", not {text:?}")]
    Malformed { line: usize, text: String },
    #[error("line {line}: the exclusion of `{name}` gives no reason; say why the case cannot pass")]
    NoReason { line: usize, name: String },
    #[error("line {line}: `{name}` is excluded twice; keep one entry")]
    Duplicate { line: usize, name: String },
}

impl Exclusions {
    pub fn parse(text: &str) -> Result<Self, ExclusionsError> {
        let mut reasons = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let Some(item) = raw.strip_prefix("- ").or_else(|| raw.strip_prefix("* ")) else { continue };
            let entry = item.strip_prefix('`').and_then(|rest| rest.split_once("`:"));
            let Some((name, reason)) = entry.filter(|(name, _)| !name.is_empty() && !name.contains('`')) else {
                return Err(ExclusionsError::Malformed { line, text: raw.to_owned() });
            };
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(ExclusionsError::NoReason { line, name: name.to_owned() });
            }
            if reasons.insert(name.to_owned(), reason.to_owned()).is_some() {
                return Err(ExclusionsError::Duplicate { line, name: name.to_owned() });
            }
        }
        Ok(Self { reasons })
    }

    /// Why `case` may fail, if it is excluded.
    pub fn reason(&self, case: &str) -> Option<&str> {
        self.reasons.get(case).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.reasons.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// A corpus run judged against its exclusions.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Cases that passed.
    pub passed: usize,
    /// Failing cases that are not excluded: (name, what differed).
    pub failures: Vec<(String, String)>,
    /// Excluded cases that failed, as allowed: (name, reason).
    pub excluded: Vec<(String, String)>,
    /// Excluded cases that pass now: their entries must go.
    pub stale: Vec<String>,
    /// Exclusions naming no case of the corpus.
    pub unknown: Vec<String>,
}

impl Verdict {
    /// Whether the corpus conforms: every failure excluded, every exclusion a failing case.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.stale.is_empty() && self.unknown.is_empty()
    }

    /// One message per problem: failures (with what differed), stale and unknown exclusions.
    pub fn problems(&self) -> Vec<String> {
        let failures = self.failures.iter().map(|(name, diff)| format!("FAIL {name}\n{diff}"));
        let stale = self.stale.iter().map(|name| format!("{name} passes now: remove its exclusion"));
        let unknown = self.unknown.iter().map(|name| format!("the exclusion of `{name}` names no case of the corpus"));
        failures.chain(stale).chain(unknown).collect()
    }
}

/// Applies `exclusions` to the results of a corpus run.
pub fn judge(results: &[CaseResult], exclusions: &Exclusions) -> Verdict {
    let mut verdict = Verdict::default();
    for r in results {
        match (&r.failure, exclusions.reason(&r.name)) {
            (None, None) => verdict.passed += 1,
            (None, Some(_)) => {
                verdict.passed += 1;
                verdict.stale.push(r.name.clone());
            }
            (Some(diff), None) => verdict.failures.push((r.name.clone(), diff.clone())),
            (Some(_), Some(reason)) => verdict.excluded.push((r.name.clone(), reason.to_owned())),
        }
    }
    let names: std::collections::BTreeSet<&str> = results.iter().map(|r| r.name.as_str()).collect();
    verdict.unknown = exclusions.reasons.keys().filter(|k| !names.contains(k.as_str())).cloned().collect();
    verdict
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn result(name: &str, failure: Option<&str>) -> CaseResult {
        CaseResult { name: name.into(), file: PathBuf::from(format!("{name}.json")), failure: failure.map(Into::into) }
    }

    #[test]
    fn numbers_compare_by_their_exact_text() {
        assert!(json_equal(&json!({"a": [1, 2.5, -3]}), &json!({"a": [1, 2.5, -3]})));
        assert!(!json_equal(&json!(1), &json!(1.0)));
        assert!(!json_equal(&json!(9_007_199_254_740_993_u64), &json!(9_007_199_254_740_992_u64)));
        assert!(!json_equal(&json!(u64::MAX), &json!(u64::MAX as f64)));
        assert!(!json_equal(&json!(-0.0), &json!(0.0)));
        assert!(json_equal(&json!({"x": 1, "y": 2}), &json!({"y": 2, "x": 1})));
    }

    #[test]
    fn exclusions_are_list_items_with_a_reason() {
        let text = "# Exclusions\n\nProse mentioning `- \\`name\\`: reason` inline.\n\n- `a`: AWS recorded a stale cause.\n* `b c`: the clock\n";
        let e = Exclusions::parse(text).expect("parses");
        assert_eq!(e.len(), 2);
        assert_eq!(e.reason("a"), Some("AWS recorded a stale cause."));
        assert_eq!(e.reason("b c"), Some("the clock"));
        assert_eq!(Exclusions::parse("intro\n").expect("no entries").len(), 0);
        assert_eq!(
            Exclusions::parse("- a: no backticks"),
            Err(ExclusionsError::Malformed { line: 1, text: "- a: no backticks".into() })
        );
        assert_eq!(Exclusions::parse("\n- `a`:  "), Err(ExclusionsError::NoReason { line: 2, name: "a".into() }));
        assert_eq!(
            Exclusions::parse("- `a`: x\n- `a`: y"),
            Err(ExclusionsError::Duplicate { line: 2, name: "a".into() })
        );
    }

    #[test]
    fn judge_requires_excluded_failures_only_and_known_names() {
        let e = Exclusions::parse("- `flaky`: why\n- `fixed`: why\n- `gone`: why").expect("parses");
        let results =
            [result("ok", None), result("flaky", Some("diff")), result("fixed", None), result("broken", Some("d"))];
        let v = judge(&results, &e);
        assert_eq!(v.passed, 2);
        assert_eq!(v.failures, vec![("broken".to_owned(), "d".to_owned())]);
        assert_eq!(v.excluded, vec![("flaky".to_owned(), "why".to_owned())]);
        assert_eq!(v.stale, vec!["fixed".to_owned()]);
        assert_eq!(v.unknown, vec!["gone".to_owned()]);
        assert!(!v.ok());
        assert_eq!(v.problems().len(), 3);
        assert!(judge(&[result("ok", None)], &Exclusions::default()).ok());
    }
}
