//! Approvals on a real `weft serve`: the approval function runs in-process with the server's
//! database, the execution waits, and `POST /v1/approvals/{id}` resumes it.

mod executions_common;

use std::time::{Duration, Instant};

use executions_common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn graph() -> Value {
    json!({"format": "weft/v1", "id": "review", "name": "needs review",
           "nodes": [{"id": "start", "type": "start", "data": {}},
                     {"id": "review", "type": "approval", "data": {"message": "Ship {{ input.item }}?", "timeout_seconds": 120}},
                     {"id": "done", "type": "end", "data": {"output": "{{ nodes.review }}"}}],
           "edges": [{"id": "e1", "source": "start", "target": "review"},
                     {"id": "e2", "source": "review", "target": "done"}]})
}

async fn pending(api: &Api, execution: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = api.get("/v1/approvals").await;
        if let Some(a) = list["items"].as_array().into_iter().flatten().find(|a| a["execution_id"] == execution) {
            return a.clone();
        }
        assert!(Instant::now() < deadline, "no approval for {execution}: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn approve_and_reject_on_weft_serve() {
    let Some((db, redis)) = services().await else { return };
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let wf = api.publish(graph()).await;

    let yes = api.start(&wf, json!({"item": "boxes"})).await;
    let no = api.start(&wf, json!({"item": "crates"})).await;
    let a = pending(&api, &yes).await;
    assert_eq!(a["message"], "Ship boxes?");
    let b = pending(&api, &no).await;

    let (status, body) = api
        .call(
            Method::POST,
            &format!("/v1/approvals/{}", a["id"].as_str().expect("id")),
            Some(json!({"decision": "approve", "output": {"ok": true}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/v1/approvals/{}", b["id"].as_str().expect("id")),
            Some(json!({"decision": "reject", "comment": "not today"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let done = api.wait_status(&yes, Duration::from_secs(30), |s| s != "RUNNING" && s != "PENDING").await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], json!({"ok": true}));
    let failed = api.wait_status(&no, Duration::from_secs(30), |s| s != "RUNNING" && s != "PENDING").await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"], "Approval.Rejected");
    assert_eq!(failed["cause"], "not today");
}
