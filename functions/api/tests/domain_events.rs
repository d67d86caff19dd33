//! Domain events through the real router: workflow writes record their events in the outbox with
//! the caller's tenant, in the write's own transaction; the relay puts them on a real Redis
//! stream in order and in the documented schema; with an event sink set (the api Lambda's
//! `WEFT_EVENT_BUS_NAME`), each successful write publishes them before answering, and a sink that
//! fails never fails the request nor loses the write: the next drain publishes what it left.
//!
//! Needs `WEFT_TEST_DATABASE_URL` and `WEFT_TEST_REDIS_URL`; without them each test skips (a
//! `SKIPPED:` line), unless `WEFT_TEST_STRICT=1`, when it fails.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

/// `(tenant, kind, detail)` of every outbox row, in id order, and how many are unpublished.
async fn outbox(app: &TestApp) -> (Vec<(String, String, Value)>, i64) {
    let pool = app.state.store().pool();
    let rows: Vec<(String, String, Value)> =
        sqlx::query_as("SELECT tenant_id, kind, detail FROM domain_events ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("outbox");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM domain_events WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("pending");
    (rows, pending)
}

/// A Redis stream sink on this test's own stream, and a connection to read it.
async fn stream_sink(app: &TestApp) -> (domain_events::RedisStreamSink, redis::aio::MultiplexedConnection) {
    let client = redis::Client::open(app.redis_url.as_str()).expect("redis url");
    let manager = client.get_connection_manager().await.expect("redis");
    let key = format!("{}:domain-events", app.namespace);
    (
        domain_events::RedisStreamSink::with_key(manager, key),
        client.get_multiplexed_async_connection().await.expect("redis"),
    )
}

/// The `event` of every entry of the sink's stream, parsed.
async fn stream(sink: &domain_events::RedisStreamSink, conn: &mut redis::aio::MultiplexedConnection) -> Vec<Value> {
    let entries: Vec<(String, Vec<(String, String)>)> =
        redis::cmd("XRANGE").arg(sink.key()).arg("-").arg("+").query_async(conn).await.expect("XRANGE");
    entries.into_iter().map(|(_, f)| serde_json::from_str(&f[0].1).expect("event JSON")).collect()
}

#[tokio::test]
async fn workflow_writes_record_events_with_the_tenant_and_the_relay_streams_them_in_order() {
    let Some(app) = setup().await else { return };
    let editor = token("acme", "editor");
    let id = app.create("acme", graph("orders")).await;
    let r = app
        .call("PUT", &format!("/v1/workflows/{id}"), Some(&editor), Some(json!({"graph": graph("orders v2")})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&editor), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let other = app.create("globex", graph("billing")).await;
    let r = app.call("DELETE", &format!("/v1/workflows/{id}"), Some(&editor), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // Refused writes record nothing: a viewer's, another tenant's, a deleted workflow's.
    let r = app
        .call(
            "PUT",
            &format!("/v1/workflows/{other}"),
            Some(&token("globex", "viewer")),
            Some(json!({"graph": graph("x")})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.call("DELETE", &format!("/v1/workflows/{other}"), Some(&editor), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&editor), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let (rows, pending) = outbox(&app).await;
    let acme = |kind: &str, data: Value| ("acme".to_owned(), kind.to_owned(), data);
    assert_eq!(
        rows,
        [
            acme("WorkflowCreated", json!({"workflow_id": id, "name": "orders"})),
            acme("WorkflowUpdated", json!({"workflow_id": id, "name": "orders v2"})),
            acme("WorkflowPublished", json!({"workflow_id": id, "name": "orders v2", "version": 1})),
            ("globex".to_owned(), "WorkflowCreated".to_owned(), json!({"workflow_id": other, "name": "billing"})),
            acme("WorkflowDeleted", json!({"workflow_id": id, "name": "orders v2"})),
        ]
    );
    assert_eq!(pending, 5, "no sink is set, so nothing is published by the api");

    let (sink, mut conn) = stream_sink(&app).await;
    let drained = domain_events::drain_all(app.state.store().pool(), &sink).await.expect("drain");
    assert_eq!((drained.picked, drained.published), (5, 5));
    let published = stream(&sink, &mut conn).await;
    let ids: Vec<i64> = published.iter().map(|e| e["id"].as_i64().expect("id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");
    for (event, (tenant, kind, data)) in published.iter().zip(&rows) {
        let keys: Vec<&str> = event.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["version", "id", "type", "tenant_id", "occurred_at", "data"]);
        assert_eq!((&event["version"], &event["type"], &event["tenant_id"]), (&json!(1), &json!(kind), &json!(tenant)));
        assert_eq!(&event["data"], data);
        assert!(chrono::DateTime::parse_from_rfc3339(event["occurred_at"].as_str().expect("time")).is_ok());
    }
    assert_eq!(outbox(&app).await.1, 0);
}

/// A sink that is down: every publish fails.
#[derive(Default)]
struct Down(AtomicUsize);

#[async_trait::async_trait]
impl domain_events::Sink for Down {
    async fn publish(&self, _: &[domain_events::DomainEvent]) -> Result<Vec<i64>, domain_events::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(domain_events::Error::Unavailable("EventBridge is down (test)".into()))
    }
}

#[tokio::test]
async fn a_failing_sink_never_fails_the_write_and_the_next_drain_publishes_its_events() {
    let Some(app) = setup().await else { return };
    let down = Arc::new(Down::default());
    app.state.set_event_sink(down.clone());
    let id = app.create("acme", graph("orders")).await;
    let editor = token("acme", "editor");
    let r = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&editor), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "a publishing failure does not fail the request: {}", r.body);
    assert_eq!(down.0.load(Ordering::SeqCst), 2, "each write tried to publish before answering");
    // Reads do not publish.
    let r = app.call("GET", &format!("/v1/workflows/{id}"), Some(&editor), None).await;
    assert_eq!((r.status, r.body["live_version"].clone()), (StatusCode::OK, json!(1)), "the writes are intact");
    assert_eq!(down.0.load(Ordering::SeqCst), 2);
    let (rows, pending) = outbox(&app).await;
    assert_eq!(rows.iter().map(|(_, k, _)| k.as_str()).collect::<Vec<_>>(), ["WorkflowCreated", "WorkflowPublished"]);
    assert_eq!(pending, 2, "the events wait in the outbox");

    let (sink, mut conn) = stream_sink(&app).await;
    let drained = domain_events::drain_all(app.state.store().pool(), &sink).await.expect("drain");
    assert_eq!((drained.picked, drained.published), (2, 2));
    let kinds: Vec<Value> = stream(&sink, &mut conn).await.into_iter().map(|e| e["type"].clone()).collect();
    assert_eq!(kinds, [json!("WorkflowCreated"), json!("WorkflowPublished")]);
    assert_eq!(outbox(&app).await.1, 0);
}

#[tokio::test]
async fn with_a_sink_each_write_publishes_its_events_before_answering() {
    let Some(app) = setup().await else { return };
    let (sink, mut conn) = stream_sink(&app).await;
    app.state.set_event_sink(Arc::new(sink.clone()));
    let id = app.create("acme", graph("orders")).await;
    let published = stream(&sink, &mut conn).await;
    assert_eq!(published.len(), 1, "on the stream when the response arrives");
    assert_eq!((&published[0]["type"], &published[0]["tenant_id"]), (&json!("WorkflowCreated"), &json!("acme")));
    assert_eq!(published[0]["data"]["workflow_id"], json!(id));
    let r = app.call("DELETE", &format!("/v1/workflows/{id}"), Some(&token("acme", "editor")), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let kinds: Vec<Value> = stream(&sink, &mut conn).await.into_iter().map(|e| e["type"].clone()).collect();
    assert_eq!(kinds, [json!("WorkflowCreated"), json!("WorkflowDeleted")]);
    assert_eq!(outbox(&app).await.1, 0);
}
