//! Publishing through `aws-sdk-sfn` to a real Step Functions endpoint: Weft's own
//! (`sfn-server`, AWS JSON 1.0 over HTTP on 127.0.0.1), exactly as the api talks to AWS.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

const ROLE: &str = "arn:aws:iam::123456789012:role/weft";

#[tokio::test]
async fn publish_creates_versions_and_routes_the_alias() {
    // The endpoint: sfn-server with in-memory persistence (no Tasks run in this test).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let store: Arc<dyn sfn_server::SfnStore> = Arc::new(sfn_server::MemoryStore::new());
    let sfn = sfn_server::SfnState::open(store, engine::EngineConfig::new(Arc::new(engine::task::NoInvoker)))
        .await
        .expect("sfn state");
    let credentials = sfn_server::Credentials::generate();
    let verifier = sfn_server::Verifier::new([credentials.clone()]);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, sfn_server::router(sfn, verifier)).await;
    });

    let client = sfn_server::sdk::local_client(&url, &credentials);
    let publisher = fn_api::publish::SfnPublisher::new(client.clone(), ROLE.to_owned());
    let Some(app) = setup_with(Options { publisher: Arc::new(publisher), ..Options::default() }).await else {
        server.abort();
        return;
    };
    let t = token("acme", "editor");
    let id = app.create("acme", graph("Published")).await;

    let v1 = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&t), None).await;
    assert_eq!(v1.status, StatusCode::CREATED, "{}", v1.body);
    let sm_arn = v1.body["state_machine_arn"].as_str().expect("state machine arn").to_owned();
    assert!(sm_arn.ends_with(&format!(":stateMachine:weft-{id}")), "{sm_arn}");
    let v1_arn = v1.body["state_machine_version_arn"].as_str().expect("version arn").to_owned();

    let mut g2 = graph("Published");
    g2["nodes"][1]["data"]["output"] = json!("{{ input.changed }}");
    app.call("PUT", &format!("/v1/workflows/{id}"), Some(&t), Some(json!({"graph": g2}))).await;
    let v2 = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&t), None).await;
    assert_eq!(v2.status, StatusCode::CREATED, "{}", v2.body);
    assert_eq!(v2.body["state_machine_arn"], sm_arn.as_str(), "the same state machine is updated");
    let v2_arn = v2.body["state_machine_version_arn"].as_str().expect("version arn").to_owned();
    assert_ne!(v1_arn, v2_arn);

    // What Step Functions holds, read back with the SDK.
    let described = client.describe_state_machine().state_machine_arn(&sm_arn).send().await.expect("describe");
    let definition: serde_json::Value = serde_json::from_str(described.definition()).expect("json");
    let stored = app.call("GET", &format!("/v1/workflows/{id}/versions/2"), Some(&t), None).await;
    assert_eq!(definition, stored.body["asl"]);
    // Running the alias runs version 2 (whose output is `input.changed`).
    let alias_arn = format!("{sm_arn}:live");
    assert_eq!(run(&client, &alias_arn).await, json!("two"));

    // Roll back: the alias now routes to version 1.
    let r = app.call("PUT", &format!("/v1/workflows/{id}/alias"), Some(&t), Some(json!({"version": 1}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["alias_arn"], alias_arn.as_str());
    assert_eq!(run(&client, &alias_arn).await, json!("one"), "the alias runs version 1 again");
    assert_eq!(run(&client, &v2_arn).await, json!("two"), "version 2 itself is unchanged");
    server.abort();
}

/// Starts an execution of `arn` with a fixed input and waits for its output.
async fn run(client: &aws_sdk_sfn::Client, arn: &str) -> serde_json::Value {
    let started = client
        .start_execution()
        .state_machine_arn(arn)
        .input(json!({"name": "one", "changed": "two"}).to_string())
        .send()
        .await
        .expect("start");
    // Room for a loaded machine; the execution itself takes milliseconds.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let d = client.describe_execution().execution_arn(started.execution_arn()).send().await.expect("describe");
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
            assert_eq!(d.status(), &aws_sdk_sfn::types::ExecutionStatus::Succeeded, "{d:?}");
            return serde_json::from_str(d.output().unwrap_or("null")).expect("output");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the execution of {arn} did not finish");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_502_and_writes_nothing() {
    // A port nothing listens on (bound, then closed).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let publisher = fn_api::publish::SfnPublisher::from_config(Some(&url), None, ROLE.to_owned()).await;
    let Some(app) = setup_with(Options { publisher: Arc::new(publisher), ..Options::default() }).await else { return };
    let t = token("acme", "editor");
    let id = app.create("acme", graph("Unpublished")).await;
    let r = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "publish_unavailable");
    assert!(!r.body.to_string().contains("127.0.0.1"), "no internals in the error: {}", r.body);
    assert_eq!(app.count_rows("workflow_versions").await, 0);
}
