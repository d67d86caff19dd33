//! `weft run` (the debug binary, as CI builds it) on large graphs: a 10,000-node chain, nesting
//! to the limit, and one level beyond (exit 2 with the limit's diagnostic, no crash).

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

#[path = "../../compiler/tests/graphgen/shapes.rs"]
mod shapes;

use std::process::Command;

use serde_json::{Value, json};
use shapes::Shape;

fn weft_run(shape: &Shape, input: &str) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("weft-run-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.json", uuid_like(shape)));
    std::fs::write(&file, shapes::text(shape)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["run", file.to_str().unwrap(), "--fast-timers", "--input", input])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn uuid_like(shape: &Shape) -> String {
    format!("{shape:?}").chars().filter(char::is_ascii_alphanumeric).take(40).collect()
}

#[test]
fn a_10000_node_chain_runs() {
    let (code, stdout, stderr) = weft_run(&Shape::Chain { n: 10_000, kind: "delay" }, r#"{"x":1}"#);
    assert_eq!(code, 0, "{}", &stderr[stderr.len().saturating_sub(2000)..]);
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap(), json!({"x": 1}));
}

#[test]
fn nesting_to_the_limit_runs_and_one_more_is_refused() {
    let max = compiler::MAX_NESTING;
    let (code, _, stderr) = weft_run(&Shape::Nest { depth: max, kind: "loop" }, &shapes::nest_input(max));
    assert_eq!(code, 0, "{}", &stderr[stderr.len().saturating_sub(2000)..]);
    let (code, _, stderr) = weft_run(&Shape::Nest { depth: max, kind: "mixed" }, &shapes::nest_input(max.div_ceil(2)));
    assert_eq!(code, 0, "{}", &stderr[stderr.len().saturating_sub(2000)..]);
    for (kind, depth) in [("loop", max + 1), ("parallel", 31), ("mixed", 2_000)] {
        let (code, _, stderr) = weft_run(&Shape::Nest { depth, kind }, "{}");
        assert_eq!(code, 2, "{kind} x {depth}: {stderr}");
        assert!(stderr.contains("too-large"), "{kind} x {depth}: {stderr}");
    }
}
