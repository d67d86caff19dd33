//! One test per diagnostic code: a small graph that has exactly that problem, and the
//! diagnostic it must produce (code, severity and the node it names).

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use compiler::{CompileOptions, Diagnostic, Severity, codes};
use serde_json::{Value, json};

/// A graph `start -> <nodes...> -> done`, with `nodes` and `edges` given in full.
fn graph(nodes: Value, edges: Value) -> Value {
    json!({"format": "weft/v1", "id": "t", "name": "t", "nodes": nodes, "edges": edges})
}

fn start() -> Value {
    json!({"id": "start", "type": "start", "data": {}})
}

fn end(id: &str) -> Value {
    json!({"id": id, "type": "end", "data": {}})
}

fn code(id: &str) -> Value {
    json!({"id": id, "type": "code", "data": {"expression": "1"}})
}

fn e(source: &str, target: &str) -> Value {
    json!({"source": source, "target": target})
}

fn eh(source: &str, handle: &str, target: &str) -> Value {
    json!({"source": source, "sourceHandle": handle, "target": target})
}

/// start -> x -> done, where x is the given node.
fn single(node: Value) -> Value {
    let id = node["id"].as_str().unwrap_or_default().to_owned();
    graph(json!([start(), node, end("done")]), json!([e("start", &id), e(&id, "done")]))
}

fn diagnostics(g: &Value) -> Vec<Diagnostic> {
    match compiler::parse(&g.to_string()) {
        Ok(graph) => match compiler::compile(&graph, &CompileOptions::default()) {
            Ok(c) => c.warnings,
            Err(d) => d,
        },
        Err(d) => d,
    }
}

/// Asserts that `diags` holds `code` (at `node`, if given) with the given severity.
fn expect(diags: &[Diagnostic], code: &str, severity: Severity, node: Option<&str>) {
    assert!(
        diags.iter().any(|d| d.code == code && d.severity == severity && (node.is_none() || d.node.as_deref() == node)),
        "expected {code} ({severity:?}) at {node:?}, got {diags:#?}"
    );
    // Every diagnostic has a stable, documented code.
    for d in diags {
        assert!(codes::ALL.contains(&d.code.as_str()), "undocumented code {}", d.code);
    }
}

fn err(g: Value, code: &str, node: Option<&str>) {
    expect(&diagnostics(&g), code, Severity::Error, node);
}

