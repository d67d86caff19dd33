//! `POST /v1/events` and the dead-letter admin routes: in-process delivery (as `weft serve` runs
//! it) against real Postgres and the Step Functions endpoint, and SQS delivery against a real SQS
//! (LocalStack's, at `WEFT_TEST_AWS_ENDPOINT_URL`). Both scope everything to the caller's tenant.

#![allow(clippy::unwrap_used)]

mod common;
mod trig_support;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use trig_support::*;

fn on(event: &str) -> Value {
    let mut g = graph("on event");
    g["triggers"] = json!([{"type": "queue", "event": event}]);
    g
}

#[tokio::test]
async fn events_start_the_callers_matching_workflows_only() {
    let Some(env) = env().await else { return };
    let mine = env.publish("acme", on("order.created")).await;
    let theirs = env.publish("beta", on("order.created")).await;
    let editor = token("acme", "editor");

    let r = env
        .app
        .call("POST", "/v1/events", Some(&editor), Some(json!({"event": "order.created", "payload": {"name": "o-1"}})))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!((r.body["event"].clone(), r.body["delivery"].clone()), (json!("order.created"), json!("in_process")));
    let started = r.body["executions"].as_array().unwrap();
    assert_eq!(started.len(), 1, "{}", r.body);
    assert_eq!(started[0]["workflow_id"], mine.as_str());
    let done = env.finish("acme", started[0]["execution_id"].as_str().unwrap()).await;
    assert_eq!((done["status"].clone(), done["output"].clone()), (json!("SUCCEEDED"), json!("o-1")));
    let theirs_runs: i64 = sqlx::query_scalar("SELECT count(*) FROM executions WHERE workflow_id = $1::uuid")
        .bind(&theirs)
        .fetch_one(env.app.state.store().pool())
        .await
        .unwrap();
    assert_eq!(theirs_runs, 0, "another tenant's workflow never starts");

    // Nothing listens: accepted, nothing started.
    let r = env.app.call("POST", "/v1/events", Some(&editor), Some(json!({"event": "nobody.cares"}))).await;
    assert_eq!((r.status, r.body["executions"].clone()), (StatusCode::ACCEPTED, json!([])));
    // Bad requests name the field; viewers may not send events.
    for (body, status) in [
        (json!({"event": ""}), StatusCode::BAD_REQUEST),
        (json!({"event": "x\u{0}y"}), StatusCode::BAD_REQUEST),
        (json!({"payload": {}}), StatusCode::BAD_REQUEST),
        (json!({"event": "x", "tenant": "beta"}), StatusCode::BAD_REQUEST),
        (json!({"event": "x", "payload": "y".repeat(300 * 1024)}), StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let r = env.app.call("POST", "/v1/events", Some(&editor), Some(body.clone())).await;
        assert_eq!(r.status, status, "{body:.80}: {}", r.body);
    }
    let r = env.app.call("POST", "/v1/events", Some(&token("acme", "viewer")), Some(json!({"event": "x"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // In-process delivery has no dead-letter queue.
    let admin = token("acme", "admin");
    let r = env.app.call("GET", "/v1/admin/dead-letters", Some(&admin), None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("no_dead_letter_queue")),
        "{}",
        r.body
    );
    let r = env.app.call("GET", "/v1/admin/dead-letters", Some(&editor), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// An SQS client for LocalStack, and a fresh queue with a dead-letter queue behind it.
async fn sqs(endpoint: &str) -> (aws_sdk_sqs::Client, String, String) {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "test"))
        .build();
    let client = aws_sdk_sqs::Client::from_conf(config);
    let name = format!("weft-test-{}", uuid::Uuid::new_v4().simple());
    let dlq = client.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap().queue_url.unwrap();
    let queue = client.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    (client, queue, dlq)
}

async fn receive_all(client: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut out = Vec::new();
    for _ in 0..5 {
        let got = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let batch = got.messages.unwrap_or_default();
        if batch.is_empty() && !out.is_empty() {
            break;
        }
        out.extend(batch);
    }
    out
}

#[tokio::test]
async fn on_sqs_events_are_queued_and_dead_letters_are_listed_and_redriven_per_tenant() {
    let Some(endpoint) = test_skip::var("WEFT_TEST_AWS_ENDPOINT_URL") else { return };
    let Some(app) = setup().await else { return };
    let (client, queue, dlq) = sqs(&endpoint).await;
    app.state.set_event_queue(Arc::new(fn_api::event_routes::SqsQueue::new(
        client.clone(),
        queue.clone(),
        Some(dlq.clone()),
    )));

    let r = app
        .call(
            "POST",
            "/v1/events",
            Some(&token("acme", "editor")),
            Some(json!({"event": "order.created", "payload": {"n": 1}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["delivery"], "queued");
    let queued = receive_all(&client, &queue).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].message_id.as_deref(), r.body["message_id"].as_str());
    let body: Value = serde_json::from_str(queued[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(body, json!({"event": "order.created", "input": {"n": 1}, "tenant": "acme"}));
    client
        .delete_message()
        .queue_url(&queue)
        .receipt_handle(queued[0].receipt_handle.clone().unwrap())
        .send()
        .await
        .unwrap();

    // Dead letters of two tenants: each admin sees and redrives only their own.
    for (tenant, n) in [("acme", 1), ("acme", 2), ("beta", 3)] {
        let body = json!({"event": "bad", "input": {"n": n}, "tenant": tenant}).to_string();
        client.send_message().queue_url(&dlq).message_body(body).send().await.unwrap();
    }
    let acme = token("acme", "admin");
    let r = app.call("GET", "/v1/admin/dead-letters", Some(&acme), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut seen: Vec<i64> =
        r.body["items"].as_array().unwrap().iter().map(|m| m["input"]["n"].as_i64().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, [1, 2], "{}", r.body);
    assert!(r.body["items"].as_array().unwrap().iter().all(|m| m["event"] == "bad" && m["sent_at"].is_string()));
    let first = r.body["items"][0]["message_id"].as_str().unwrap().to_owned();

    let r =
        app.call("POST", "/v1/admin/dead-letters/redrive", Some(&acme), Some(json!({"message_ids": [first]}))).await;
    assert_eq!((r.status, r.body["redriven"].clone()), (StatusCode::OK, json!([first])), "{}", r.body);
    let r = app.call("POST", "/v1/admin/dead-letters/redrive", Some(&acme), Some(json!({}))).await;
    assert_eq!(r.body["redriven"].as_array().map(Vec::len), Some(1), "{}", r.body);
    let back: Vec<i64> = receive_all(&client, &queue)
        .await
        .iter()
        .map(|m| serde_json::from_str::<Value>(m.body.as_deref().unwrap()).unwrap()["input"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        {
            let mut b = back;
            b.sort_unstable();
            b
        },
        [1, 2]
    );
    // beta's message is still there, for beta's admin only.
    let r = app.call("GET", "/v1/admin/dead-letters", Some(&acme), None).await;
    assert_eq!(r.body["items"], json!([]), "{}", r.body);
    let r = app.call("GET", "/v1/admin/dead-letters", Some(&token("beta", "admin")), None).await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1), "{}", r.body);
    let _ = client.delete_queue().queue_url(&queue).send().await;
    let _ = client.delete_queue().queue_url(&dlq).send().await;
}
