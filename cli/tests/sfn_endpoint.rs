//! `weft serve`'s Step Functions endpoint as a real process: the API listener does not speak the
//! Step Functions protocol, and the endpoint refuses requests without a valid SigV4 signature,
//! while the API (which signs) publishes and runs workflows through it.

mod executions_common;

use std::time::Duration;

use executions_common::{Api, Serve, services};
use serde_json::json;

fn graph() -> serde_json::Value {
    json!({"format": "weft/v1", "id": "twice", "name": "Twice",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "twice", "type": "code", "data": {"expression": "2 * 21"}},
                  {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "twice"},
                  {"id": "e2", "source": "twice", "target": "done"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_port_does_not_speak_step_functions() {
    let Some((db, redis)) = services().await else { return };
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let workflow = api.publish(graph()).await;
    let execution = api.start(&workflow, json!({})).await;
    let done = api.wait_status(&execution, Duration::from_secs(60), |s| s != "RUNNING" && s != "PENDING").await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");

    // A Step Functions request (with a SigV4-looking header) on the API's own listener.
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/", serve.base))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "AWSStepFunctions.ListStateMachines")
        .header("x-amz-date", "20261201T000000Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=weft/20261201/us-east-1/states/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00",
        )
        .body("{}")
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let body = res.text().await.expect("body");
    assert!(status == 404 || status == 405, "the API port answered the Step Functions protocol: {status} {body}");
    assert!(!body.contains("stateMachines"), "{body}");
}
