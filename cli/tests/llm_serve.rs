//! An `llm` node on a real `weft serve`, against the scripted OpenAI-compatible server on
//! 127.0.0.1 (`OPENAI_BASE_URL`): its tokens reach `GET /v1/executions/{id}/events` as
//! `node_token` events while the node runs (read from the execution's Redis token stream), in
//! order, naming the node, their text adding up to the node's output; their ids resume both
//! cursors (`<seq>:<token id>`), so a reconnect gets only what follows.

mod executions_common;

use std::time::Duration;

use executions_common::{Api, Serve, Sse, read_sse, services};
use model_client::testing::{Reply, ScriptedServer};
use serde_json::{Value, json};
use uuid::Uuid;

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_nodes_tokens_stream_through_the_events_endpoint() {
    let Some((db, redis)) = services().await else { return };
    let model = ScriptedServer::start().await;
    let answer = "Weft streams every token of this answer to the browser as it is written.";
    // Slow enough that the events endpoint sees the node running while tokens arrive.
    model.push(Reply::text(answer).with_chunk_delay(Duration::from_millis(40)));
    let base = model.base_url();
    let serve = Serve::start(&db, &redis, 0, &[("OPENAI_BASE_URL", base.as_str()), ("OPENAI_API_KEY", "sk-test")]);
    let api = Api::new(&serve.base, &format!("llm-{}", Uuid::new_v4().simple()));
    let graph = json!({"format": "weft/v1", "id": "ask", "name": "ask",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "ask", "type": "llm", "data": {"model": "gpt-4o-mini", "prompt": "Say something about {{ input.topic }}"}},
                  {"id": "done", "type": "end", "data": {"output": "{{ nodes.ask }}"}}],
        "edges": [{"id": "e1", "source": "start", "target": "ask"}, {"id": "e2", "source": "ask", "target": "done"}]});
    let workflow = api.publish(graph).await;
    let execution = api.start(&workflow, json!({"topic": "streaming"})).await;
    let path = format!("/v1/executions/{execution}/events?timeout_ms=2000");

    // Read until three tokens have arrived, then drop the connection.
    let mut first: Vec<Sse> = Vec::new();
    let deadline = std::time::Instant::now() + LIMIT;
    while first.iter().filter(|e| e.data.contains("\"node_token\"")).count() < 3 {
        assert!(std::time::Instant::now() < deadline, "no tokens within {LIMIT:?}: {first:?}");
        let last = first.iter().rev().find_map(|e| e.id.clone());
        first.extend(read_sse(&api, &path, last.as_deref(), Some(1)).await);
    }
    let resume = first.iter().rev().find_map(|e| e.id.clone()).expect("an id");
    assert!(resume.contains(':'), "a token's id carries both cursors: {resume}");
    // Reconnect with its id, as an EventSource does, and follow to the end.
    let mut rest: Vec<Sse> = Vec::new();
    let end = loop {
        assert!(std::time::Instant::now() < deadline, "no end within {LIMIT:?}");
        let last = rest.iter().rev().find_map(|e| e.id.clone()).unwrap_or_else(|| resume.clone());
        let got = read_sse(&api, &path, Some(&last), None).await;
        if let Some(end) = got.iter().find(|e| e.event.as_deref() == Some("end")) {
            let end: Value = serde_json::from_str(&end.data).expect("end data");
            rest.extend(got.into_iter().filter(|e| e.event.as_deref() != Some("end")));
            break end;
        }
        rest.extend(got);
    };
    assert_eq!(end["status"], "SUCCEEDED", "{end}");
    assert_eq!(end["output"]["text"], answer, "{end}");
    assert!(end["output"]["usage"]["output_tokens"].as_u64().is_some(), "{end}");

    let events: Vec<Value> = first
        .iter()
        .chain(rest.iter())
        .filter(|e| e.id.is_some())
        .map(|e| serde_json::from_str(&e.data).expect("event data"))
        .collect();
    let tokens: Vec<&Value> = events.iter().filter(|e| e["type"] == "node_token").collect();
    assert!(tokens.len() > 3, "the answer came in many tokens: {events:?}");
    assert!(tokens.iter().all(|t| t["node_id"] == "ask"), "{tokens:?}");
    // Across the reconnect: every token once, in order.
    let text: String = tokens.iter().filter_map(|t| t["payload"]["text"].as_str()).collect();
    assert_eq!(text, answer, "the tokens add up to the node's text, none lost or repeated");
    // The tokens came while the node ran: before its success was recorded.
    let first_token = events.iter().position(|e| e["type"] == "node_token").expect("a token");
    let succeeded = events
        .iter()
        .position(|e| e["type"] == "node_succeeded" && e["node_id"] == "ask")
        .expect("node_succeeded for ask");
    assert!(first_token < succeeded, "tokens arrive while the node runs: {events:?}");
    // Node events are not repeated by the reconnect either.
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    let mut sorted = seqs.clone();
    sorted.dedup();
    assert_eq!(seqs, sorted, "{events:?}");

    // A malformed id is a client error.
    let bad = api
        .http
        .get(format!("{}/v1/executions/{execution}/events", api.base))
        .bearer_auth(&api.token)
        .header("last-event-id", "3:not-a-stream-id")
        .send()
        .await
        .expect("request");
    assert_eq!(bad.status().as_u16(), 400);
}
