//! Fault: `weft serve` killed (SIGKILL) while executions run, then restarted on the same
//! database. The executions fail visibly with `Weft.EngineRestarted` (none is lost or left
//! RUNNING), their event streams end with `execution_failed`, and redrive finishes them.

mod executions_common;

use std::time::Duration;

use executions_common::{Api, Serve, follow, kinds, services};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_survive_a_killed_server_visibly_and_can_be_redriven() {
    let Some((db, redis)) = services().await else { return };
    let graph = json!({"format": "weft/v1", "id": "nap", "name": "Nap",
        "nodes": [
            {"id": "start", "type": "start", "data": {}},
            {"id": "nap", "type": "delay", "data": {"seconds": 3}},
            {"id": "after", "type": "code", "data": {"source": "return { n: input.n, woke: true };"}},
            {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "nap"}, {"id": "e2", "source": "nap", "target": "after"},
                  {"id": "e3", "source": "after", "target": "done"}]});
    let mut first = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&first.base, "acme");
    let workflow = api.publish(graph).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(api.start(&workflow, json!({"n": n})).await);
    }
    // Every execution is inside its delay when the server dies.
    for id in &ids {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let e = api.get(&format!("/v1/executions/{id}")).await;
            let napping = e["nodes"].as_array().is_some_and(|n| n.iter().any(|n| n["node_id"] == "nap"));
            if napping {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{id} never reached the delay: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    first.child.kill().expect("SIGKILL weft serve");
    let _ = first.child.wait();

    let second = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&second.base, "acme");
    for id in &ids {
        let e = api.wait_status(id, Duration::from_secs(20), |s| s != "RUNNING").await;
        assert_eq!(e["status"], "FAILED", "{e}");
        assert_eq!(e["error"], "Weft.EngineRestarted", "{e}");
        assert!(e["cause"].as_str().is_some_and(|c| !c.is_empty()));
        let (events, end) = follow(&api, id, Duration::from_secs(20)).await;
        assert_eq!(end["status"], "FAILED");
        assert_eq!(kinds(&events).last().map(|(k, _)| k.as_str()), Some("execution_failed"));
    }
    let listed = api.get(&format!("/v1/executions?workflow_id={workflow}&status=FAILED")).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(ids.len()), "none lost: {listed}");

    for id in &ids {
        let (status, body) = api.call(Method::POST, &format!("/v1/executions/{id}/redrive"), None).await;
        assert_eq!(status, 200, "{body}");
    }
    for (n, id) in ids.iter().enumerate() {
        let (events, end) = follow(&api, id, Duration::from_secs(60)).await;
        assert_eq!(end["status"], "SUCCEEDED", "{end}");
        assert_eq!(end["output"], json!({"n": n, "woke": true}));
        let k: Vec<String> = kinds(&events).into_iter().map(|(k, n)| format!("{k}:{n}")).collect();
        let at = k.iter().position(|x| x == "execution_redriven:").expect("redriven");
        assert_eq!(k[at + 1], "node_started:nap", "redrive resumes at the interrupted node: {k:?}");
        let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    }
    let listed = api.get(&format!("/v1/executions?workflow_id={workflow}&status=SUCCEEDED")).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(ids.len()));
}
