//! Map (`loop`) and Parallel (`parallel`/`join`) nodes through the API of a real `weft serve`:
//! the node-level events of the loop, the parallel and their children, in the SSE stream and in
//! the execution's `nodes` summary.

mod executions_common;

use std::time::Duration;

use executions_common::{Api, Serve, follow, kinds, services};
use serde_json::{Value, json};

fn graph(concurrency: Option<u64>) -> Value {
    let mut each = json!({"id": "each", "type": "loop", "data": {"items": "{{ input.items }}"}});
    if let Some(n) = concurrency {
        each["data"]["concurrency"] = json!(n);
    }
    json!({"format": "weft/v1", "id": "fan", "name": "Fan",
        "nodes": [
            {"id": "start", "type": "start", "data": {}},
            each,
            {"id": "double", "type": "code", "parentId": "each", "data": {"source": "return item * 2;"}},
            {"id": "fork", "type": "parallel", "data": {}},
            {"id": "sum", "type": "code", "data": {"source": "return nodes.each.reduce((a, b) => a + b, 0);"}},
            {"id": "count", "type": "code", "data": {"source": "return nodes.each.length;"}},
            {"id": "meet", "type": "join", "data": {}},
            {"id": "done", "type": "end", "data": {"output": {"doubled": "{{ nodes.each }}", "sum": "{{ nodes.sum }}", "count": "{{ nodes.count }}"}}}],
        "edges": [
            {"id": "e1", "source": "start", "target": "each"},
            {"id": "e2", "source": "each", "target": "fork"},
            {"id": "e3", "source": "fork", "target": "sum"},
            {"id": "e4", "source": "fork", "target": "count"},
            {"id": "e5", "source": "sum", "target": "meet"},
            {"id": "e6", "source": "count", "target": "meet"},
            {"id": "e7", "source": "meet", "target": "done"}]})
}