/// Declares one test per code; `every_code_has_a_test` checks the list is complete.
macro_rules! cases {
    ($($name:ident => $code:expr, $body:block)*) => {
        $(#[test] fn $name() $body)*
        const TESTED: &[&str] = &[$($code),*];
    };
}

cases! {
    invalid_json => codes::INVALID_JSON, {
        let d = compiler::parse("{\"nodes\": [").unwrap_err();
        expect(&d, codes::INVALID_JSON, Severity::Error, None);
        assert!(d[0].message.contains("line 1"), "{}", d[0].message);
    }
    invalid_shape => codes::INVALID_SHAPE, {
        let d = compiler::parse(r#"{"format": "weft/v1", "nodes": 5}"#).unwrap_err();
        expect(&d, codes::INVALID_SHAPE, Severity::Error, None);
    }
    unsupported_format => codes::UNSUPPORTED_FORMAT, {
        let mut g = single(code("a"));
        g["format"] = json!("weft/v9");
        err(g, codes::UNSUPPORTED_FORMAT, None);
    }
    missing_start => codes::MISSING_START, {
        err(graph(json!([code("a"), end("done")]), json!([e("a", "done")])), codes::MISSING_START, None);
    }
    multiple_starts => codes::MULTIPLE_STARTS, {
        let s2 = json!({"id": "start2", "type": "start", "data": {}});
        err(graph(json!([start(), s2, end("done")]), json!([e("start", "done"), e("start2", "done")])), codes::MULTIPLE_STARTS, Some("start2"));
    }
    invalid_node_id => codes::INVALID_NODE_ID, {
        for bad in ["fetch user", "a.b", "a[0]", "it's", "", &"a".repeat(65)] {
            let d = diagnostics(&single(code(bad)));
            expect(&d, codes::INVALID_NODE_ID, Severity::Error, Some(bad));
            let m = &d.iter().find(|d| d.code == codes::INVALID_NODE_ID).unwrap().message;
            assert!(m.contains("letters, digits, `_` and `-`"), "{m}");
        }
        // What React Flow editors produce is accepted.
        for good in ["fetch-user", "1", "dndnode_0", "3f2b9c1e-7d4a-4c1b-9e2f-0a1b2c3d4e5f"] {
            let d = diagnostics(&single(code(good)));
            assert!(d.iter().all(|d| d.code != codes::INVALID_NODE_ID), "{good}: {d:#?}");
        }
    }
    duplicate_node_id => codes::DUPLICATE_NODE_ID, {
        err(graph(json!([start(), code("a"), code("a"), end("done")]), json!([e("start", "a"), e("a", "done")])), codes::DUPLICATE_NODE_ID, Some("a"));
    }
    duplicate_edge_id => codes::DUPLICATE_EDGE_ID, {
        let g = graph(
            json!([start(), code("a"), end("done")]),
            json!([{"id": "x", "source": "start", "target": "a"}, {"id": "x", "source": "a", "target": "done"}]),
        );
        let d = diagnostics(&g);
        expect(&d, codes::DUPLICATE_EDGE_ID, Severity::Error, None);
        assert!(d.iter().any(|d| d.edge.as_deref() == Some("x")));
    }
    unknown_node_type => codes::UNKNOWN_NODE_TYPE, {
        err(single(json!({"id": "a", "type": "teleport", "data": {}})), codes::UNKNOWN_NODE_TYPE, Some("a"));
    }
    missing_field => codes::MISSING_FIELD, {
        err(single(json!({"id": "a", "type": "http", "data": {"method": "GET"}})), codes::MISSING_FIELD, Some("a"));
    }
    invalid_field => codes::INVALID_FIELD, {
        err(single(json!({"id": "a", "type": "http", "data": {"method": "FETCH", "url": "https://x"}})), codes::INVALID_FIELD, Some("a"));
        // A connection names a secret literally: no input may choose which secret is used.
        for bad in [json!("{{ input.db }}"), json!("reports db"), json!("9db"), json!(5)] {
            let g = single(json!({"id": "q", "type": "database", "data": {"connection": bad, "query": "select 1"}}));
            let d = diagnostics(&g);
            expect(&d, codes::INVALID_FIELD, Severity::Error, Some("q"));
            assert!(d.iter().any(|d| d.message.contains("`data.connection`")), "{bad}: {d:#?}");
        }
        let ok = single(json!({"id": "q", "type": "database", "data": {"connection": "reports_db", "query": "select 1"}}));
        assert!(diagnostics(&ok).iter().all(|d| !d.is_error()), "{:#?}", diagnostics(&ok));
        // An email needs a body, an html body or both; a slack message text or blocks.
        let g = single(json!({"id": "m", "type": "email", "data": {"connection": "smtp", "from": "a@example.com", "to": "b@example.com", "subject": "s"}}));
        expect(&diagnostics(&g), codes::MISSING_FIELD, Severity::Error, Some("m"));
        let g = single(json!({"id": "s", "type": "slack", "data": {"connection": "slack", "channel": "#c"}}));
        expect(&diagnostics(&g), codes::MISSING_FIELD, Severity::Error, Some("s"));
    }
    unknown_field => codes::UNKNOWN_FIELD, {
        // A warning: the graph still compiles.
        let g = single(json!({"id": "a", "type": "http", "data": {"method": "GET", "url": "https://x", "verb": "GET"}}));
        let graph = compiler::parse(&g.to_string()).unwrap();
        let compiled = compiler::compile(&graph, &CompileOptions::default()).unwrap();
        expect(&compiled.warnings, codes::UNKNOWN_FIELD, Severity::Warning, Some("a"));
    }
    dangling_edge => codes::DANGLING_EDGE, {
        let g = graph(json!([start(), code("a"), end("done")]), json!([e("start", "a"), e("a", "done"), e("a", "ghost")]));
        err(g, codes::DANGLING_EDGE, None);
    }
    unreachable_node => codes::UNREACHABLE_NODE, {
        let g = graph(json!([start(), code("a"), code("island"), end("done")]), json!([e("start", "a"), e("a", "done"), e("island", "done")]));
        err(g, codes::UNREACHABLE_NODE, Some("island"));
    }
    dead_end => codes::DEAD_END, {
        let g = graph(json!([start(), code("a"), end("done")]), json!([e("start", "a")]));
        err(g, codes::DEAD_END, Some("a"));
    }
    cycle => codes::CYCLE, {
        let g = graph(
            json!([start(), code("a"), code("b"), end("done")]),
            json!([e("start", "a"), e("a", "b"), e("b", "a"), e("b", "done")]),
        );
        err(g, codes::CYCLE, Some("a"));
    }
    missing_handle => codes::MISSING_HANDLE, {
        let c = json!({"id": "c", "type": "condition", "data": {"expression": "input.ok"}});
        let g = graph(json!([start(), c, end("done")]), json!([e("start", "c"), eh("c", "true", "done")]));
        err(g, codes::MISSING_HANDLE, Some("c"));
    }
    unknown_handle => codes::UNKNOWN_HANDLE, {
        let c = json!({"id": "c", "type": "condition", "data": {"expression": "input.ok"}});
        let g = graph(
            json!([start(), c, end("done")]),
            json!([e("start", "c"), eh("c", "true", "done"), eh("c", "false", "done"), eh("c", "maybe", "done")]),
        );
        err(g, codes::UNKNOWN_HANDLE, Some("c"));
    }
    duplicate_handle => codes::DUPLICATE_HANDLE, {
        let g = graph(
            json!([start(), code("a"), code("b"), end("done")]),
            json!([e("start", "a"), e("a", "b"), e("a", "done"), e("b", "done")]),
        );
        err(g, codes::DUPLICATE_HANDLE, Some("a"));
    }
    unjoined_fork => codes::UNJOINED_FORK, {
        let p = json!({"id": "p", "type": "parallel", "data": {}});
        let g = graph(
            json!([start(), p, code("a"), code("b"), end("done"), end("done2")]),
            json!([e("start", "p"), e("p", "a"), e("p", "b"), e("a", "done"), e("b", "done2")]),
        );
        err(g, codes::UNJOINED_FORK, Some("p"));
    }
    bad_join => codes::BAD_JOIN, {
        // A join after a condition's merge: no parallel closes there.
        let c = json!({"id": "c", "type": "condition", "data": {"expression": "input.ok"}});
        let j = json!({"id": "j", "type": "join", "data": {}});
        let g = graph(
            json!([start(), c, code("a"), code("b"), j, end("done")]),
            json!([e("start", "c"), eh("c", "true", "a"), eh("c", "false", "b"), e("a", "j"), e("b", "j"), e("j", "done")]),
        );
        err(g, codes::BAD_JOIN, Some("j"));
    }
    single_branch_fork => codes::SINGLE_BRANCH_FORK, {
        let p = json!({"id": "p", "type": "parallel", "data": {}});
        let j = json!({"id": "j", "type": "join", "data": {}});
        let g = graph(json!([start(), p, code("a"), j, end("done")]), json!([e("start", "p"), e("p", "a"), e("a", "j"), e("j", "done")]));
        err(g, codes::SINGLE_BRANCH_FORK, Some("p"));
    }
    unknown_node_reference => codes::UNKNOWN_NODE_REFERENCE, {
        err(single(json!({"id": "a", "type": "slack", "data": {"text": "{{ nodes.nope.x }}"}})), codes::UNKNOWN_NODE_REFERENCE, Some("a"));
        let d = diagnostics(&single(json!({"id": "a", "type": "slack", "data": {"text": "{{ nodes['no-pe'].x }}"}})));
        expect(&d, codes::UNKNOWN_NODE_REFERENCE, Severity::Error, Some("a"));
        assert!(d.iter().any(|d| d.message.contains(r#"`nodes["no-pe"]`"#)), "{d:#?}");
    }
    not_upstream => codes::NOT_UPSTREAM, {
        // `a` names `b`, which runs after it; `d` names `x`, which ran on one branch only.
        let a = json!({"id": "a", "type": "slack", "data": {"text": "{{ nodes.b.text }}"}});
        let g = graph(json!([start(), a, code("b"), end("done")]), json!([e("start", "a"), e("a", "b"), e("b", "done")]));
        err(g, codes::NOT_UPSTREAM, Some("a"));
        // The same with ids that are not identifiers, named in bracket syntax.
        let a = json!({"id": "node-1", "type": "slack", "data": {"text": "{{ nodes[\"2\"].text }}"}});
        let g = graph(json!([start(), a, code("2"), end("done")]), json!([e("start", "node-1"), e("node-1", "2"), e("2", "done")]));
        err(g, codes::NOT_UPSTREAM, Some("node-1"));
        let c = json!({"id": "c", "type": "condition", "data": {"expression": "input.ok"}});
        let d = json!({"id": "d", "type": "slack", "data": {"text": "{{ nodes.x }}"}});
        let g = graph(
            json!([start(), c, code("x"), code("y"), d, end("done")]),
            json!([e("start", "c"), eh("c", "true", "x"), eh("c", "false", "y"), e("x", "d"), e("y", "d"), e("d", "done")]),
        );
        err(g, codes::NOT_UPSTREAM, Some("d"));
    }
    item_outside_loop => codes::ITEM_OUTSIDE_LOOP, {
        err(single(json!({"id": "a", "type": "slack", "data": {"text": "{{ item.name }}"}})), codes::ITEM_OUTSIDE_LOOP, Some("a"));
    }
    args_outside_tool => codes::ARGS_OUTSIDE_TOOL, {
        err(single(json!({"id": "a", "type": "slack", "data": {"text": "{{ args.city }}"}})), codes::ARGS_OUTSIDE_TOOL, Some("a"));
        // In an agent, only its tools' configs see the model's arguments.
        let agent = json!({"id": "a", "type": "agent", "data": {"model": "m", "instructions": "{{ args.x }}", "input": "hi",
            "tools": [{"name": "t", "type": "http", "method": "GET", "url": "https://x.example/{{ args.x }}"}]}});
        let diags = diagnostics(&single(agent));
        let found: Vec<_> = diags.iter().filter(|d| d.is_error()).map(|d| (d.code.as_str(), d.message.as_str())).collect();
        assert_eq!(found, [(codes::ARGS_OUTSIDE_TOOL, "`data.instructions` uses `args`, which only exists in the config of an agent's tool")]);
    }
    invalid_template => codes::INVALID_TEMPLATE, {
        err(single(json!({"id": "a", "type": "slack", "data": {"text": "hello {{ user.name }}"}})), codes::INVALID_TEMPLATE, Some("a"));
        err(single(json!({"id": "a", "type": "slack", "data": {"text": "hello {{ input.name "}})), codes::INVALID_TEMPLATE, Some("a"));
    }
    no_output => codes::NO_OUTPUT, {
        // A delay after a merge passes through two possible values; the end cannot return it.
        let c = json!({"id": "c", "type": "condition", "data": {"expression": "input.ok"}});
        let d = json!({"id": "d", "type": "delay", "data": {"seconds": 1}});
        let g = graph(
            json!([start(), c, code("x"), code("y"), d, end("done")]),
            json!([e("start", "c"), eh("c", "true", "x"), eh("c", "false", "y"), e("x", "d"), e("y", "d"), e("d", "done")]),
        );
        err(g, codes::NO_OUTPUT, Some("done"));
    }
    invalid_parent => codes::INVALID_PARENT, {
        let b = json!({"id": "b", "type": "code", "parentId": "a", "data": {"expression": "1"}});
        let g = graph(json!([start(), code("a"), b, end("done")]), json!([e("start", "a"), e("a", "done")]));
        err(g, codes::INVALID_PARENT, Some("b"));
    }
    cross_scope_edge => codes::CROSS_SCOPE_EDGE, {
        let l = json!({"id": "l", "type": "loop", "data": {"items": "{{ input.xs }}"}});
        let b = json!({"id": "b", "type": "code", "parentId": "l", "data": {"expression": "item"}});
        let g = graph(json!([start(), l, b, end("done")]), json!([e("start", "l"), e("l", "done"), e("b", "done")]));
        err(g, codes::CROSS_SCOPE_EDGE, Some("b"));
    }
    empty_loop_body => codes::EMPTY_LOOP_BODY, {
        err(single(json!({"id": "l", "type": "loop", "data": {"items": "{{ input.xs }}"}})), codes::EMPTY_LOOP_BODY, Some("l"));
    }
    loop_body_entries => codes::LOOP_BODY_ENTRIES, {
        let l = json!({"id": "l", "type": "loop", "data": {"items": "{{ input.xs }}"}});
        let b1 = json!({"id": "b1", "type": "code", "parentId": "l", "data": {"expression": "item"}});
        let b2 = json!({"id": "b2", "type": "code", "parentId": "l", "data": {"expression": "item"}});
        let b3 = json!({"id": "b3", "type": "code", "parentId": "l", "data": {"expression": "item"}});
        let g = graph(json!([start(), l, b1, b2, b3, end("done")]), json!([e("start", "l"), e("l", "done"), e("b1", "b3"), e("b2", "b3")]));
        err(g, codes::LOOP_BODY_ENTRIES, Some("l"));
    }
    loop_body_exits => codes::LOOP_BODY_EXITS, {
        let l = json!({"id": "l", "type": "loop", "data": {"items": "{{ input.xs }}"}});
        let c = json!({"id": "c", "type": "condition", "parentId": "l", "data": {"expression": "item.ok"}});
        let b1 = json!({"id": "b1", "type": "code", "parentId": "l", "data": {"expression": "item"}});
        let b2 = json!({"id": "b2", "type": "code", "parentId": "l", "data": {"expression": "item"}});
        let g = graph(
            json!([start(), l, c, b1, b2, end("done")]),
            json!([e("start", "l"), e("l", "done"), eh("c", "true", "b1"), eh("c", "false", "b2")]),
        );
        err(g, codes::LOOP_BODY_EXITS, Some("l"));
    }
    invalid_error_handling => codes::INVALID_ERROR_HANDLING, {
        let d = json!({"id": "d", "type": "delay", "data": {"seconds": 1}});
        let g = graph(json!([start(), d, end("done"), end("oops")]), json!([e("start", "d"), e("d", "done"), eh("d", "error", "oops")]));
        err(g, codes::INVALID_ERROR_HANDLING, Some("d"));
        let a = json!({"id": "a", "type": "code", "on_error": "continue", "data": {"expression": "1"}});
        let g = graph(json!([start(), a, end("done"), end("oops")]), json!([e("start", "a"), e("a", "done"), eh("a", "error", "oops")]));
        err(g, codes::INVALID_ERROR_HANDLING, Some("a"));
    }
    invalid_settings => codes::INVALID_SETTINGS, {
        let mut g = single(code("a"));
        g["settings"] = json!({"type": "auto", "timeout_seconds": 0});
        err(g, codes::INVALID_SETTINGS, None);
    }
    invalid_trigger => codes::INVALID_TRIGGER, {
        let mut g = single(code("a"));
        g["triggers"] = json!([{"type": "schedule"}]);
        err(g, codes::INVALID_TRIGGER, None);
    }
    express_incompatible => codes::EXPRESS_INCOMPATIBLE, {
        let mut g = single(json!({"id": "ok", "type": "approval", "data": {"message": "ship it?"}}));
        g["settings"] = json!({"type": "express"});
        err(g, codes::EXPRESS_INCOMPATIBLE, None);
    }
    missing_function => codes::MISSING_FUNCTION, {
        let g = single(json!({"id": "a", "type": "http", "data": {"method": "GET", "url": "https://x"}}));
        let graph = compiler::parse(&g.to_string()).unwrap();
        let mut options = CompileOptions::default();
        options.functions.0.remove("http");
        let d = compiler::compile(&graph, &options).unwrap_err();
        expect(&d, codes::MISSING_FUNCTION, Severity::Error, Some("a"));
    }
    too_large => codes::TOO_LARGE, {
        // 300 code nodes of 4 KB each: over the 1 MB definition quota.
        let source = "return 1;".repeat(450);
        let mut nodes = vec![start()];
        let mut edges = vec![];
        let mut prev = "start".to_owned();
        for i in 0..300 {
            let id = format!("c{i}");
            nodes.push(json!({"id": id, "type": "code", "data": {"source": source}}));
            edges.push(e(&prev, &id));
            prev = id;
        }
        nodes.push(end("done"));
        edges.push(e(&prev, "done"));
        err(graph(Value::Array(nodes), Value::Array(edges)), codes::TOO_LARGE, None);

        // Loops nested 40 deep: refused before lowering recurses that far.
        let mut nodes = vec![start()];
        for i in 0..40 {
            let mut l = json!({"id": format!("l{i}"), "type": "loop", "data": {"items": "{{ input.xs }}"}});
            if i > 0 {
                l["parentId"] = json!(format!("l{}", i - 1));
            }
            nodes.push(l);
        }
        nodes.push(end("done"));
        let g = graph(Value::Array(nodes), json!([e("start", "l0"), e("l0", "done")]));
        err(g, codes::TOO_LARGE, Some("l33"));
    }
}

#[test]
fn every_code_has_a_test() {
    for code in codes::ALL {
        assert!(TESTED.contains(code), "no test for diagnostic code {code}");
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let g = graph(
        json!([
            {"id": "a", "type": "http", "data": {"method": "GET"}},
            {"id": "b.c", "type": "code", "data": {"expression": "1"}},
            {"id": "x", "type": "nope", "data": {}}
        ]),
        json!([e("a", "zzz")]),
    );
    let d = diagnostics(&g);
    for code in [
        codes::MISSING_START,
        codes::MISSING_FIELD,
        codes::INVALID_NODE_ID,
        codes::UNKNOWN_NODE_TYPE,
        codes::DANGLING_EDGE,
    ] {
        assert!(d.iter().any(|d| d.code == code), "{code} missing from {d:#?}");
    }
}

#[test]
fn diagnostics_serialize_to_the_documented_shape() {
    let d = Diagnostic::error(codes::DEAD_END, "leads nowhere").at_node("a");
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        json!({"severity": "error", "code": "dead-end", "message": "leads nowhere", "node": "a"})
    );
}
