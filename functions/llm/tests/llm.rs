//! The llm function against the scripted OpenAI-compatible server on 127.0.0.1 (real wire
//! format, streamed in 1-3 character chunks): requests, outputs, structured output and its
//! repair, every error name, the token sink, secrets and the address guard.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fn_llm::{LlmFunction, Settings, Token, TokenSink};
use model_client::testing::{Fault, Reply, ScriptedServer};
use model_client::{Prices, Usage, estimate_tokens};
use node_contract::{NodeError, NodeEvent};
use serde_json::{Value, json};
use tenant_secrets::StaticSecrets;

const ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:wf:0f5e2d1c-0000-4000-8000-000000000001";
const SECRET: &str = "sk-prompt-secret-7f3a9c21b4";
const PROVIDER_KEY: &str = "sk-provider-key-55d0e1aa93";
/// Generous: the assertion is that a call ends, not how fast, on a loaded machine.
const ENDS_WITHIN: Duration = Duration::from_secs(60);

fn event(config: Value) -> NodeEvent {
    let secrets = node_contract::secret_refs(&config);
    NodeEvent {
        node: node_contract::NodeRef { id: "ask".into(), node_type: "llm".into() },
        config,
        execution: node_contract::ExecutionRef { id: ARN.into() },
        attempt: 0,
        scope: None,
        task_token: None,
        secrets,
        state: None,
    }
}

fn settings(server: &ScriptedServer) -> Settings {
    Settings::allowing(&["127.0.0.1"], &server.base_url()).unwrap()
}

fn function(server: &ScriptedServer) -> LlmFunction {
    LlmFunction::new(settings(server)).unwrap()
}

fn secrets() -> Arc<StaticSecrets> {
    let values: BTreeMap<String, String> =
        [("KEY".to_owned(), SECRET.to_owned()), ("PKEY".to_owned(), PROVIDER_KEY.to_owned())].into();
    Arc::new(StaticSecrets::new(values))
}

async fn run(f: &LlmFunction, config: Value) -> Result<Value, NodeError> {
    tokio::time::timeout(ENDS_WITHIN, f.run(event(config))).await.expect("the call ends")
}

fn err_name(outcome: &Result<Value, NodeError>) -> &str {
    match outcome {
        Err(e) => &e.name,
        Ok(v) => panic!("expected an error, got {v}"),
    }
}

/// A sunk token: seq, reply, text, node id, execution ARN.
type Sunk = (u64, u32, String, String, String);

/// Keeps every token.
#[derive(Default)]
struct Recorder {
    tokens: Mutex<Vec<Sunk>>,
    delay: Option<Duration>,
}

impl Recorder {
    fn texts(&self) -> Vec<String> {
        self.tokens.lock().unwrap().iter().map(|t| t.2.clone()).collect()
    }
    fn joined(&self) -> String {
        self.texts().concat()
    }
}

#[async_trait::async_trait]
impl TokenSink for Recorder {
    async fn token(&self, t: Token<'_>) {
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        self.tokens.lock().unwrap().push((
            t.seq,
            t.reply,
            t.text.to_owned(),
            t.node_id.to_owned(),
            t.execution_arn.to_owned(),
        ));
    }
}

/// Never returns from its first token.
struct Blocked;

#[async_trait::async_trait]
impl TokenSink for Blocked {
    async fn token(&self, _t: Token<'_>) {
        std::future::pending::<()>().await;
    }
}

#[tokio::test]
async fn prompt_mode_sends_system_first_and_streams() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let out = run(
        &f,
        json!({"model": "gpt-4o-mini", "system": "Be brief.", "prompt": "Hello there",
               "temperature": 0.25, "max_tokens": 50}),
    )
    .await
    .unwrap();
    let body = server.last_body();
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}])
    );
    assert_eq!(
        (&body["model"], &body["temperature"], &body["max_tokens"]),
        (&json!("gpt-4o-mini"), &json!(0.25), &json!(50))
    );
    assert_eq!((&body["stream"], &body["stream_options"]), (&json!(true), &json!({"include_usage": true})));
    assert!(body.get("response_format").is_none(), "{body}");

    let text = "You said: Hello there";
    let usage = Usage {
        input_tokens: estimate_tokens("Be brief.") + estimate_tokens("Hello there"),
        output_tokens: estimate_tokens(text),
    };
    let cost = Prices::default().cost_usd("gpt-4o-mini", &usage);
    assert!(cost > 0.0);
    assert_eq!(
        out,
        json!({"text": text, "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
               "estimated": false}, "cost_usd": cost, "model": "gpt-4o-mini", "finish_reason": "stop"})
    );
}

