//! `weft run` as a user runs it: the real binary, real graphs, real servers on 127.0.0.1.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn weft(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.arg("run").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run weft")
}

/// Writes `graph` to a fresh temporary file and returns its path.
fn graph_file(name: &str, graph: &Value) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-run-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.json"));
    let mut f = std::fs::File::create(&path).expect("create graph file");
    f.write_all(graph.to_string().as_bytes()).expect("write graph");
    path
}

fn linear(id: &str, middle: Vec<Value>, end_output: &str) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "start", "data": {}})];
    nodes.extend(middle);
    nodes.push(json!({"id": "done", "type": "end", "data": {"output": end_output}}));
    let edges: Vec<Value> = nodes
        .windows(2)
        .enumerate()
        .map(|(i, w)| json!({"id": format!("e{i}"), "source": w[0]["id"], "target": w[1]["id"]}))
        .collect();
    json!({"format": "weft/v1", "id": id, "name": id, "nodes": nodes, "edges": edges})
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn succeeds_with_output_on_stdout_and_progress_on_stderr() {
    let g = linear(
        "ok",
        vec![
            json!({"id": "double", "type": "code", "data": {"expression": "input.n * 2"}}),
            json!({"id": "label", "type": "code", "data": {"source": "return `n=${nodes.double}`;"}}),
        ],
        "{{ nodes.label }}",
    );
    let out = weft(&[graph_file("ok", &g).to_str().unwrap(), "--input", r#"{"n": 21}"#], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), json!("n=42"));
    let err = stderr(&out);
    for needle in ["started   double (code)", "done    double (code)", "done    label (code)", "SUCCEEDED"] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    // Helper states (`double.output`) are not shown as nodes.
    assert!(!err.contains("double.output"), "{err}");
}

#[test]
fn react_flow_ids_run_on_the_engine_with_bracket_paths() {
    // Ids "1", "node-1", "2", "a-1", "j-1", a UUID condition: every output read back through
    // `$.nodes['<id>']` paths, the native Choice rule on `nodes["node-1"].total > 5` taking
    // each branch, and the code function reading `nodes['node-1']` itself.
    let graph = concat!(env!("CARGO_MANIFEST_DIR"), "/../compiler/tests/fixtures/react-flow-ids.json");
    let out = weft(&[graph, "--input", r#"{"n": 21}"#, "--quiet"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out),
        json!({"size": "big", "total": 42, "first": 21, "plus_one": 43, "n": 21, "start": 21})
    );
    let out = weft(&[graph, "--input", r#"{"n": 1}"#, "--quiet"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), json!("small: 2 from 1"));
}

#[test]
fn quiet_prints_only_the_output() {
    let g = linear("quiet", vec![json!({"id": "one", "type": "code", "data": {"expression": "1"}})], "{{ nodes.one }}");
    let out = weft(&[graph_file("quiet", &g).to_str().unwrap(), "--quiet"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout_json(&out), json!(1));
    assert_eq!(stderr(&out), "");
}

#[test]
fn input_file_is_read() {
    let g = linear(
        "file",
        vec![json!({"id": "get", "type": "code", "data": {"expression": "input.items.length"}})],
        "{{ nodes.get }}",
    );
    let input = graph_file("file-input", &json!({"items": [1, 2, 3]}));
    let out =
        weft(&[graph_file("file", &g).to_str().unwrap(), "--input-file", input.to_str().unwrap(), "--quiet"], &[]);
    assert_eq!(stdout_json(&out), json!(3));
}

#[test]
fn without_input_the_start_schema_example_is_used_else_an_empty_object() {
    let mut g = linear(
        "example",
        vec![json!({"id": "get", "type": "code", "data": {"expression": "input.n * 2"}})],
        "{{ nodes.get }}",
    );
    let no_example = weft(&[graph_file("no-example", &g).to_str().unwrap(), "--quiet"], &[]);
    assert_eq!(stdout_json(&no_example), json!(null), "input {{}} has no n: NaN is null in JSON");

    g["nodes"][0]["data"] = json!({"input_schema": {"type": "object", "examples": [{"n": 21}, {"n": 1}]}});
    let path = graph_file("with-example", &g);
    let out = weft(&[path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), json!(42));
    assert!(stderr(&out).contains("input_schema"), "says where the input came from");

    // An explicit input always wins over the example.
    let out = weft(&[path.to_str().unwrap(), "--input", r#"{"n": 5}"#, "--quiet"], &[]);
    assert_eq!(stdout_json(&out), json!(10));
}

#[test]
fn the_quickstart_example_runs_with_no_arguments() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/order-routing.json");
    let out = weft(&[root, "--quiet"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), json!({"queue": "sales-desk", "priority": 2, "total": 1500}));
}

#[test]
fn failure_exits_1_naming_the_node_error_and_cause() {
    let g = linear(
        "fail",
        vec![
            json!({"id": "explode", "type": "code", "data": {"source": "\nthrow new Error('the widget is missing')"}}),
        ],
        "never",
    );
    let out = weft(&[graph_file("fail", &g).to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains("execution FAILED at node `explode`: Code.Error"), "{err}");
    assert!(err.contains("cause: Error: the widget is missing (line 2)"), "{err}");
    assert!(err.contains("failed  explode (code) (attempt 1)"), "{err}");
}

#[test]
fn invalid_graph_exits_2_with_diagnostics() {
    let g = json!({"format": "weft/v1", "id": "bad", "name": "bad", "nodes": [{"id": "x", "type": "code", "data": {"expression": "1"}}], "edges": []});
    let out = weft(&[graph_file("bad", &g).to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("error["), "{}", stderr(&out));
    let out = weft(&["/nonexistent/graph.json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let g = linear("badinput", vec![], "x");
    let out = weft(&[graph_file("badinput", &g).to_str().unwrap(), "--input", "{nope"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn node_types_whose_function_cannot_run_locally_fail_validation_naming_the_node() {
    // Every node type runs under `weft run` except `approval`, which waits for a decision
    // through the API.
    let g = linear(
        "approve",
        vec![json!({"id": "sign_off", "type": "approval", "data": {"message": "Ship it?", "timeout_seconds": 3600}})],
        "{{ nodes.sign_off }}",
    );
    let out = weft(&[graph_file("approve", &g).to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("not-runnable-locally") && err.contains("`sign_off`") && err.contains("weft serve"), "{err}");
    assert!(
        err.contains("llm, agent, multi_agent, vector_search, vector_upsert"),
        "the runnable types are listed: {err}"
    );
}

#[test]
fn fast_timers_skip_delays() {
    let g = linear(
        "delay",
        vec![
            json!({"id": "wait", "type": "delay", "data": {"seconds": 3600}}),
            json!({"id": "after", "type": "code", "data": {"expression": "'woke'"}}),
        ],
        "{{ nodes.after }}",
    );
    let started = Instant::now();
    let out = weft(&[graph_file("delay", &g).to_str().unwrap(), "--fast-timers", "--quiet"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), json!("woke"));
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn retries_are_shown_and_http_calls_a_real_server() {
    let hits = Arc::new(AtomicU32::new(0));
    let addr = flaky_server(hits.clone());
    let g = linear(
        "retry",
        vec![json!({"id": "fetch", "type": "http", "data": {"method": "GET", "url": format!("http://{addr}/flaky")},
                    "retry": {"max_attempts": 3, "interval_seconds": 1}})],
        "{{ nodes.fetch.body }}",
    );
    let out = weft(&[graph_file("retry", &g).to_str().unwrap(), "--fast-timers"], &[("WEFT_HTTP_ALLOW", "127.0.0.1")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), json!({"ok": true, "attempt": 2}));
    let err = stderr(&out);
    assert!(err.contains("failed  fetch (http) (attempt 1)") && err.contains("Http.Status5xx"), "{err}");
    assert!(err.contains("retry   fetch (http) (attempt 2)"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // Without the allow-list, the SSRF guard refuses 127.0.0.1 and the run fails with its name.
    let out = weft(&[graph_file("retry", &g).to_str().unwrap(), "--fast-timers", "--quiet"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Http.ForbiddenAddress"), "{}", stderr(&out));
    assert_eq!(hits.load(Ordering::SeqCst), 2, "the guard must refuse before connecting");
}

/// A minimal HTTP/1.1 server on 127.0.0.1: the first request gets 503, later ones 200 with JSON.
fn flaky_server(hits: Arc<AtomicU32>) -> std::net::SocketAddr {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut socket) = stream else { return };
            let mut buf = vec![0u8; 8192];
            let mut read = 0;
            while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                match socket.read(&mut buf[read..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
            let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
            let (status, body) = if n == 1 {
                ("503 Service Unavailable", "{\"busy\":true}".to_owned())
            } else {
                ("200 OK", format!("{{\"ok\":true,\"attempt\":{n}}}"))
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes());
        }
    });
    addr
}

/// A minimal HTTP/1.1 server on 127.0.0.1 answering each request with its head (request line
/// and headers) as text; the heads it saw are kept in `seen`.
fn head_echo_server(seen: Arc<std::sync::Mutex<Vec<String>>>) -> std::net::SocketAddr {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut socket) = stream else { return };
            let mut buf = vec![0u8; 8192];
            let mut read = 0;
            while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                match socket.read(&mut buf[read..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
            let head = String::from_utf8_lossy(&buf[..read]).into_owned();
            seen.lock().unwrap().push(head.clone());
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
                head.len()
            );
            let _ = socket.write_all(response.as_bytes());
        }
    });
    addr
}

#[test]
fn secrets_come_from_the_secrets_file_only_and_are_masked() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let addr = head_echo_server(seen.clone());
    let value = "run-secret-7c1e";
    let g = linear(
        "secret",
        vec![json!({"id": "fetch", "type": "http", "data": {"method": "GET", "url": format!("http://{addr}/x"),
                    "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}", "X-Other": "{{ secrets.OTHER }}"}}})],
        "{{ nodes.fetch.body }}",
    );
    let graph = graph_file("secret", &g);
    let graph = graph.to_str().unwrap();
    let allow = ("WEFT_HTTP_ALLOW", "127.0.0.1");

    // No file: nothing runs, both names are reported, the environment is not a fallback.
    let out = weft(&[graph], &[allow, ("WEFT_SECRET_TOKEN", value), ("WEFT_SECRET_OTHER", value)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("secrets: OTHER, TOKEN"), "{err}");
    assert!(err.contains("no --secrets FILE gives: OTHER, TOKEN"), "{err}");
    assert!(seen.lock().unwrap().is_empty(), "nothing may run before the check");

    // A JSON file lacking one: only that one is missing.
    let dir = std::env::temp_dir().join(format!("weft-run-test-{}", std::process::id()));
    let json_file = dir.join("secrets.json");
    std::fs::write(&json_file, json!({"TOKEN": value}).to_string()).unwrap();
    let out = weft(&[graph, "--secrets", json_file.to_str().unwrap()], &[allow]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not define: OTHER ("), "{}", stderr(&out));

    // A dotenv file with both: the request carries the values, the output shows `***`.
    let env_file = dir.join("secrets.env");
    std::fs::write(&env_file, format!("# for the test\nTOKEN={value}\nexport OTHER='{value}-2'\n")).unwrap();
    let out = weft(&[graph, "--secrets", env_file.to_str().unwrap()], &[allow]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let head = seen.lock().unwrap().pop().unwrap().to_ascii_lowercase();
    assert!(head.contains(&format!("authorization: bearer {value}")), "{head}");
    assert!(head.contains(&format!("x-other: {value}-2")), "{head}");
    let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!shown.contains(value), "{shown}");
    assert!(stdout_json(&out).as_str().unwrap().to_ascii_lowercase().contains("authorization: bearer ***"));

    // A file that does not parse names the line, not its content.
    std::fs::write(&env_file, format!("TOKEN={value}\nthis line has {value} but no equals sign\n")).unwrap();
    let out = weft(&[graph, "--secrets", env_file.to_str().unwrap()], &[allow]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(value), "{}", stderr(&out));
}

/// A graph from nodes and `(source, target, sourceHandle)` edges.
fn graph(id: &str, nodes: Vec<Value>, edges: &[(&str, &str, Option<&str>)]) -> Value {
    let edges: Vec<Value> = edges
        .iter()
        .enumerate()
        .map(|(i, (s, t, h))| {
            let mut e = json!({"id": format!("e{i}"), "source": s, "target": t});
            if let Some(h) = h {
                e["sourceHandle"] = json!(h);
            }
            e
        })
        .collect();
    json!({"format": "weft/v1", "id": id, "name": id, "nodes": nodes, "edges": edges})
}

/// Runs `graph` with `input` and returns its output, requiring success.
fn run_ok(name: &str, graph: &Value, input: Value) -> Value {
    let out = weft(&[graph_file(name, graph).to_str().unwrap(), "--quiet", "--input", &input.to_string()], &[]);
    assert_eq!(out.status.code(), Some(0), "{name} on {input}: {}", stderr(&out));
    stdout_json(&out)
}

/// The `cause` a caught code failure carries: Lambda's error document, as Step Functions records it.
fn code_cause(message: &str) -> String {
    json!({"errorMessage": message, "errorType": "Code.Error"}).to_string()
}

#[test]
fn error_edges_take_the_failure_to_their_target() {
    // A code node, a condition whose guard sends it to JavaScript (which throws), and a loop whose
    // body fails: each `error` edge leads to a node reading `nodes.<id>.error` and `.cause`.
    let g = graph(
        "error-edges",
        vec![
            json!({"id": "start", "type": "start", "data": {}}),
            json!({"id": "risky", "type": "code", "data": {"source": "if (input.fail) throw new TypeError('bad ' + input.n);\nreturn input.n * 2;"}}),
            json!({"id": "check", "type": "condition", "data": {"expression": "input.a.b > 1"}}),
            json!({"id": "each", "type": "loop", "data": {"items": "{{ input.xs }}"}}),
            json!({"id": "inv", "type": "code", "parentId": "each", "data": {"expression": "item.length > 0 ? 1 / item.length : (() => { throw new RangeError('empty at ' + index) })()"}}),
            json!({"id": "done", "type": "end", "data": {"output": {"risky": "{{ nodes.risky }}", "each": "{{ nodes.each }}"}}}),
            json!({"id": "small", "type": "end", "data": {"output": "small"}}),
            json!({"id": "on_risky", "type": "end", "data": {"output": {"error": "{{ nodes.risky.error }}", "cause": "{{ nodes.risky.cause }}"}}}),
            // A condition has no value of its own: templates naming it read its predecessor's, so
            // the stored failure is read from JavaScript, where `nodes` is what the state holds.
            json!({"id": "on_check", "type": "code", "data": {"expression": "({ check: nodes.check })"}}),
            json!({"id": "checked", "type": "end", "data": {}}),
            json!({"id": "on_each", "type": "end", "data": {"output": {"each": "{{ nodes.each }}", "risky": "{{ nodes.risky }}"}}}),
        ],
        &[
            ("start", "risky", None),
            ("risky", "check", None),
            ("risky", "on_risky", Some("error")),
            ("check", "each", Some("true")),
            ("check", "small", Some("false")),
            ("check", "on_check", Some("error")),
            ("on_check", "checked", None),
            ("each", "done", None),
            ("each", "on_each", Some("error")),
        ],
    );
    let ok = json!({"n": 3, "a": {"b": 2}, "xs": ["ab", "abcd"]});
    assert_eq!(run_ok("error-edges", &g, ok), json!({"risky": 6, "each": [0.5, 0.25]}));
    assert_eq!(run_ok("error-edges", &g, json!({"n": 3, "a": {"b": 0}, "xs": []})), json!("small"));
    assert_eq!(
        run_ok("error-edges", &g, json!({"n": 3, "fail": true})),
        json!({"error": "Code.Error", "cause": code_cause("TypeError: bad 3 (line 1)")})
    );
    assert_eq!(
        run_ok("error-edges", &g, json!({"n": 1, "a": null})),
        json!({"check": {"error": "Code.Error", "cause": code_cause("TypeError: cannot read property 'b' of null (line 1)")}})
    );
    assert_eq!(
        run_ok("error-edges", &g, json!({"n": 1, "a": {"b": 5}, "xs": ["x", ""]})),
        json!({"risky": 2, "each": {"error": "Code.Error", "cause": code_cause("RangeError: empty at 1 (line 1)")}})
    );
}

#[test]
fn a_loop_inside_a_parallel_branch_runs_and_joins() {
    let g = graph(
        "loop-in-parallel",
        vec![
            json!({"id": "start", "type": "start", "data": {}}),
            json!({"id": "fork", "type": "parallel", "data": {}}),
            json!({"id": "each", "type": "loop", "data": {"items": "{{ input.xs }}", "concurrency": 2}}),
            json!({"id": "double", "type": "code", "parentId": "each", "data": {"expression": "({ x: item, twice: item * 2, at: index })"}}),
            json!({"id": "count", "type": "code", "data": {"expression": "input.xs.length"}}),
            json!({"id": "sum", "type": "code", "data": {"expression": "nodes.count + 1"}}),
            json!({"id": "meet", "type": "join", "data": {}}),
            json!({"id": "done", "type": "end", "data": {"output": {"joined": "{{ nodes.meet }}", "each": "{{ nodes.each }}"}}}),
        ],
        &[
            ("start", "fork", None),
            ("fork", "each", None),
            ("fork", "count", None),
            ("count", "sum", None),
            ("each", "meet", None),
            ("sum", "meet", None),
            ("meet", "done", None),
        ],
    );
    let each =
        json!([{"x": 5, "twice": 10, "at": 0}, {"x": -1, "twice": -2, "at": 1}, {"x": 0.5, "twice": 1, "at": 2}]);
    assert_eq!(
        run_ok("loop-in-parallel", &g, json!({"xs": [5, -1, 0.5]})),
        json!({"joined": {"each": each, "sum": 4}, "each": each})
    );
    assert_eq!(
        run_ok("loop-in-parallel", &g, json!({"xs": []})),
        json!({"joined": {"each": [], "sum": 1}, "each": []})
    );
}

#[test]
fn nested_loops_see_their_own_item_and_index() {
    let g = graph(
        "nested-loops",
        vec![
            json!({"id": "start", "type": "start", "data": {}}),
            json!({"id": "rows", "type": "loop", "data": {"items": "{{ input.grid }}"}}),
            json!({"id": "cells", "type": "loop", "parentId": "rows", "data": {"items": "{{ item.cells }}"}}),
            json!({"id": "cell", "type": "code", "parentId": "cells", "data": {"expression": "item * 10 + index"}}),
            json!({"id": "row", "type": "code", "parentId": "rows", "data": {"expression": "({ row: index, name: item.name, cells: nodes.cells, total: nodes.cells.reduce((a, b) => a + b, 0) })"}}),
            json!({"id": "done", "type": "end", "data": {"output": "{{ nodes.rows }}"}}),
        ],
        &[("start", "rows", None), ("cells", "row", None), ("rows", "done", None)],
    );
    let input =
        json!({"grid": [{"name": "a", "cells": [1, 2, 3]}, {"name": "b", "cells": []}, {"name": "c", "cells": [7]}]});
    assert_eq!(
        run_ok("nested-loops", &g, input),
        json!([
            {"row": 0, "name": "a", "cells": [10, 21, 32], "total": 63},
            {"row": 1, "name": "b", "cells": [], "total": 0},
            {"row": 2, "name": "c", "cells": [70], "total": 70},
        ])
    );
}
