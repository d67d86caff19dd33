//! `weft compile` and `weft render` through the real binary: outputs and exit codes.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn weft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft")).args(args).output().expect("weft runs")
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name).display().to_string()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-compile-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn compiles_an_example_to_asl_on_stdout() {
    let out = weft(&["compile", &example("order-routing.json")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let asl: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("ASL JSON on stdout");
    assert_eq!(asl["StartAt"], "start");
    assert_eq!(asl["States"]["price"]["Parameters"]["FunctionName"], "${CodeFunctionArn}");
}

#[test]
fn writes_to_out_and_applies_the_function_map() {
    let map = temp("functions.json");
    std::fs::write(&map, r#"{"code": "arn:aws:lambda:eu-west-1:123456789012:function:weft-code"}"#).unwrap();
    let asl_file = temp("out.asl.json");
    let out = weft(&[
        "compile",
        &example("order-routing.json"),
        "--out",
        asl_file.to_str().unwrap(),
        "--functions",
        map.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "with --out the ASL is not printed");
    let asl: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&asl_file).unwrap()).unwrap();
    assert_eq!(
        asl["States"]["price"]["Parameters"]["FunctionName"],
        "arn:aws:lambda:eu-west-1:123456789012:function:weft-code"
    );
}

#[test]
fn invalid_graphs_exit_1_with_diagnostics() {
    let g = temp("invalid.json");
    std::fs::write(
        &g,
        r#"{"format": "weft/v1", "nodes": [{"id": "start", "type": "start"}, {"id": "a", "type": "http", "data": {"method": "GET"}}],
            "edges": [{"id": "e1", "source": "start", "target": "a"}]}"#,
    )
    .unwrap();
    let out = weft(&["compile", g.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("error[missing-field] node `a`"), "{err}");
    assert!(err.contains("error[dead-end] node `a`"), "{err}");

    let out = weft(&["compile", g.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let diags: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).expect("a JSON array on stdout");
    assert!(diags.iter().any(|d| d["code"] == "missing-field" && d["node"] == "a" && d["severity"] == "error"));

    std::fs::write(&g, "{ not json").unwrap();
    let out = weft(&["compile", g.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("invalid-json"));
}

#[test]
fn usage_and_io_errors_exit_2() {
    assert_eq!(weft(&["compile", "/nonexistent/graph.json"]).status.code(), Some(2));
    assert_eq!(weft(&["compile"]).status.code(), Some(2));
    assert_eq!(weft(&["compile", &example("order-routing.json"), "--format", "yaml"]).status.code(), Some(2));
    let out = weft(&["compile", &example("order-routing.json"), "--out", "/nonexistent/dir/x.json"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn explain_reports_type_states_invocations_and_cost() {
    let out = weft(&["compile", &example("batch-scoring.json"), "--explain"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in ["workflow type:       EXPRESS", "states:", "loop `each_lead`:  3 per item", "per 1,000 runs"] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    // An approval and a sub-workflow: STANDARD; the code node and the approval are Lambda calls
    // (the condition is native, the child runs as its own execution).
    let out = weft(&["compile", &example("refund-approval.json"), "--explain", "--format", "json"]);
    let explain: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(explain["workflow_type"], "STANDARD");
    assert_eq!(explain["lambda_invocations_total"], 2.0);
    assert!(explain["cost_per_1000_runs_usd"].as_f64().unwrap() > 0.0);
}

#[test]
fn render_prints_a_mermaid_flowchart() {
    let out = weft(&["render", &example("batch-scoring.json")]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("flowchart TD\n"));
    assert!(text.contains("subgraph n1_body[\"each_lead body\"]"), "{text}");
    assert!(text.contains("n3 -- \"true\" --> n4"), "{text}");
    assert_eq!(weft(&["render", "/nonexistent.json"]).status.code(), Some(2));
}

fn react_flow_ids() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../compiler/tests/fixtures/react-flow-ids.json").display().to_string()
}

#[test]
fn react_flow_ids_compile_and_other_ids_are_refused() {
    let out = weft(&["compile", &react_flow_ids()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let asl: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("ASL JSON on stdout");
    assert_eq!(asl["StartAt"], "1");
    assert_eq!(asl["States"]["node-1"]["ResultPath"], "$.nodes['node-1']");

    // A space, a dot or a quote cannot be a state name or a JSONPath member without escaping.
    let g = temp("bad-id.json");
    std::fs::write(
        &g,
        r#"{"format": "weft/v1", "nodes": [{"id": "start", "type": "start"}, {"id": "my node", "type": "code", "data": {"expression": "1"}},
            {"id": "done", "type": "end"}],
            "edges": [{"id": "e1", "source": "start", "target": "my node"}, {"id": "e2", "source": "my node", "target": "done"}]}"#,
    )
    .unwrap();
    let out = weft(&["compile", g.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("error[invalid-node-id] node `my node`"), "{err}");
    assert!(err.contains("letters, digits, `_` and `-`"), "{err}");
}
