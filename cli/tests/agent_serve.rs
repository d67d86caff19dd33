//! Agents on a real `weft serve`, against the scripted OpenAI-compatible server
//! (`OPENAI_BASE_URL`) and an HTTP tool peer, both on 127.0.0.1: an express workflow with an
//! `agent` node (one tool) and a sequential `multi_agent` node, run with `?wait=true`. Its events
//! list every turn (`agent_turn`) and tool call (`agent_tool_call`), its tokens stream as
//! `node_token` events (a `multi_agent` agent's naming it in `payload.agent`), and
//! `GET /v1/executions/{id}` totals the model usage of every turn.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod ai_common;
mod executions_common;

use std::time::{Duration, Instant};

use ai_common::Peer;
use executions_common::{Api, Serve, follow, services};
use model_client::testing::{Reply, ScriptedServer};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_turns_tool_calls_tokens_and_usage_reach_the_api() {
    let Some((db, redis)) = services().await else { return };
    let model = ScriptedServer::start().await;
    let weather = Peer::start(&[("/weather/oslo", json!({"city": "Oslo", "sky": "snow", "celsius": -3}))]).await;
    let helper_answer = "It is snowing in Oslo, -3 °C: take warm boots.";
    let (first, second) = ("Oslo: snow, -3 °C.", "Pack warm boots and a hat.");
    model.push(Reply::tool_calls(vec![("weather", r#"{"city": "oslo"}"#)]));
    model.push(Reply::text(helper_answer));
    model.push(Reply::text(first));
    model.push(Reply::text(second));
    let base = model.base_url();
    let serve = Serve::start(
        &db,
        &redis,
        0,
        &[("OPENAI_BASE_URL", base.as_str()), ("OPENAI_API_KEY", "sk-test"), ("WEFT_HTTP_ALLOW", "127.0.0.1")],
    );
    let api = Api::new(&serve.base, &format!("agent-{}", Uuid::new_v4().simple()));
    let graph = json!({"format": "weft/v1", "id": "trip", "name": "trip", "settings": {"type": "express"},
        "nodes": [
            {"id": "start", "type": "start", "data": {}},
            {"id": "helper", "type": "agent", "data": {
                "model": "gpt-4o-mini", "max_steps": 4,
                "instructions": "Answer travel questions; check the weather first.",
                "input": "{{ input.question }}",
                "tools": [{"name": "weather", "description": "The weather in a city.", "type": "http",
                           "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
                           "method": "GET", "url": format!("{}/weather/{{{{ args.city }}}}", weather.url), "timeout_seconds": 5}]}},
            {"id": "team", "type": "multi_agent", "data": {
                "strategy": "sequential", "model": "gpt-4o-mini",
                "task": "Plan a packing list from: {{ nodes.helper.answer }}",
                "agents": [{"name": "summariser", "instructions": "Summarise the weather."},
                           {"name": "packer", "instructions": "Say what to pack."}]}},
            {"id": "done", "type": "end", "data": {"output": {"answer": "{{ nodes.helper.answer }}", "list": "{{ nodes.team.answer }}"}}}],
        "edges": [{"id": "e1", "source": "start", "target": "helper"}, {"id": "e2", "source": "helper", "target": "team"},
                  {"id": "e3", "source": "team", "target": "done"}]});
    let workflow = api.publish(graph).await;
    let path = format!("/v1/workflows/{workflow}/executions?wait=true");
    let (status, done) =
        api.call(Method::POST, &path, Some(json!({"input": {"question": "What to wear in Oslo?"}}))).await;
    assert_eq!(status, 200, "{done}\n{}", serve.log.lock().unwrap());
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], json!({"answer": helper_answer, "list": second}), "{done}");
    assert_eq!(weather.received().len(), 1);
    let id = done["id"].as_str().expect("id").to_owned();

    let (events, end) = follow(&api, &id, LIMIT).await;
    assert_eq!(end["status"], "SUCCEEDED", "{end}");
    let of = |kind: &str| events.iter().filter(|e| e["type"] == kind).collect::<Vec<&Value>>();
    // helper: two turns; team: one per agent.
    let turns = of("agent_turn");
    assert_eq!(turns.len(), 4, "{events:?}");
    assert_eq!(turns.iter().filter(|t| t["node_id"] == "helper").count(), 2, "{turns:?}");
    assert!(turns.iter().all(|t| t["payload"]["usage"]["input_tokens"].as_u64().is_some()), "{turns:?}");
    let calls = of("agent_tool_call");
    assert_eq!(calls.len(), 1, "{events:?}");
    assert_eq!(calls[0]["node_id"], "helper");
    assert_eq!(calls[0]["payload"]["tool"], "weather");
    assert_eq!(calls[0]["payload"]["args"], json!({"city": "oslo"}));
    assert_eq!(calls[0]["payload"]["result"]["body"]["sky"], "snow", "{:?}", calls[0]);

    // Tokens: the helper's answer, then each agent's under its name.
    let tokens = of("node_token");
    let text_of = |node: &str, agent: Option<&str>| -> String {
        tokens
            .iter()
            .filter(|t| t["node_id"] == node && t["payload"]["agent"].as_str() == agent)
            .filter_map(|t| t["payload"]["text"].as_str())
            .collect()
    };
    assert_eq!(text_of("helper", None), helper_answer, "{tokens:?}");
    assert_eq!(text_of("team", Some("summariser")), first, "{tokens:?}");
    assert_eq!(text_of("team", Some("packer")), second, "{tokens:?}");

    // The execution's usage: every turn once.
    let sum = |field: &str| turns.iter().map(|t| t["payload"]["usage"][field].as_u64().unwrap()).sum::<u64>();
    let deadline = Instant::now() + LIMIT;
    let execution = loop {
        let e = api.get(&format!("/v1/executions/{id}")).await;
        if e["usage"].is_object() {
            break e;
        }
        assert!(Instant::now() < deadline, "no usage within {LIMIT:?}: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let usage = &execution["usage"];
    assert_eq!(usage["input_tokens"].as_u64(), Some(sum("input_tokens")), "{execution}");
    assert_eq!(usage["output_tokens"].as_u64(), Some(sum("output_tokens")), "{execution}");
    assert!(usage["cost_usd"].as_f64().unwrap() > 0.0, "{execution}");
}
