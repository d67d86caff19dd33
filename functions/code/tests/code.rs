//! The code function on real QuickJS: bindings, results, limits and error reporting.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use fn_code::{CodeFunction, Limits};
use node_contract::{NodeError, NodeEvent};
use serde_json::{Value, json};

fn event(config: Value, scope: Value) -> NodeEvent {
    NodeEvent::from_value(json!({"node": {"id": "c", "type": "code"}, "config": config, "scope": scope}))
        .expect("a valid event")
}

async fn run(config: Value, scope: Value) -> Result<Value, NodeError> {
    CodeFunction::new(Limits { timeout: Duration::from_millis(500), ..Limits::default() })
        .run(event(config, scope))
        .await
}

#[tokio::test]
async fn expression_sees_input_nodes_item_and_index() {
    let scope = json!({"input": {"n": 2}, "nodes": {"fetch": {"status": 200}}, "item": {"name": "a"}, "index": 3});
    let out =
        run(json!({"expression": "({n: input.n * 10, s: nodes.fetch.status, name: item.name, i: index})"}), scope)
            .await
            .unwrap();
    assert_eq!(out, json!({"n": 20, "s": 200, "name": "a", "i": 3}));
}

#[tokio::test]
async fn an_agent_tool_sees_the_models_arguments_as_args() {
    let scope = json!({"input": {"n": 2}, "args": {"city": "Oslo", "days": 3}});
    let out = run(json!({"source": "return `${args.city}: ${args.days * input.n}`;"}), scope).await.unwrap();
    assert_eq!(out, json!("Oslo: 6"));
    // Outside a tool there are no arguments.
    let out = run(json!({"expression": "typeof args"}), json!({"input": {}})).await.unwrap();
    assert_eq!(out, json!("undefined"));
}

#[tokio::test]
async fn start_names_the_node_whose_output_is_the_input() {
    let scope = json!({"input": {"n": 2}, "nodes": {"a": 1}, "start": "begin"});
    let out = run(json!({"expression": "[nodes.begin.n, nodes.a]"}), scope).await.unwrap();
    assert_eq!(out, json!([2, 1]));
}

#[tokio::test]
async fn source_is_a_function_body_that_returns() {
    let src = "const xs = input.items.map(x => x * 2);\nreturn { total: xs.reduce((a, b) => a + b, 0), xs };";
    let out = run(json!({"source": src}), json!({"input": {"items": [1, 2, 3]}})).await.unwrap();
    assert_eq!(out, json!({"total": 12, "xs": [2, 4, 6]}));
}

#[tokio::test]
async fn missing_bindings_are_undefined_and_nodes_defaults_to_empty() {
    let out =
        run(json!({"expression": "[typeof item, typeof index, typeof input, Object.keys(nodes).length]"}), json!({}))
            .await
            .unwrap();
    assert_eq!(out, json!(["undefined", "undefined", "undefined", 0]));
}

#[tokio::test]
async fn undefined_result_is_null_and_functions_are_refused() {
    assert_eq!(run(json!({"source": "let x = 1;"}), json!({})).await.unwrap(), Value::Null);
    let err = run(json!({"expression": "() => 1"}), json!({})).await.unwrap_err();
    assert_eq!(err.name, "Code.InvalidResult", "{err}");
    let err = run(json!({"expression": "10n"}), json!({})).await.unwrap_err();
    assert_eq!(err.name, "Code.InvalidResult", "{err}");
    let err = run(json!({"source": "const a = {}; a.self = a; return a;"}), json!({})).await.unwrap_err();
    assert_eq!(err.name, "Code.InvalidResult", "{err}");
}

#[tokio::test]
async fn boolean_mode_returns_javascript_truthiness() {
    for (expr, expected) in [("input.name", true), ("input.missing", false), ("0", false), ("'0'", true), ("[]", true)]
    {
        let out = run(json!({"expression": expr, "boolean": true}), json!({"input": {"name": "x"}})).await.unwrap();
        assert_eq!(out, json!(expected), "{expr}");
    }
}

