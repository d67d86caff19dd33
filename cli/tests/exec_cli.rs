//! `weft exec` and `weft conformance` as a user runs them: the real binary and real files.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn weft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft")).args(args).output().unwrap()
}

fn temp_file(name: &str, content: &Value) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(content).unwrap()).unwrap();
    p
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn exec_prints_the_output_and_exits_0() {
    let def = temp_file(
        "ok.json",
        &json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 3600, "Next": "P"},
        "P": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, 1)"}, "End": true}}}),
    );
    let o = weft(&["exec", def.to_str().unwrap(), "--input", r#"{"a": 41}"#, "--fast-timers", "--history"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout_json(&o);
    assert_eq!(out["status"], "SUCCEEDED");
    assert_eq!(out["output"], json!({"sum": 42}));
    let types: Vec<&str> = out["history"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"ExecutionStarted"));
    assert_eq!(types.last(), Some(&"ExecutionSucceeded"));
    assert!(types.contains(&"WaitStateExited"));
}

#[test]
fn exec_reports_failures_with_exit_1() {
    let def = temp_file(
        "fail.json",
        &json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Nope", "Cause": "because"}}}),
    );
    let input = temp_file("input.json", &json!({}));
    let o = weft(&["exec", def.to_str().unwrap(), "--input-file", input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout_json(&o), json!({"status": "FAILED", "error": "Nope", "cause": "because"}));
}

#[test]
fn exec_rejects_invalid_definitions_with_exit_2_and_names_the_state() {
    let def = temp_file("bad.json", &json!({"StartAt": "Missing", "States": {"A": {"Type": "Pass", "Next": "B"}}}));
    let o = weft(&["exec", def.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/StartAt") && err.contains("state 'A', field 'Next'"), "{err}");
}

#[test]
fn conformance_runs_a_directory_and_summarises() {
    let dir = std::env::temp_dir().join(format!("weft-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let case = |name: &str, expected: Value| {
        json!({"name": name, "definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": true}}},
               "input": {}, "expected": expected})
    };
    std::fs::write(dir.join("a.json"), case("good", json!({"status": "SUCCEEDED", "output": 1})).to_string()).unwrap();
    std::fs::write(dir.join("b.json"), case("bad", json!({"status": "SUCCEEDED", "output": 2})).to_string()).unwrap();
    let o = weft(&["conformance", dir.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("FAIL bad"), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 1 failed"), "{out}");

    // Exclusions: a listed failure is allowed; a listed name that is no case is a problem.
    let exclusions = dir.join("exclusions.md");
    std::fs::write(&exclusions, "# Exclusions\n\n- `bad`: the recording is wrong\n").unwrap();
    let o = weft(&["conformance", dir.to_str().unwrap(), "--exclusions", exclusions.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("excluded bad: the recording is wrong"), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 1 failed (1 excluded)"), "{out}");
    std::fs::write(&exclusions, "- `bad`: the recording is wrong\n- `nope`: no such case\n").unwrap();
    let o = weft(&["conformance", dir.to_str().unwrap(), "--exclusions", exclusions.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("the exclusion of `nope` names no case of the corpus"), "{out}");
    std::fs::write(&exclusions, "- bad: no backticks\n").unwrap();
    let o = weft(&["conformance", dir.to_str().unwrap(), "--exclusions", exclusions.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 1"), "{}", String::from_utf8_lossy(&o.stderr));

    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../engine/tests/conformance");
    let listed = concat!(env!("CARGO_MANIFEST_DIR"), "/../engine/tests/conformance-exclusions.md");
    let o = weft(&["conformance", corpus, "--exclusions", listed]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.trim_end().ends_with(" passed, 0 failed"), "{out}");
}
