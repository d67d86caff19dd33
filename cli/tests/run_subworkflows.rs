//! `weft run --workflows DIR`: `workflow` nodes run the graphs of DIR (found by their `id`) as
//! child executions, through the real binary. A child's output is `nodes.<id>` in the parent; a
//! failed child fails the parent with the child's own error (or reaches an error edge as
//! `{error, cause, execution_arn}`); circles, unknown children and a missing `--workflows` are
//! refused before anything runs (exit 2).

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

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

/// start → `middle` (in order) → end with `output`.
fn linear(id: &str, middle: Vec<Value>, output: Value) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "start", "data": {}})];
    nodes.extend(middle);
    nodes.push(json!({"id": "done", "type": "end", "data": {"output": output}}));
    let ids: Vec<String> = nodes.iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    let edges: Vec<(&str, &str, Option<&str>)> = ids.windows(2).map(|w| (w[0].as_str(), w[1].as_str(), None)).collect();
    graph(id, nodes, &edges)
}

fn workflow_node(id: &str, workflow_id: &str, input: Value) -> Value {
    json!({"id": id, "type": "workflow", "data": {"workflow_id": workflow_id, "input": input}})
}

/// `double`: `{n}` → `{x: 2n}`.
fn double() -> Value {
    linear(
        "double",
        vec![json!({"id": "times2", "type": "code", "data": {"expression": "input.n * 2"}})],
        json!({"x": "{{ nodes.times2 }}"}),
    )
}

/// `quadruple`: `{n}` → `{x: 4n}`, by running `double` twice.
fn quadruple() -> Value {
    linear(
        "quadruple",
        vec![
            workflow_node("first", "double", json!({"n": "{{ input.n }}"})),
            workflow_node("second", "double", json!({"n": "{{ nodes.first.x }}"})),
        ],
        json!({"x": "{{ nodes.second.x }}"}),
    )
}

/// `explode`: a code node that throws `Error: boom <n>` (`Code.Error`).
fn explode() -> Value {
    linear(
        "explode",
        vec![json!({"id": "throw", "type": "code", "data": {"source": "throw new Error('boom ' + input.n);"}})],
        json!("unreachable"),
    )
}