#[tokio::test]
async fn infinite_loop_is_stopped_by_the_time_limit() {
    let started = Instant::now();
    let err = run(json!({"source": "while (true) {}"}), json!({})).await.unwrap_err();
    assert_eq!(err.name, "Code.Timeout", "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    // The interrupt cannot be caught by the script.
    let err = run(json!({"source": "for (;;) { try { while (true) {} } catch (e) {} }"}), json!({})).await.unwrap_err();
    assert_eq!(err.name, "Code.Timeout", "{err}");
}

#[tokio::test]
async fn config_timeout_only_lowers_the_limit() {
    // The function's own limit is 60 s; the node's 0.1 s wins. Stopping in well under the 60 s
    // shows that, with room for a loaded machine (a tight bound here would flake).
    let f = CodeFunction::new(Limits { timeout: Duration::from_secs(60), ..Limits::default() });
    let started = Instant::now();
    let err = f.run(event(json!({"source": "while (true) {}", "timeout_seconds": 0.1}), json!({}))).await.unwrap_err();
    assert_eq!(err.name, "Code.Timeout");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    // And a node cannot raise it: 120 s asked, the 0.5 s limit of `run` applies.
    let started = Instant::now();
    let err = run(json!({"source": "while (true) {}", "timeout_seconds": 120}), json!({})).await.unwrap_err();
    assert_eq!(err.name, "Code.Timeout");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn memory_bomb_is_stopped_by_the_memory_limit() {
    let f = CodeFunction::new(Limits { memory_bytes: 16 << 20, timeout: Duration::from_secs(20), ..Limits::default() });
    for src in [
        "const a = []; while (true) a.push(new Array(100000).fill(1));",
        "let s = 'x'; while (true) s = s.repeat(2); return s.length;",
        "const a = []; while (true) a.push({k: Math.random()});",
    ] {
        let err = f.run(event(json!({"source": src}), json!({}))).await.unwrap_err();
        assert_eq!(err.name, "Code.MemoryLimit", "{src}: {err}");
    }
    // The function still works after a memory failure: every evaluation gets a fresh runtime.
    assert_eq!(f.run(event(json!({"expression": "1 + 1"}), json!({}))).await.unwrap(), json!(2));
}

#[tokio::test]
async fn thrown_errors_come_back_with_message_and_line() {
    let err = run(json!({"source": "const a = 1;\nconst b = 2;\nthrow new TypeError('bad thing');"}), json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.name, "Code.Error");
    assert!(err.message.contains("TypeError: bad thing"), "{}", err.message);
    assert!(err.message.contains("line 3"), "{}", err.message);

    let err = run(json!({"source": "\n\nreturn input.a.b.c;"}), json!({"input": {}})).await.unwrap_err();
    assert_eq!(err.name, "Code.Error");
    assert!(err.message.starts_with("TypeError"), "{}", err.message);
    assert!(err.message.contains("line 3"), "{}", err.message);

    let err = run(json!({"source": "throw 'boom'"}), json!({})).await.unwrap_err();
    assert_eq!((err.name.as_str(), err.message.as_str()), ("Code.Error", "Uncaught \"boom\""));
    let err = run(json!({"source": "throw {code: 7}"}), json!({})).await.unwrap_err();
    assert_eq!(err.message, "Uncaught {\"code\":7}");
}

#[tokio::test]
async fn syntax_errors_come_back_with_message_and_line() {
    let err = run(json!({"source": "const a = 1;\nreturn a +;"}), json!({})).await.unwrap_err();
    assert_eq!(err.name, "Code.Error");
    assert!(err.message.starts_with("SyntaxError"), "{}", err.message);
    assert!(err.message.contains("line 2"), "{}", err.message);
    let err = run(json!({"expression": "input.a ==="}), json!({})).await.unwrap_err();
    assert!(err.message.starts_with("SyntaxError"), "{}", err.message);
}

#[tokio::test]
async fn no_file_network_or_process_access() {
    let probe = "[typeof require, typeof process, typeof std, typeof os, typeof fetch, typeof XMLHttpRequest, typeof import_meta_dummy]";
    let out = run(json!({"expression": probe}), json!({})).await.unwrap();
    assert_eq!(out, json!(vec!["undefined"; 7]));
    let err = run(json!({"source": "return import('os')"}), json!({})).await;
    // Dynamic import has no loader: it either throws or returns a rejected promise, never a module.
    assert!(err.is_err(), "{err:?}");
}

#[tokio::test]
async fn bad_config_is_config_invalid() {
    for config in [
        json!({}),
        json!({"expression": 1}),
        json!({"expression": "1", "source": "return 1"}),
        json!("x"),
        json!({"expression": "1", "timeout_seconds": -1}),
    ] {
        let err = run(config.clone(), json!({})).await.unwrap_err();
        assert_eq!(err.name, "Config.Invalid", "{config}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evaluations_beyond_max_concurrent_wait_for_a_turn() {
    // Each evaluation spins for 200 ms of wall time; with one turn, three of them cannot overlap,
    // so together they take at least 600 ms (a lower bound: a loaded machine only adds to it).
    let f = CodeFunction::new(Limits { max_concurrent: 1, timeout: Duration::from_secs(20), ..Limits::default() });
    let spin = json!({"source": "const t = Date.now(); while (Date.now() - t < 200) {} return 1;"});
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        f.run(event(spin.clone(), json!({}))),
        f.run(event(spin.clone(), json!({}))),
        f.run(event(spin.clone(), json!({})))
    );
    for r in [a, b, c] {
        assert_eq!(r.expect("ran"), json!(1));
    }
    assert!(started.elapsed() >= Duration::from_millis(600), "ran concurrently: {:?}", started.elapsed());
    assert!(Limits::default().max_concurrent >= 2);
}
