//! Non-streaming chat against the scripted server: what the client sends and what it returns.
#![allow(clippy::unwrap_used)]

mod common;

use common::{KEY, ask, server_and_client};
use model_client::testing::Reply;
use model_client::{
    ChatRequest, Client, FinishReason, Message, Provider, ResponseFormat, Tool, ToolCall, ToolChoice, Usage,
};
use serde_json::json;

#[tokio::test]
async fn echo_reply_with_usage_and_model() {
    let (server, client) = server_and_client().await;
    let r = client.chat(&ask("hello there")).await.unwrap();
    assert_eq!(r.text, "You said: hello there");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.model, "gpt-4o-mini");
    // "Be brief." = 9 chars -> 3 tokens, "hello there" = 11 -> 3; the reply 21 chars -> 6.
    assert_eq!(r.usage, Some(Usage { input_tokens: 6, output_tokens: 6 }));
    assert_eq!(server.served(), 1);
}

#[tokio::test]
async fn request_body_carries_every_field() {
    let (server, client) = server_and_client().await;
    let mut req = ChatRequest::new(
        "gpt-4.1",
        vec![
            Message::system("sys"),
            Message::user("weather?"),
            Message::assistant_tool_calls(
                "",
                vec![ToolCall {
                    id: "call_9".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into(),
                }],
            ),
            Message::tool("call_9", "18C"),
            Message::assistant("It is 18C."),
        ],
    );
    req.tools = vec![Tool::function(
        "get_weather",
        "The weather in a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )];
    req.tool_choice = Some(ToolChoice::Auto);
    req.temperature = Some(0.25);
    req.max_tokens = Some(64);
    req.response_format = Some(ResponseFormat::JsonObject);
    client.chat(&req).await.unwrap();
    let body = server.last_body();
    assert_eq!(
        body,
        json!({
            "model": "gpt-4.1",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "content": "18C", "tool_call_id": "call_9"},
                {"role": "assistant", "content": "It is 18C."}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
            "tool_choice": "auto",
            "temperature": 0.25,
            "max_tokens": 64,
            "response_format": {"type": "json_object"},
            "stream": false
        })
    );
}

#[tokio::test]
async fn json_schema_response_format_and_json_reply() {
    let (server, client) = server_and_client().await;
    let schema = json!({"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]});
    server.push(Reply::json(json!({"answer": 42})));
    let mut req = ask("what is six times seven?");
    req.response_format =
        Some(ResponseFormat::JsonSchema { name: "answer".into(), schema: schema.clone(), strict: true });
    let r = client.chat(&req).await.unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&r.text).unwrap(), json!({"answer": 42}));
    assert_eq!(
        server.last_body()["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": true}})
    );
}

#[tokio::test]
async fn tool_calls_returned_with_ids_and_null_content() {
    let (server, client) = server_and_client().await;
    server.push(Reply::tool_calls(vec![("get_weather", r#"{"city":"Paris"}"#), ("get_time", "{}")]));
    let r = client.chat(&ask("weather and time in Paris")).await.unwrap();
    assert_eq!(r.text, "");
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        r.tool_calls,
        [
            ToolCall { id: "call_0".into(), name: "get_weather".into(), arguments: r#"{"city":"Paris"}"#.into() },
            ToolCall { id: "call_1".into(), name: "get_time".into(), arguments: "{}".into() }
        ]
    );
    // The next turn sends the assistant message back with content "" (never null).
    let mut next = ask("weather and time in Paris");
    next.messages.push(r.to_message());
    next.messages.push(Message::tool("call_0", "18C"));
    client.chat(&next).await.unwrap();
    assert_eq!(server.last_body()["messages"][2]["content"], json!(""));
    assert_eq!(server.last_body()["messages"][2]["tool_calls"][1]["function"]["name"], json!("get_time"));
}

#[tokio::test]
async fn unknown_and_empty_finish_reasons_tolerated() {
    let (server, client) = server_and_client().await;
    server.push(Reply::text("a").with_finish_reason(Some("")));
    server.push(Reply::text("b").with_finish_reason(None));
    server.push(Reply::text("c").with_finish_reason(Some("eos_token")));
    assert_eq!(client.chat(&ask("x")).await.unwrap().finish_reason, FinishReason::Unknown);
    assert_eq!(client.chat(&ask("x")).await.unwrap().finish_reason, FinishReason::Unknown);
    let r = client.chat(&ask("x")).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::Other("eos_token".into()));
    assert_eq!(r.text, "c");
}

#[tokio::test]
async fn missing_usage_is_none() {
    let (server, client) = server_and_client().await;
    server.push(Reply::text("no usage here").without_usage());
    let r = client.chat(&ask("x")).await.unwrap();
    assert_eq!(r.usage, None);
    assert_eq!(r.text, "no usage here");
}

#[tokio::test]
async fn api_key_sent_as_bearer_and_not_without_key() {
    let (server, client) = server_and_client().await;
    client.chat(&ask("x")).await.unwrap();
    let keyless = Client::new(Provider::new(server.base_url()), reqwest::Client::new()).unwrap();
    keyless.chat(&ask("x")).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests[0].authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[1].authorization, None);
}

#[tokio::test]
async fn debug_output_never_shows_the_key() {
    let (_server, client) = server_and_client().await;
    let client_debug = format!("{client:?}");
    let provider_debug = format!("{:?}", client.provider());
    for d in [&client_debug, &provider_debug] {
        assert!(!d.contains(KEY), "{d}");
        assert!(d.contains("***"), "{d}");
    }
}

#[test]
fn provider_validation() {
    let http = reqwest::Client::new();
    let bad = |url: &str| Client::new(Provider::new(url), http.clone()).unwrap_err().field;
    assert_eq!(bad("not a url"), "base_url");
    assert_eq!(bad("ftp://example.com/v1"), "base_url");
    assert_eq!(bad("https://user:sk-secret@example.com/v1"), "base_url");
    let e = Client::new(Provider::new("https://example.com/v1").with_api_key("line\nbreak"), http.clone()).unwrap_err();
    assert_eq!(e.field, "api_key");
    assert!(!e.to_string().contains("line\nbreak"));
    assert!(Client::new(Provider::new("https://example.com/v1/"), http).is_ok());
}

/// Set in the child processes of `provider_from_env_follows_the_sdk`.
const CHILD: &str = "MODEL_CLIENT_TEST_ENV_CHILD";

#[test]
fn provider_from_env_follows_the_sdk() {
    // `set_var` is unsafe (edition 2024) and tests run in parallel, so each case runs in a child
    // process (this test binary, filtered to one test) with its own environment.
    let run = |test: &str, base: Option<&str>, key: &str| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", test, "--nocapture"]).env(CHILD, "1").env("OPENAI_API_KEY", key);
        match base {
            Some(b) => cmd.env("OPENAI_BASE_URL", b),
            None => cmd.env_remove("OPENAI_BASE_URL"),
        };
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}");
    };
    run("provider_from_env_child", Some("http://127.0.0.1:1/v1"), "sk-from-env");
    run("provider_from_env_default_child", None, "");
}

#[test]
fn provider_from_env_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let p = Provider::from_env();
    assert_eq!(p.base_url, "http://127.0.0.1:1/v1");
    assert_eq!(p.api_key.as_deref(), Some("sk-from-env"));
}

#[test]
fn provider_from_env_default_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let p = Provider::from_env();
    assert_eq!(p.base_url, "https://api.openai.com/v1");
    assert_eq!(p.api_key, None);
}