/// A fresh folder (per test) holding `graphs` as `<id>.json`, and the parent graph beside it.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(test: &str, graphs: &[Value]) -> Fixture {
        let dir = std::env::temp_dir().join(format!("weft-subworkflows-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("workflows")).unwrap();
        for g in graphs {
            let id = g["id"].as_str().unwrap();
            std::fs::write(dir.join("workflows").join(format!("{id}.json")), g.to_string()).unwrap();
        }
        Fixture { dir }
    }

    fn workflows(&self) -> PathBuf {
        self.dir.join("workflows")
    }

    /// Runs `parent` with `input`, with `--workflows` when `with_workflows`.
    fn run(&self, parent: &Value, input: Value, with_workflows: bool) -> Output {
        let path = self.dir.join("parent.json");
        std::fs::write(&path, parent.to_string()).unwrap();
        weft(&path, input, with_workflows.then(|| self.workflows()).as_deref())
    }

    fn run_ok(&self, parent: &Value, input: Value) -> Value {
        let out = self.run(parent, input.clone(), true);
        assert_eq!(out.status.code(), Some(0), "on {input}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn weft(graph: &Path, input: Value, workflows: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.arg("run").arg(graph).args(["--quiet", "--input", &input.to_string()]);
    if let Some(dir) = workflows {
        cmd.arg("--workflows").arg(dir);
    }
    cmd.output().expect("run weft")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_childs_output_is_the_workflow_nodes_value_three_levels_deep() {
    let f = Fixture::new("levels", &[double(), quadruple()]);
    // Parent → double.
    let parent = linear(
        "parent",
        vec![workflow_node("sub", "double", json!({"n": "{{ input.n }}"}))],
        json!({"result": "{{ nodes.sub.x }}", "sub": "{{ nodes.sub }}"}),
    );
    assert_eq!(f.run_ok(&parent, json!({"n": 21})), json!({"result": 42, "sub": {"x": 42}}));
    // Parent → quadruple → double (twice): three levels, the middle one calling its child twice.
    let parent = linear(
        "grandparent",
        vec![
            workflow_node("sub", "quadruple", json!({"n": "{{ input.n }}"})),
            json!({"id": "plus1", "type": "code", "data": {"expression": "nodes.sub.x + 1"}}),
        ],
        json!({"quadrupled": "{{ nodes.sub.x }}", "plus1": "{{ nodes.plus1 }}"}),
    );
    assert_eq!(f.run_ok(&parent, json!({"n": 5})), json!({"quadrupled": 20, "plus1": 21}));
}

#[test]
fn a_failed_child_fails_the_parent_with_the_childs_own_error() {
    let f = Fixture::new("fails", &[explode()]);
    let parent = linear("parent", vec![workflow_node("sub", "explode", json!({"n": "{{ input.n }}"}))], json!("ok"));
    let out = f.run(&parent, json!({"n": 3}), true);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("execution FAILED at node `sub`: Code.Error\n"), "the child's error is named: {err}");
    assert!(err.contains("cause: Error: boom 3 (line 1)"), "the child's cause is shown: {err}");
    assert!(!err.contains("States.TaskFailed"), "the child's error, not the wrapper's: {err}");

    // Two levels down: the grandchild's error comes all the way up.
    let middle = linear("middle", vec![workflow_node("inner", "explode", json!({"n": 7}))], json!("ok"));
    let f = Fixture::new("fails-deep", &[explode(), middle]);
    let parent = linear("parent", vec![workflow_node("sub", "middle", json!({}))], json!("ok"));
    let out = f.run(&parent, json!({}), true);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("execution FAILED at node `sub`: Code.Error\n"), "{err}");
    assert!(err.contains("cause: Error: boom 7 (line 1)"), "{err}");
    assert!(!err.contains("States.TaskFailed"), "{err}");
}

#[test]
fn an_error_edge_gets_the_childs_error_cause_and_execution() {
    let f = Fixture::new("error-edge", &[explode(), double()]);
    let parent = graph(
        "parent",
        vec![
            json!({"id": "start", "type": "start", "data": {}}),
            json!({"id": "pick", "type": "condition", "data": {"expression": "input.fail"}}),
            workflow_node("sub", "explode", json!({"n": "{{ input.n }}"})),
            workflow_node("fine", "double", json!({"n": "{{ input.n }}"})),
            json!({"id": "handled", "type": "end", "data": {"output": {"handled": "{{ nodes.sub }}"}}}),
            json!({"id": "exploded", "type": "end", "data": {"output": "unreachable"}}),
            json!({"id": "done", "type": "end", "data": {"output": {"fine": "{{ nodes.fine }}"}}}),
        ],
        &[
            ("start", "pick", None),
            ("pick", "sub", Some("true")),
            ("pick", "fine", Some("false")),
            ("sub", "exploded", None),
            ("sub", "handled", Some("error")),
            ("fine", "done", None),
        ],
    );
    let out = f.run_ok(&parent, json!({"n": 4, "fail": true}));
    let handled = &out["handled"];
    assert_eq!(handled["error"], json!("Code.Error"), "{out}");
    let cause = handled["cause"].as_str().unwrap_or_else(|| panic!("cause is a string: {out}"));
    let cause: Value = serde_json::from_str(cause).unwrap_or_else(|e| panic!("cause is JSON ({e}): {cause}"));
    assert_eq!(cause["errorType"], json!("Code.Error"), "{out}");
    assert!(cause["errorMessage"].as_str().is_some_and(|m| m.contains("boom 4")), "{out}");
    let arn = handled["execution_arn"].as_str().unwrap_or_else(|| panic!("execution_arn is a string: {out}"));
    assert!(arn.starts_with("arn:aws:states:") && arn.contains(":execution:"), "{arn}");
    assert!(arn.contains("explode"), "the child's execution: {arn}");
    assert_eq!(handled.as_object().unwrap().len(), 3, "exactly error, cause, execution_arn: {out}");
    // The same graph whose child succeeds goes on as usual.
    assert_eq!(f.run_ok(&parent, json!({"n": 4, "fail": false})), json!({"fine": {"x": 8}}));
}

#[test]
fn a_workflow_node_in_a_loop_runs_the_child_per_item() {
    let f = Fixture::new("loop", &[double(), quadruple()]);
    let parent = graph(
        "parent",
        vec![
            json!({"id": "start", "type": "start", "data": {}}),
            json!({"id": "each", "type": "loop", "data": {"items": "{{ input.xs }}", "concurrency": 2}}),
            json!({"id": "sub", "type": "workflow", "parentId": "each",
                   "data": {"workflow_id": "quadruple", "input": {"n": "{{ item }}"}}}),
            json!({"id": "done", "type": "end", "data": {"output": "{{ nodes.each }}"}}),
        ],
        &[("start", "each", None), ("each", "done", None)],
    );
    assert_eq!(
        f.run_ok(&parent, json!({"xs": [1, 2, 3, -4, 0.5]})),
        json!([{"x": 4}, {"x": 8}, {"x": 12}, {"x": -16}, {"x": 2}])
    );
    assert_eq!(f.run_ok(&parent, json!({"xs": []})), json!([]));
}

#[test]
fn circles_unknown_children_and_a_missing_workflows_dir_are_refused() {
    let calls = |id: &str, child: &str| linear(id, vec![workflow_node("call", child, json!({}))], json!("ok"));
    // A → B → A: the parent is A itself (also in DIR), and B is a file in DIR.
    let f = Fixture::new("circle", &[calls("a", "b"), calls("b", "a")]);
    let out = f.run(&calls("a", "b"), json!({}), true);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("a → b → a"), "the path is named: {err}");
    assert!(out.stdout.is_empty());

    // A longer circle below the parent: parent → x → y → z → x.
    let f = Fixture::new("circle-below", &[calls("x", "y"), calls("y", "z"), calls("z", "x")]);
    let out = f.run(&calls("parent", "x"), json!({}), true);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("x → y → z → x"), "the path is named: {err}");

    // A workflow_id that is not among DIR's graphs names the node and the id.
    let f = Fixture::new("unknown", &[double()]);
    let parent = linear("parent", vec![workflow_node("lookup", "nowhere", json!({}))], json!("ok"));
    let out = f.run(&parent, json!({}), true);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`lookup`") && err.contains("`nowhere`"), "{err}");

    // No --workflows at all: the node is named too.
    let parent = linear("parent", vec![workflow_node("lookup", "double", json!({"n": 1}))], json!("ok"));
    let out = f.run(&parent, json!({}), false);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`lookup`") && err.contains("`double`"), "{err}");
    assert!(err.contains("--workflows"), "says how to give the children: {err}");
}