#[tokio::test]
async fn messages_mode_sends_the_history_after_the_system_message() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let history = json!([
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"}
    ]);
    let out = run(&f, json!({"model": "local-model", "system": "Maths tutor.", "messages": history})).await.unwrap();
    let mut expected = vec![json!({"role": "system", "content": "Maths tutor."})];
    expected.extend(history.as_array().unwrap().iter().cloned());
    assert_eq!(server.last_body()["messages"], Value::Array(expected));
    assert!(server.last_body().get("temperature").is_none());
    assert_eq!(out["text"], "You said: And 3+3?");
    // An unknown model costs nothing.
    assert_eq!((&out["model"], &out["cost_usd"]), (&json!("local-model"), &json!(0.0)));
}

#[tokio::test]
async fn missing_usage_is_estimated_and_finish_reason_passed_on() {
    let server = ScriptedServer::start().await;
    server.push(Reply::text("a reply cut short").without_usage().with_finish_reason(Some("length")));
    let out = run(&function(&server), json!({"model": "gpt-4o", "prompt": "Tell me a story"})).await.unwrap();
    assert_eq!(
        out["usage"],
        json!({"input_tokens": estimate_tokens("Tell me a story"), "output_tokens": estimate_tokens("a reply cut short"),
               "estimated": true})
    );
    assert_eq!(out["finish_reason"], "length");
    assert!(out["cost_usd"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn json_mode_parses_the_reply() {
    let server = ScriptedServer::start().await;
    server.push(Reply::text("```json\n{\"city\": \"Paris\", \"n\": 2}\n```"));
    let out =
        run(&function(&server), json!({"model": "gpt-4o-mini", "prompt": "JSON please", "response_format": "json"}))
            .await
            .unwrap();
    assert_eq!(server.last_body()["response_format"], json!({"type": "json_object"}));
    assert_eq!(out["json"], json!({"city": "Paris", "n": 2}));
    assert_eq!(server.served(), 1);
    // Text mode has no `json`.
    let out = run(&function(&server), json!({"model": "m", "prompt": "x", "response_format": "text"})).await.unwrap();
    assert!(out.get("json").is_none(), "{out}");
}

fn person_schema() -> Value {
    json!({"type": "object", "required": ["name", "age"],
           "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}})
}

#[tokio::test]
async fn schema_valid_reply_is_json() {
    let server = ScriptedServer::start().await;
    server.push(Reply::json(json!({"name": "Ada", "age": 36})));
    let out =
        run(&function(&server), json!({"model": "gpt-4o-mini", "prompt": "Who?", "response_format": person_schema()}))
            .await
            .unwrap();
    assert_eq!(
        server.last_body()["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "response", "schema": person_schema(), "strict": false}})
    );
    assert_eq!(out["json"], json!({"name": "Ada", "age": 36}));
    assert_eq!(server.served(), 1);
}

#[tokio::test]
async fn schema_invalid_reply_gets_one_repair_request() {
    let server = ScriptedServer::start().await;
    server.push(Reply::json(json!({"name": "Ada", "age": "thirty-six"})));
    server.push(Reply::json(json!({"name": "Ada", "age": 36})));
    let sink = Arc::new(Recorder::default());
    let f = function(&server).with_sink(sink.clone());
    let out =
        run(&f, json!({"model": "gpt-4o-mini", "prompt": "Who?", "response_format": person_schema()})).await.unwrap();
    assert_eq!(out["json"], json!({"name": "Ada", "age": 36}));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let repair = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(repair.len(), 3, "{repair:?}");
    assert_eq!(repair[1], json!({"role": "assistant", "content": r#"{"name":"Ada","age":"thirty-six"}"#}));
    let ask = repair[2]["content"].as_str().unwrap();
    assert!(repair[2]["role"] == "user" && ask.contains("/age") && ask.contains("corrected JSON"), "{ask}");
    assert_eq!(requests[1].body["response_format"], requests[0].body["response_format"]);
    // Usage adds up both calls; the sink saw both replies, told apart.
    let first_in = estimate_tokens("Who?");
    assert!(out["usage"]["input_tokens"].as_u64().unwrap() > 2 * first_in);
    let tokens = sink.tokens.lock().unwrap().clone();
    let replies: BTreeSet<u32> = tokens.iter().map(|t| t.1).collect();
    assert_eq!(replies, [0, 1].into());
    let second: String = tokens.iter().filter(|t| t.1 == 1).map(|t| t.2.as_str()).collect();
    assert_eq!(second, out["text"].as_str().unwrap());
}

#[tokio::test]
async fn schema_invalid_twice_is_bad_response() {
    let server = ScriptedServer::start().await;
    server.push(Reply::json(json!({"name": "Ada"})));
    server.push(Reply::text("sorry, I cannot"));
    let outcome =
        run(&function(&server), json!({"model": "m", "prompt": "Who?", "response_format": person_schema()})).await;
    assert_eq!(err_name(&outcome), "Llm.BadResponse");
    assert!(outcome.unwrap_err().message.contains("after a repair request"));
    assert_eq!(server.served(), 2);
}

#[tokio::test]
async fn provider_faults_have_their_names() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let ask = json!({"model": "gpt-4o-mini", "prompt": "hi"});
    let cases = [
        (Reply::fault(Fault::ServerError), "Llm.Provider"),
        (Reply::fault(Fault::Unauthorized), "Llm.Auth"),
        (Reply::fault(Fault::ContextTooLong), "Llm.ContextTooLong"),
        (Reply::fault(Fault::MalformedJson), "Llm.BadResponse"),
        (Reply::fault(Fault::Status { status: 404, body: json!({"error": "no such model"}) }), "Llm.BadRequest"),
        (Reply::rate_limited(None), "Llm.RateLimited"),
        (Reply::text("a complete reply").cut_after(3), "Llm.Connect"),
    ];
    for (reply, name) in cases {
        server.push(reply);
        assert_eq!(err_name(&run(&f, ask.clone()).await), name);
    }
}

#[tokio::test]
async fn rate_limit_waits_out_a_short_retry_after() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    server.push(Reply::rate_limited(Some("1")));
    let started = Instant::now();
    let outcome = run(&f, json!({"model": "m", "prompt": "hi"})).await;
    assert_eq!(err_name(&outcome), "Llm.RateLimited");
    assert!(started.elapsed() >= Duration::from_millis(950), "{:?}", started.elapsed());
    assert!(outcome.unwrap_err().message.contains("waited 1.0 s"));

    // A Retry-After past the node's deadline is waited out only until the deadline.
    server.push(Reply::rate_limited(Some("600")));
    let outcome = run(&f, json!({"model": "m", "prompt": "hi", "timeout_seconds": 0.5})).await;
    assert!(outcome.unwrap_err().message.contains("capped by the node's timeout"));
}

#[tokio::test]
async fn a_slow_provider_is_a_timeout() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    server.push(Reply::echo().with_delay(Duration::from_secs(5)));
    assert_eq!(err_name(&run(&f, json!({"model": "m", "prompt": "hi", "timeout_seconds": 0.3})).await), "Llm.Timeout");
    // Slow between chunks counts too: the deadline is the whole call's.
    server.push(Reply::text("one two three four five six").with_chunk_delay(Duration::from_millis(200)));
    assert_eq!(err_name(&run(&f, json!({"model": "m", "prompt": "hi", "timeout_seconds": 0.5})).await), "Llm.Timeout");
}

#[tokio::test]
async fn tokens_reach_the_sink_in_order() {
    let server = ScriptedServer::start().await;
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    server.push(Reply::text(long.clone()));
    let sink = Arc::new(Recorder::default());
    let f = function(&server).with_sink(sink.clone());
    let out = run(&f, json!({"model": "m", "prompt": "hi"})).await.unwrap();
    assert_eq!(out["text"], long);
    assert_eq!(sink.joined(), long);
    let tokens = sink.tokens.lock().unwrap().clone();
    for (i, (seq, reply, _, node, arn)) in tokens.iter().enumerate() {
        assert_eq!((*seq, *reply, node.as_str(), arn.as_str()), (i as u64, 0, "ask", ARN));
    }
}

#[tokio::test]
async fn a_slow_sink_gets_coalesced_tokens_and_the_whole_text() {
    let server = ScriptedServer::start().await;
    let long = "Streaming into a slow sink coalesces the pieces. ".repeat(30);
    server.push(Reply::text(long.clone()));
    let sink = Arc::new(Recorder { delay: Some(Duration::from_millis(5)), ..Recorder::default() });
    let mut s = settings(&server);
    s.sink_flush_grace = Duration::from_secs(30);
    let f = LlmFunction::new(s).unwrap().with_sink(sink.clone());
    let out = run(&f, json!({"model": "m", "prompt": "hi"})).await.unwrap();
    assert_eq!(out["text"], long);
    assert_eq!(sink.joined(), long);
}

#[tokio::test]
async fn a_blocked_sink_does_not_hang_the_call() {
    let server = ScriptedServer::start().await;
    let long = "Nobody reads these tokens. ".repeat(40);
    server.push(Reply::text(long.clone()));
    let mut s = settings(&server);
    s.sink_flush_grace = Duration::from_millis(200);
    let f = LlmFunction::new(s).unwrap().with_sink(Arc::new(Blocked));
    let out = run(&f, json!({"model": "m", "prompt": "hi"})).await.unwrap();
    assert_eq!(out["text"], long);
}

#[tokio::test]
async fn a_secret_in_the_prompt_never_leaves_unscrubbed() {
    let server = ScriptedServer::start().await;
    let sink = Arc::new(Recorder::default());
    let f = function(&server).with_secrets(secrets()).with_sink(sink.clone());
    let config = json!({"model": "gpt-4o-mini", "system": "Key: {{ secrets.KEY }}",
                        "prompt": "Repeat after me: {{ secrets.KEY }} and then say goodbye, twice: {{ secrets.KEY }}"});
    let out = run(&f, config.clone()).await.unwrap();
    // The provider got the value (that is the point of the template)...
    assert!(server.last_body()["messages"][1]["content"].as_str().unwrap().contains(SECRET));
    // ...the echo of it came back, and reached neither the output nor the sink.
    let text = out["text"].as_str().unwrap();
    assert_eq!(text, "You said: Repeat after me: *** and then say goodbye, twice: ***");
    assert!(!out.to_string().contains(SECRET));
    let sunk = sink.joined();
    assert_eq!(sunk, text);
    for piece in sink.texts() {
        assert!(!piece.contains("sk-prompt"), "{piece}");
    }

    // A provider error quoting the prompt is scrubbed too.
    server.push(Reply::fault(Fault::Status {
        status: 400,
        body: json!({"error": {"message": format!("content policy: '{SECRET}' is not allowed")}}),
    }));
    let e = run(&f, config).await.unwrap_err();
    assert_eq!(e.name, "Llm.BadRequest");
    assert!(!e.message.contains(SECRET) && e.message.contains("***"), "{}", e.message);
}

#[tokio::test]
async fn a_tenant_provider_takes_its_key_from_a_secret() {
    let server = ScriptedServer::start().await;
    // The operator's provider is elsewhere: the call must use the tenant's.
    let f = LlmFunction::new(Settings::allowing(&["127.0.0.1"], "http://127.0.0.1:9/v1").unwrap())
        .unwrap()
        .with_secrets(secrets());
    let provider = json!({"base_url": server.base_url(), "api_key": "{{ secrets.PKEY }}"});
    let out = run(&f, json!({"model": "m", "prompt": "hi", "provider": provider})).await.unwrap();
    assert_eq!(out["text"], "You said: hi");
    assert_eq!(server.requests()[0].authorization.as_deref(), Some(format!("Bearer {PROVIDER_KEY}").as_str()));

    // The server quotes the key back in a 401: the message has it scrubbed.
    server.push(Reply::fault(Fault::Unauthorized));
    let e = run(&f, json!({"model": "m", "prompt": "hi", "provider": provider})).await.unwrap_err();
    assert_eq!(e.name, "Llm.Auth");
    assert!(!e.message.contains(PROVIDER_KEY), "{}", e.message);

    // A literal key is refused before anything is sent.
    let served = server.served();
    let literal = json!({"base_url": server.base_url(), "api_key": "sk-literal-in-the-graph"});
    let e = run(&f, json!({"model": "m", "prompt": "hi", "provider": literal})).await.unwrap_err();
    assert_eq!(e.name, "Config.Invalid");
    assert!(e.message.starts_with("config.provider.api_key:"), "{}", e.message);
    assert_eq!(server.served(), served);
}

#[tokio::test]
async fn tenant_providers_go_through_the_address_guard() {
    let server = ScriptedServer::start().await;
    // Nothing allow-listed: the operator's provider (loopback here) still works, a tenant's
    // loopback or metadata URL does not.
    let f = LlmFunction::new(Settings::allowing(&[], &server.base_url()).unwrap()).unwrap();
    assert_eq!(run(&f, json!({"model": "m", "prompt": "hi"})).await.unwrap()["text"], "You said: hi");
    let port = server.addr().port();
    for base_url in [
        format!("http://127.0.0.1:{port}/v1"),
        format!("http://localhost:{port}/v1"),
        "http://169.254.169.254/v1".to_owned(),
        "http://[::ffff:127.0.0.1]:9/v1".to_owned(),
    ] {
        let outcome = run(&f, json!({"model": "m", "prompt": "hi", "provider": {"base_url": base_url}})).await;
        assert_eq!(err_name(&outcome), "Llm.ForbiddenAddress", "{base_url}");
    }
    assert_eq!(server.served(), 1);
}

#[tokio::test]
async fn config_problems_name_the_field() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let cases = [
        (json!({"prompt": "hi"}), "config.model:"),
        (json!({"model": 3, "prompt": "hi"}), "config.model:"),
        (json!({"model": "m"}), "config.prompt:"),
        (json!({"model": "m", "prompt": "hi", "messages": []}), "config.prompt:"),
        (json!({"model": "m", "prompt": 7}), "config.prompt:"),
        (json!({"model": "m", "messages": []}), "config.messages:"),
        (json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}), "config.messages[0]:"),
        (json!({"model": "m", "prompt": "hi", "system": ["x"]}), "config.system:"),
        (json!({"model": "m", "prompt": "hi", "temperature": 3}), "config.temperature:"),
        (json!({"model": "m", "prompt": "hi", "max_tokens": 0}), "config.max_tokens:"),
        (json!({"model": "m", "prompt": "hi", "response_format": "xml"}), "config.response_format:"),
        (json!({"model": "m", "prompt": "hi", "response_format": {"type": 5}}), "config.response_format:"),
        (
            json!({"model": "m", "prompt": "hi", "response_format": {"$ref": "http://example.com/s.json"}}),
            "config.response_format:",
        ),
        (json!({"model": "m", "prompt": "hi", "timeout_seconds": 0}), "config.timeout_seconds:"),
        (json!({"model": "m", "prompt": "hi", "timeout_seconds": 5000}), "config.timeout_seconds:"),
        (json!({"model": "m", "prompt": "hi", "provider": "openrouter"}), "config.provider:"),
        (json!({"model": "m", "prompt": "hi", "provider": {}}), "config.provider.base_url:"),
        (json!({"model": "m", "prompt": "hi", "provider": {"base_url": "ftp://x/v1"}}), "config.provider.base_url:"),
    ];
    for (config, field) in cases {
        let e = run(&f, config.clone()).await.unwrap_err();
        assert_eq!(e.name, "Config.Invalid", "{config}");
        assert!(e.message.starts_with(field), "{config}: {}", e.message);
    }
    assert_eq!(err_name(&run(&f, json!("not an object")).await), "Config.Invalid");
    assert_eq!(server.served(), 0);
}

#[tokio::test]
async fn secrets_without_a_store_or_execution_fail_by_name() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let outcome = run(&f, json!({"model": "m", "prompt": "{{ secrets.KEY }}"})).await;
    assert_eq!(err_name(&outcome), "Secret.NotFound");
    let mut e = event(json!({"model": "m", "prompt": "{{ secrets.KEY }}"}));
    e.execution.id.clear();
    assert_eq!(f.with_secrets(secrets()).run(e).await.unwrap_err().name, "Secret.NotFound");
    assert_eq!(server.served(), 0);
}
