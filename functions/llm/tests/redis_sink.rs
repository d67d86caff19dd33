//! `RedisSink` against a real Redis (`WEFT_TEST_REDIS_URL`; skipped without it unless
//! `WEFT_TEST_STRICT=1`): a call's tokens land in `weft:tokens:{execution}` in order, with their
//! fields, a bounded length and an expiry.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use fn_llm::{LlmFunction, RedisSink, Settings, token_stream_key};
use model_client::testing::{Reply, ScriptedServer};
use node_contract::{ExecutionRef, NodeEvent, NodeRef};
use serde_json::json;

#[tokio::test]
async fn tokens_land_in_the_execution_stream() {
    let Some(url) = test_skip::var("WEFT_TEST_REDIS_URL") else { return };
    let server = ScriptedServer::start().await;
    let text = "Tokens for the api's server-sent events. ".repeat(10);
    server.push(Reply::text(text.clone()));
    let arn = format!("arn:aws:states:us-east-1:1:execution:wf:redis-sink-{}", std::process::id());
    let key = token_stream_key(&arn);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();

    let sink = Arc::new(RedisSink::new(&url).unwrap().with_limits(1000, 120));
    let f = LlmFunction::new(Settings::allowing(&[], &server.base_url()).unwrap()).unwrap().with_sink(sink);
    let event = NodeEvent {
        node: NodeRef { id: "ask".into(), node_type: "llm".into() },
        config: json!({"model": "m", "prompt": "hi"}),
        execution: ExecutionRef { id: arn.clone() },
        attempt: 0,
        scope: None,
        task_token: None,
        secrets: Default::default(),
        state: None,
    };
    let out = f.run(event).await.unwrap();
    assert_eq!(out["text"], text);

    let entries: Vec<(String, Vec<(String, String)>)> = {
        let raw: redis::Value = redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query_async(&mut conn).await.unwrap();
        redis::FromRedisValue::from_redis_value(raw).unwrap()
    };
    let mut joined = String::new();
    for (i, (_, fields)) in entries.iter().enumerate() {
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
        assert_eq!((get("node_id"), get("seq"), get("reply")), ("ask".to_owned(), i.to_string(), "0".to_owned()));
        joined.push_str(&get("text"));
    }
    assert_eq!(joined, text);
    let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut conn).await.unwrap();
    assert!(ttl > 0 && ttl <= 120, "{ttl}");
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
}
