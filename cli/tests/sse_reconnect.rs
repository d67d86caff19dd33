//! SSE over polling: a client that drops the connection every few events and reconnects with
//! `Last-Event-ID` receives every event exactly once and in order; bounded responses end with a
//! `retry:` hint; a finished execution ends with `event: end`.

mod executions_common;

use std::time::Duration;

use executions_common::{Api, Serve, follow, read_sse, services};
use serde_json::{Value, json};

fn stepped_graph() -> Value {
    json!({"format": "weft/v1", "id": "steps", "name": "Steps",
        "nodes": [
            {"id": "start", "type": "start", "data": {}},
            {"id": "a", "type": "code", "data": {"source": "return { a: 1 };"}},
            {"id": "pause1", "type": "delay", "data": {"seconds": 1}},
            {"id": "b", "type": "code", "data": {"source": "return { b: nodes.a.a + 1 };"}},
            {"id": "pause2", "type": "delay", "data": {"seconds": 1}},
            {"id": "c", "type": "code", "data": {"source": "return { c: nodes.b.b + 1 };"}},
            {"id": "done", "type": "end", "data": {}}],
        "edges": [
            {"id": "e1", "source": "start", "target": "a"}, {"id": "e2", "source": "a", "target": "pause1"},
            {"id": "e3", "source": "pause1", "target": "b"}, {"id": "e4", "source": "b", "target": "pause2"},
            {"id": "e5", "source": "pause2", "target": "c"}, {"id": "e6", "source": "c", "target": "done"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_reconnecting_client_gets_every_event_once_in_order() {
    let Some((db, redis)) = services().await else { return };
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, "acme");
    let workflow = api.publish(stepped_graph()).await;
    let execution = api.start(&workflow, json!({})).await;
    let path = format!("/v1/executions/{execution}/events?timeout_ms=3000");

    // Drop the connection after every 2 events, resume from the last id seen.
    let mut last: Option<String> = None;
    let mut received: Vec<(String, String)> = Vec::new();
    let mut connections = 0;
    let end = loop {
        connections += 1;
        assert!(connections < 200, "never reached the end");
        let got = read_sse(&api, &path, last.as_deref(), Some(2)).await;
        let mut end = None;
        for ev in got {
            if ev.event.as_deref() == Some("end") {
                end = Some(ev.data.clone());
            } else if let Some(id) = ev.id {
                received.push((id.clone(), ev.data));
                last = Some(id);
            }
        }
        if let Some(end) = end {
            break end;
        }
    };
    let end: Value = serde_json::from_str(&end).expect("end");
    assert_eq!(end["status"], "SUCCEEDED");
    assert_eq!(end["output"], json!({"c": 3}));
    assert!(connections > 5, "the client should have reconnected many times, not {connections}");

    // Exactly the events a single uninterrupted reader gets, same ids, same data, same order.
    let whole = read_sse(&api, &format!("/v1/executions/{execution}/events"), None, None).await;
    let whole: Vec<(String, String)> = whole.into_iter().filter_map(|e| e.id.map(|id| (id, e.data))).collect();
    assert_eq!(received, whole);
    let ids: Vec<i64> = received.iter().map(|(id, _)| id.parse().expect("numeric id")).collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());
    assert!(ids.len() >= 16, "{} events", ids.len());

    // After the end, a reconnect gets the end again and nothing else.
    let after = read_sse(&api, &format!("/v1/executions/{execution}/events"), last.as_deref(), None).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].event.as_deref(), Some("end"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_responses_are_bounded_and_end_with_a_retry_hint() {
    let Some((db, redis)) = services().await else { return };
    let serve = Serve::start(&db, &redis, 0, &[("WEFT_SSE_WAIT_MS", "1500")]);
    let api = Api::new(&serve.base, "acme");
    let slow = json!({"format": "weft/v1", "id": "slow", "name": "Slow",
        "nodes": [{"id": "start", "type": "start", "data": {}}, {"id": "nap", "type": "delay", "data": {"seconds": 30}},
                  {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "nap"}, {"id": "e2", "source": "nap", "target": "done"}]});
    let workflow = api.publish(slow).await;
    let execution = api.start(&workflow, json!({})).await;
    let started = std::time::Instant::now();
    // No timeout_ms: the server's own bound (WEFT_SSE_WAIT_MS) applies.
    let got = read_sse(&api, &format!("/v1/executions/{execution}/events"), None, None).await;
    let took = started.elapsed();
    // Open for the server's bound (nothing ends it earlier: the execution naps for 30 s), then
    // closed long before the nap is over. The upper limit has room for a loaded machine.
    assert!(took >= Duration::from_millis(1500), "closed before WEFT_SSE_WAIT_MS: {took:?}");
    assert!(took < Duration::from_secs(20), "response stayed open {took:?}");
    // The last thing sent is the reconnection hint an EventSource obeys: a delay in milliseconds.
    let last = got.last().expect("events");
    let hint = last.retry.filter(|ms| *ms > 0);
    assert!(hint.is_some() && last.id.is_none() && last.data.is_empty(), "no retry hint at the end: {got:?}");
    assert!(got.iter().all(|e| e.event.as_deref() != Some("end")));
    assert!(got.iter().any(|e| e.data.contains("\"node_started\"") && e.data.contains("\"nap\"")));
    // Resuming from the last id while nothing happens yields only the hint.
    let last_id = got.iter().rev().find_map(|e| e.id.clone()).expect("an id");
    let again =
        read_sse(&api, &format!("/v1/executions/{execution}/events?timeout_ms=200"), Some(&last_id), None).await;
    assert_eq!(again.iter().filter(|e| e.id.is_some()).count(), 0);
    assert_eq!(again.last().and_then(|e| e.retry), hint, "{again:?}");
    // A malformed Last-Event-ID is a 400, not a replay from the start.
    let (status, _) = api
        .call_with(reqwest::Method::GET, &format!("/v1/executions/{execution}/events"), None, &[("last-event-id", "x")])
        .await;
    assert_eq!(status, 400);
    // Stopping it ends the stream for good.
    let (status, _) = api.call(reqwest::Method::POST, &format!("/v1/executions/{execution}/stop"), None).await;
    assert_eq!(status, 200);
    let (_, end) = follow(&api, &execution, Duration::from_secs(20)).await;
    assert_eq!(end["status"], "ABORTED");
}
