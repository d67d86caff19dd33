//! The bootstrap's `RedisSink` with a `multi_agent` agent's turn, against a real Redis
//! (`WEFT_TEST_REDIS_URL`; skipped without it unless `WEFT_TEST_STRICT=1`): the tokens land in
//! `weft:tokens:{execution}` in order, each with the node id and the agent's name.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use fn_agent::{AgentFunction, RedisSink, Settings};
use model_client::testing::{Reply, ScriptedServer};
use node_contract::{ExecutionRef, NodeEvent, NodeRef};
use serde_json::json;

#[tokio::test]
async fn agent_tokens_carry_the_agents_name() {
    let Some(url) = test_skip::var("WEFT_TEST_REDIS_URL") else { return };
    let server = ScriptedServer::start().await;
    let text = "Tokens of one agent of a multi_agent node. ".repeat(10);
    server.push(Reply::text(text.clone()));
    let arn = format!("arn:aws:states:us-east-1:1:execution:wf:agent-sink-{}", std::process::id());
    let key = fn_agent::token_stream_key(&arn);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();

    let sink = Arc::new(RedisSink::new(&url).unwrap().with_limits(1000, 120));
    let f = AgentFunction::new(Settings::allowing(&[], &server.base_url()).unwrap()).unwrap().with_sink(sink);
    let event = NodeEvent {
        node: NodeRef { id: "team".into(), node_type: "multi_agent".into() },
        config: json!({"model": "m", "input": "hi", "agent": "writer"}),
        execution: ExecutionRef { id: arn.clone() },
        attempt: 0,
        scope: None,
        task_token: None,
        secrets: Default::default(),
        state: Some(json!({"turn": 0})),
    };
    let out = f.run(event).await.unwrap();
    assert_eq!(out["output"]["answer"], text);

    let entries: Vec<(String, Vec<(String, String)>)> = {
        let raw: redis::Value = redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query_async(&mut conn).await.unwrap();
        redis::FromRedisValue::from_redis_value(raw).unwrap()
    };
    assert!(!entries.is_empty());
    let mut joined = String::new();
    for (i, (_, fields)) in entries.iter().enumerate() {
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(
            (get("node_id"), get("agent"), get("seq"), get("reply")),
            ("team".to_owned(), "writer".to_owned(), i.to_string(), "0".to_owned())
        );
        joined.push_str(&get("text"));
    }
    assert_eq!(joined, text);
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
}