/// Runs `graph` with `input` on a fresh `weft serve`; returns the events (SSE), the `end` event
/// and the execution (`GET`, with its `nodes` summary).
async fn run(graph: Value, input: Value) -> Option<(Vec<Value>, Value, Value)> {
    let (db, redis) = services().await?;
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let workflow = api.publish(graph).await;
    let execution = api.start(&workflow, input).await;
    let (events, end) = follow(&api, &execution, Duration::from_secs(120)).await;
    let got = api.get(&format!("/v1/executions/{execution}")).await;
    Some((events, end, got))
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

/// The position of the event `(kind, node)`; panics if there is none.
fn position(events: &[Value], kind: &str, node: &str) -> usize {
    events
        .iter()
        .position(|e| e["type"] == kind && e["node_id"] == node)
        .unwrap_or_else(|| panic!("no {kind} of {node} in {:?}", kinds(events)))
}

fn summary<'a>(execution: &'a Value, node: &str) -> &'a Value {
    let nodes = execution["nodes"].as_array().expect("nodes");
    nodes.iter().find(|n| n["node_id"] == node).unwrap_or_else(|| panic!("no {node} in {nodes:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_iterations_and_the_parallel_are_node_events() {
    let Some((events, end, execution)) = run(graph(Some(1)), json!({"items": [1, 2, 3]})).await else { return };
    assert_eq!(end["status"], "SUCCEEDED", "{end}");
    assert_eq!(end["output"], json!({"doubled": [2, 4, 6], "sum": 12, "count": 3}));
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>(), "ids are dense and ordered");

    // The loop, one item at a time: the Map node brackets one start and one success of its body
    // node per item, in item order, each with its item and index.
    let each_done = position(&events, "node_succeeded", "each");
    assert_eq!(
        kinds(&events[..=each_done]),
        pairs(&[
            ("execution_started", ""),
            ("node_started", "start"),
            ("node_succeeded", "start"),
            ("node_started", "each"),
            ("node_started", "double"),
            ("node_succeeded", "double"),
            ("node_started", "double"),
            ("node_succeeded", "double"),
            ("node_started", "double"),
            ("node_succeeded", "double"),
            ("node_succeeded", "each"),
        ])
    );
    assert_eq!((&events[3]["payload"]["state"], &events[3]["payload"]["state_type"]), (&json!("each"), &json!("Map")));
    for (i, item) in [1, 2, 3].into_iter().enumerate() {
        let (started, succeeded) = (&events[4 + 2 * i]["payload"], &events[5 + 2 * i]["payload"]);
        assert_eq!((&started["input"]["item"], &started["input"]["index"]), (&json!(item), &json!(i)), "{started}");
        assert_eq!(succeeded["output"]["nodes"]["double"], json!({"value": item * 2}), "{succeeded}");
    }
    assert_eq!(events[each_done]["payload"]["output"]["nodes"]["each"], json!([2, 4, 6]));

    // The parallel brackets its branches' events, which are only sum's and count's; its success
    // carries both branches' outputs merged.
    let fork_started = position(&events, "node_started", "fork");
    let fork_done = position(&events, "node_succeeded", "fork");
    assert_eq!(fork_started, each_done + 1);
    assert_eq!(events[fork_started]["payload"]["state_type"], "Parallel");
    let inside = &events[fork_started + 1..fork_done];
    assert!(inside.iter().all(|e| e["node_id"] == "sum" || e["node_id"] == "count"), "{:?}", kinds(inside));
    for node in ["sum", "count"] {
        let mine: Vec<(String, String)> = kinds(inside).into_iter().filter(|(_, n)| n == node).collect();
        assert_eq!(mine, pairs(&[("node_started", node), ("node_succeeded", node)]), "{:?}", kinds(inside));
    }
    assert_eq!(events[fork_done]["payload"]["output"]["nodes"], json!({"each": [2, 4, 6], "sum": 12, "count": 3}));
    assert_eq!(
        kinds(&events[fork_done + 1..]),
        pairs(&[
            ("node_started", "meet"),
            ("node_succeeded", "meet"),
            ("node_started", "done"),
            ("node_succeeded", "done"),
            ("execution_succeeded", ""),
        ])
    );

    // The summary: every node, in order of first appearance, succeeded; the loop, the parallel
    // and its branch nodes ran once each.
    let order: Vec<&str> =
        execution["nodes"].as_array().expect("nodes").iter().map(|n| n["node_id"].as_str().unwrap_or("")).collect();
    assert_eq!(&order[..4], ["start", "each", "double", "fork"]);
    let mut branches = order[4..6].to_vec();
    branches.sort_unstable();
    assert_eq!((branches, &order[6..]), (vec!["count", "sum"], &["meet", "done"][..]));
    for node in &order {
        assert_eq!(summary(&execution, node)["status"], "SUCCEEDED", "{node}: {}", execution["nodes"]);
    }
    for node in ["each", "fork", "sum", "count", "meet"] {
        assert_eq!(summary(&execution, node)["attempts"], 1, "{node}: {}", execution["nodes"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_loop_iterations_each_start_and_succeed_once() {
    let items: Vec<i64> = (1..=6).collect();
    let Some((events, end, execution)) = run(graph(None), json!({"items": items})).await else { return };
    assert_eq!(end["status"], "SUCCEEDED", "{end}");
    assert_eq!(end["output"]["doubled"], json!(items.iter().map(|i| i * 2).collect::<Vec<_>>()));
    let (each_started, each_done) =
        (position(&events, "node_started", "each"), position(&events, "node_succeeded", "each"));
    let body = &events[each_started + 1..each_done];
    // Iterations run at once, so their events interleave; each item starts once and succeeds once.
    let mut started: Vec<(i64, i64)> = body
        .iter()
        .filter(|e| e["type"] == "node_started")
        .map(|e| {
            (
                e["payload"]["input"]["index"].as_i64().unwrap_or(-1),
                e["payload"]["input"]["item"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    started.sort_unstable();
    assert_eq!(started, items.iter().enumerate().map(|(i, item)| (i as i64, *item)).collect::<Vec<_>>());
    let mut outputs: Vec<i64> = body
        .iter()
        .filter(|e| e["type"] == "node_succeeded")
        .map(|e| e["payload"]["output"]["nodes"]["double"]["value"].as_i64().unwrap_or(-1))
        .collect();
    outputs.sort_unstable();
    assert_eq!(outputs, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    assert!(body.iter().all(|e| e["node_id"] == "double"), "{:?}", kinds(body));
    assert_eq!(body.len(), 2 * items.len(), "{:?}", kinds(body));
    assert_eq!(summary(&execution, "double")["status"], "SUCCEEDED");
    assert_eq!(summary(&execution, "each")["attempts"], 1);
}

/// Parallel branches interleave: `wait` enters its Wait state while `work`'s Task runs (`work` is
/// listed last, and the engine enters the last branch first), so `work.output` follows another
/// branch's state in the history. The helper state still belongs to `work`'s opening: each branch
/// node starts and succeeds once (history translation follows branches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_parallel_branch_node_starts_and_succeeds_once() {
    let graph = json!({"format": "weft/v1", "id": "branches", "name": "Branches",
        "nodes": [
            {"id": "start", "type": "start", "data": {}},
            {"id": "fork", "type": "parallel", "data": {}},
            {"id": "work", "type": "code", "data": {"source": "return 40 + 2;"}},
            {"id": "wait", "type": "delay", "data": {"seconds": 1}},
            {"id": "meet", "type": "join", "data": {}},
            {"id": "done", "type": "end", "data": {"output": "{{ nodes.work }}"}}],
        "edges": [
            {"id": "e1", "source": "start", "target": "fork"},
            {"id": "e2", "source": "fork", "target": "wait"},
            {"id": "e3", "source": "fork", "target": "work"},
            {"id": "e4", "source": "work", "target": "meet"},
            {"id": "e5", "source": "wait", "target": "meet"},
            {"id": "e6", "source": "meet", "target": "done"}]});
    let Some((events, end, execution)) = run(graph, json!({})).await else { return };
    assert_eq!((&end["status"], &end["output"]), (&json!("SUCCEEDED"), &json!(42)), "{end}");
    let inside = &events[position(&events, "node_started", "fork") + 1..position(&events, "node_succeeded", "fork")];
    for node in ["work", "wait"] {
        let mine: Vec<(String, String)> = kinds(inside).into_iter().filter(|(_, n)| n == node).collect();
        assert_eq!(mine, pairs(&[("node_started", node), ("node_succeeded", node)]), "{:?}", kinds(inside));
        assert_eq!(summary(&execution, node)["attempts"], 1, "{node}: {}", execution["nodes"]);
    }
}
