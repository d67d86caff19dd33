//! Every example in `examples/` whose node types all run locally runs under `weft run`, with
//! its expected outputs checked. Cases live in `cli/tests/expected/<example>.json`:
//! `{"cases": [{"name": ..., "input": ..., "output": ...}]}`; the string `$CALLBACK_URL` in an
//! input is replaced by the URL of a JSON echo server on 127.0.0.1 (allow-listed for the SSRF
//! guard). `UPDATE_EXPECT=1 cargo test -p cli --test run_examples` rewrites the outputs.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// The examples whose node types all run locally, each run with every case of its expected file.
/// An example that starts (or stops) running locally must be added here (or removed).
const RUNNABLE: &[&str] = &["batch-scoring", "order-routing", "webhook-relay"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn runnable(graph: &Value) -> Result<(), BTreeSet<String>> {
    let missing: BTreeSet<String> = graph["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["type"].as_str())
        .filter(|t| {
            !compiler::NODE_TYPES.contains(t) || (compiler::is_task_type(t) && !local_functions::is_available(t))
        })
        .map(str::to_owned)
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(missing) }
}

/// Answers every request with 200 and `{"received": <request body as JSON or null>}`.
fn echo_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut socket) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            // Read the head, then as many body bytes as Content-Length says.
            let (head_end, length) = loop {
                match socket.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                        .unwrap_or(0);
                    break (i + 4, length);
                }
            };
            while buf.len() < head_end + length {
                match socket.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let received: Value = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
            let body = json!({"received": received}).to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes());
        }
    });
    format!("http://{addr}/callback")
}

fn substitute(value: &Value, url: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace("$CALLBACK_URL", url)),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, url)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), substitute(v, url))).collect()),
        other => other.clone(),
    }
}

#[test]
fn runnable_examples_produce_their_expected_outputs() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let callback = echo_server();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    examples.sort();
    let (mut ran, mut skipped, mut problems) = (0, Vec::new(), Vec::new());
    let (mut ran_examples, mut case_count) = (BTreeSet::new(), 0);
    for path in &examples {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        let graph: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read example")).expect("example is JSON");
        let expected_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected").join(format!("{name}.json"));
        if let Err(missing) = runnable(&graph) {
            skipped.push(format!("{name} (needs {})", missing.into_iter().collect::<Vec<_>>().join(", ")));
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&expected_path) else {
            problems.push(format!("{name}: runs locally but has no {} with cases", expected_path.display()));
            continue;
        };
        let mut expected: Value = serde_json::from_str(&text).expect("expected file is JSON");
        let cases = expected["cases"].as_array_mut().expect("`cases` array");
        assert!(!cases.is_empty(), "{name}: {} has no cases", expected_path.display());
        ran_examples.insert(name.clone());
        case_count += cases.len();
        for case in cases.iter_mut() {
            let input = substitute(&case["input"], &callback);
            let out = Command::new(env!("CARGO_BIN_EXE_weft"))
                .args([
                    "run",
                    path.to_str().expect("utf-8 path"),
                    "--fast-timers",
                    "--quiet",
                    "--input",
                    &input.to_string(),
                ])
                .env("WEFT_HTTP_ALLOW", "127.0.0.1")
                .output()
                .expect("run weft");
            let case_name = case["name"].as_str().unwrap_or("?").to_owned();
            if !out.status.success() {
                problems.push(format!(
                    "{name}/{case_name}: exit {:?}\n{}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
                continue;
            }
            let actual: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
            ran += 1;
            if update {
                case["output"] = actual;
            } else if actual != case["output"] {
                problems.push(format!(
                    "{name}/{case_name}: output differs\n  expected {}\n  actual   {}",
                    case["output"], actual
                ));
            }
        }
        if update {
            std::fs::write(&expected_path, serde_json::to_string_pretty(&expected).expect("json") + "\n")
                .expect("write expected");
        }
    }
    eprintln!(
        "{ran} example case(s) ran; skipped: {}",
        if skipped.is_empty() { "none".to_owned() } else { skipped.join(", ") }
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        ran_examples,
        RUNNABLE.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>(),
        "the examples that run"
    );
    assert_eq!(ran, case_count, "every case of every runnable example ran");
}
