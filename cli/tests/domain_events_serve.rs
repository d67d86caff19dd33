//! Domain events on a real `weft serve`: its relay publishes what the api's writes and the
//! recorder left in the outbox to the Redis stream `weft:domain-events`, in order, each event once,
//! in the documented schema (`docs/domain-events.md`).
//!
//! The stream is the server's, shared with any other `weft serve` on the same Redis, so the test
//! reads the entries of its own tenant only. Needs `WEFT_TEST_DATABASE_URL` and
//! `WEFT_TEST_REDIS_URL`; without them it skips (a `SKIPPED:` line), unless `WEFT_TEST_STRICT=1`.

mod executions_common;

use std::time::{Duration, Instant};

use executions_common::{Api, Serve, services};
use serde_json::{Value, json};

/// The events of `tenant` on the stream, oldest first.
async fn stream_of(redis: &str, tenant: &str) -> Vec<Value> {
    let client = redis::Client::open(redis).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let entries: Vec<(String, Vec<(String, String)>)> =
        redis::cmd("XRANGE").arg("weft:domain-events").arg("-").arg("+").query_async(&mut conn).await.expect("XRANGE");
    entries
        .into_iter()
        .filter_map(|(_, fields)| {
            let event: Value = serde_json::from_str(&fields.first()?.1).ok()?;
            (event["tenant_id"] == tenant).then_some(event)
        })
        .collect()
}

/// The events of `tenant` on the stream once `done` holds of them (or after 30 s, for the
/// caller's assertions to say what is missing).
async fn stream_until(redis: &str, tenant: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = stream_of(redis, tenant).await;
        if done(&events) || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn serve_streams_the_domain_events_of_writes_and_executions() {
    let Some((db, redis)) = services().await else { return };
    let server = Serve::start(&db, &redis, 0, &[]);
    let tenant = format!("events-{}", uuid::Uuid::new_v4().simple());
    let api = Api::new(&server.base, &tenant);
    let graph = json!({"format": "weft/v1", "id": "g", "name": "streamed",
        "nodes": [{"id": "start", "type": "start", "data": {}}, {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "done"}]});
    let workflow = api.publish(graph).await;
    let execution = api.start(&workflow, json!({"secret": "not-in-events"})).await;
    api.wait_status(&execution, Duration::from_secs(60), |s| s == "SUCCEEDED").await;

    let expected = [
        "WorkflowCreated",
        "WorkflowPublished",
        "ExecutionStarted",
        "NodeSucceeded",
        "NodeSucceeded",
        "ExecutionSucceeded",
    ];
    let events = stream_until(&redis, &tenant, |events| events.len() >= expected.len()).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, expected, "{events:?}");
    let ids: Vec<i64> = events.iter().filter_map(|e| e["id"].as_i64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order, once each: {ids:?}");
    assert!(events.iter().all(|e| e["version"] == 1 && e["occurred_at"].is_string()));
    assert_eq!(events[0]["data"], json!({"workflow_id": workflow, "name": "streamed"}));
    assert_eq!(events[5]["data"], json!({"execution_id": execution, "workflow_id": workflow, "status": "SUCCEEDED"}));
    assert!(!serde_json::to_string(&events).expect("json").contains("not-in-events"), "no input in events");

    // Nothing is left in the outbox, and nothing is published twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stream_of(&redis, &tenant).await.len(), expected.len());
    let pool = sqlx::PgPool::connect(&db).await.expect("database");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM domain_events WHERE published_at IS NULL")
        .fetch_one(&pool)
        .await
        .expect("outbox");
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn a_child_execution_of_a_workflow_node_starts_and_ends_once() {
    let Some((db, redis)) = services().await else { return };
    let server = Serve::start(&db, &redis, 0, &[]);
    let tenant = format!("events-{}", uuid::Uuid::new_v4().simple());
    let api = Api::new(&server.base, &tenant);
    let edge = |id: &str, s: &str, t: &str| json!({"id": id, "source": s, "target": t});
    let child = api
        .publish(json!({"format": "weft/v1", "id": "child", "name": "child",
            "nodes": [{"id": "start", "type": "start", "data": {}}, {"id": "done", "type": "end", "data": {}}],
            "edges": [edge("e1", "start", "done")]}))
        .await;
    let parent = api
        .publish(json!({"format": "weft/v1", "id": "parent", "name": "parent",
            "nodes": [{"id": "start", "type": "start", "data": {}},
                      {"id": "call", "type": "workflow", "data": {"workflow_id": child, "input": {}}},
                      {"id": "done", "type": "end", "data": {}}],
            "edges": [edge("e1", "start", "call"), edge("e2", "call", "done")]}))
        .await;
    let execution = api.start(&parent, json!({})).await;
    let done = api.wait_status(&execution, Duration::from_secs(60), |s| s == "SUCCEEDED").await;
    let child_execution = done["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node_id"] == "call"))
        .and_then(|n| n["child_execution_ids"][0].as_str())
        .unwrap_or_else(|| panic!("no child execution in {done}"))
        .to_owned();
    api.wait_status(&child_execution, Duration::from_secs(60), |s| s == "SUCCEEDED").await;

    let of_child = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["data"]["execution_id"] == child_execution.as_str())
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let expected = ["ExecutionStarted", "NodeSucceeded", "NodeSucceeded", "ExecutionSucceeded"];
    let events = stream_until(&redis, &tenant, |events| of_child(events).len() >= expected.len()).await;
    assert_eq!(of_child(&events), expected, "{events:?}");
    let started = events.iter().find(|e| e["data"]["execution_id"] == child_execution.as_str()).expect("started");
    assert_eq!(started["data"]["workflow_id"], json!(child), "the child's own workflow, in the parent's tenant");
}
