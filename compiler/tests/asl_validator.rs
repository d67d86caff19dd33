//! The compiled ASL of every example (and of generated graphs with every node kind) is accepted
//! by the third-party `asl-validator` npm package.
//!
//! Set `WEFT_ASL_VALIDATOR` to its binary (`npm install --prefix DIR asl-validator@4`, then
//! `DIR/node_modules/.bin/asl-validator`). Without it the test prints a note and passes, unless
//! `WEFT_TEST_STRICT=1` (CI), where it fails.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod graphgen;

use std::path::{Path, PathBuf};
use std::process::Command;

fn validator() -> Option<PathBuf> {
    match std::env::var_os("WEFT_ASL_VALIDATOR") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            test_skip::skip("WEFT_ASL_VALIDATOR is not set (npm install asl-validator@4, then point it at the binary)");
            None
        }
    }
}

fn check(validator: &Path, name: &str, asl: &serde_json::Value, dir: &Path) {
    let file = dir.join(format!("{name}.asl.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(asl).expect("serializable")).expect("temp file");
    let out = Command::new(validator).arg("--json-path").arg(&file).output().expect("asl-validator runs");
    assert!(
        out.status.success(),
        "asl-validator rejects {name}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-asl-validator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn every_example_passes_asl_validator() {
    let Some(validator) = validator() else { return };
    let dir = temp_dir();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&examples)
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for p in paths {
        let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        let graph = compiler::parse(&std::fs::read_to_string(&p).expect("readable")).expect("parses");
        let compiled = compiler::compile(&graph, &compiler::CompileOptions::default()).expect("compiles");
        check(&validator, &name, &compiled.asl, &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generated_graphs_pass_asl_validator() {
    let Some(validator) = validator() else { return };
    let dir = temp_dir().join("generated");
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (size, seed) in [(60, 7), (900, 42)] {
        let graph = compiler::parse_value(graphgen::graph(size, seed)).expect("parses");
        let compiled = compiler::compile(&graph, &compiler::CompileOptions::default()).expect("compiles");
        check(&validator, &format!("generated-{size}"), &compiled.asl, &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn react_flow_ids_pass_asl_validator() {
    // Ids such as "1", "node-1" and UUIDs become state names and bracket JSONPaths.
    let Some(validator) = validator() else { return };
    let dir = temp_dir().join("react-flow-ids");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let graph = compiler::parse(include_str!("fixtures/react-flow-ids.json")).expect("parses");
    let compiled = compiler::compile(&graph, &compiler::CompileOptions::default()).expect("compiles");
    check(&validator, "react-flow-ids", &compiled.asl, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}
