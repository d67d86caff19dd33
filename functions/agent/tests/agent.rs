//! The agent function against the scripted OpenAI-compatible server on 127.0.0.1 (real wire
//! format, text and tool-call arguments streamed in 1-3 character chunks): turns with tool
//! calls and results, tool-call safety, max_steps, budgets, the multi_agent roles, transcript
//! limits, structured output, error names, the token sink and secrets.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fn_agent::{AgentFunction, Settings, Token, TokenSink};
use model_client::testing::{Fault, Reply, ScriptedServer};
use model_client::{Prices, Usage, estimate_tokens};
use node_contract::{NodeError, NodeEvent};
use serde_json::{Value, json};
use tenant_secrets::StaticSecrets;

const ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:wf:0f5e2d1c-0000-4000-8000-0000000000a1";
const SECRET: &str = "sk-prompt-secret-7f3a9c21b4";
const OPERATOR_KEY: &str = "sk-operator-key-31c5aa0e77";
/// Generous: the assertion is that a call ends, not how fast, on a loaded machine.
const ENDS_WITHIN: Duration = Duration::from_secs(60);
const MODEL: &str = "gpt-4o-mini";

fn event(config: Value, state: Option<Value>) -> NodeEvent {
    let secrets = node_contract::secret_refs(&config);
    NodeEvent {
        node: node_contract::NodeRef { id: "a".into(), node_type: "agent".into() },
        config,
        execution: node_contract::ExecutionRef { id: ARN.into() },
        attempt: 0,
        scope: None,
        task_token: None,
        secrets,
        state,
    }
}

fn settings(server: &ScriptedServer) -> Settings {
    Settings::allowing(&["127.0.0.1"], &server.base_url()).unwrap()
}

fn function(server: &ScriptedServer) -> AgentFunction {
    AgentFunction::new(settings(server)).unwrap()
}

async fn run(f: &AgentFunction, config: &Value, state: Option<Value>) -> Result<Value, NodeError> {
    tokio::time::timeout(ENDS_WITHIN, f.run(event(config.clone(), state))).await.expect("the turn ends")
}

fn err(outcome: Result<Value, NodeError>) -> NodeError {
    match outcome {
        Err(e) => e,
        Ok(v) => panic!("expected an error, got {v}"),
    }
}

fn weather_tools() -> Value {
    json!([
        {"name": "get_weather", "description": "The weather in a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "lookup", "description": "Searches the notes", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}
    ])
}

fn agent_config() -> Value {
    json!({"model": MODEL, "instructions": "You are a helpful assistant.", "input": "What is the weather in Paris?",
           "tools": weather_tools()})
}

/// The scripted server's usage for a request with `messages` (by content) and a reply.
fn usage(contents: &[&str], reply_text: &str, calls: &[(&str, &str)]) -> Usage {
    Usage {
        input_tokens: contents.iter().map(|c| estimate_tokens(c)).sum(),
        output_tokens: estimate_tokens(reply_text)
            + calls.iter().map(|(n, a)| estimate_tokens(n) + estimate_tokens(a)).sum::<u64>(),
    }
}

fn cost(u: &Usage) -> f64 {
    Prices::default().cost_usd(MODEL, u)
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-12
}

/// The working state the next turn receives: this turn's, with the Map's `results`.
fn with_results(mut state: Value, results: Value) -> Value {
    state["results"] = results;
    state
}

/// A sunk token: seq, reply, text, node id, agent.
type Sunk = (u64, u32, String, String, Option<String>);

#[derive(Default)]
struct Recorder {
    tokens: Mutex<Vec<Sunk>>,
}

impl Recorder {
    fn joined(&self) -> String {
        self.tokens.lock().unwrap().iter().map(|t| t.2.as_str()).collect()
    }
}

#[async_trait::async_trait]
impl TokenSink for Recorder {
    async fn token(&self, t: Token<'_>) {
        assert_eq!(t.execution_arn, ARN);
        self.tokens.lock().unwrap().push((
            t.seq,
            t.reply,
            t.text.to_owned(),
            t.node_id.to_owned(),
            t.agent.map(str::to_owned),
        ));
    }
}

#[tokio::test]
async fn a_tool_turn_then_the_results_then_the_final_answer() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let config = agent_config();
    let calls = [
        ("get_weather", r#"{"city":"Paris"}"#),
        ("lookup", r#"{"q":"umbrella"}"#),
        ("get_weather", r#"{"city":"Atlantis"}"#),
    ];
    server.push(Reply::tool_calls(calls.to_vec()));
    let first = run(&f, &config, None).await.unwrap();

    // The request: system + user, the declared tools, no max_tokens (no budget).
    let body = server.last_body();
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "You are a helpful assistant."},
               {"role": "user", "content": "What is the weather in Paris?"}])
    );
    assert_eq!(
        body["tools"][0],
        json!({"type": "function", "function": {"name": "get_weather",
        "description": "The weather in a city", "parameters": weather_tools()[0]["parameters"]}})
    );
    assert_eq!(body["tools"].as_array().unwrap().len(), 2);
    assert!(body.get("max_tokens").is_none() && body.get("tool_choice").is_none(), "{body}");

    let u1 = usage(&["You are a helpful assistant.", "What is the weather in Paris?"], "", &calls);
    assert_eq!(first["turn"], 1);
    assert_eq!(first["status"], "tools");
    assert_eq!(
        first["calls"],
        json!([
            {"id": "call_0", "key": "get_weather", "name": "get_weather", "args": {"city": "Paris"}},
            {"id": "call_1", "key": "lookup", "name": "lookup", "args": {"q": "umbrella"}},
            {"id": "call_2", "key": "get_weather", "name": "get_weather", "args": {"city": "Atlantis"}}
        ])
    );
    assert_eq!(
        first["usage"],
        json!({"input_tokens": u1.input_tokens, "output_tokens": u1.output_tokens, "estimated": false})
    );
    assert!(cost(&u1) > 0.0 && close(&first["cost_usd"], cost(&u1)));
    assert_eq!(first["event"]["turn"], 1);
    assert_eq!(first["event"]["status"], "tools");
    assert_eq!(first["event"]["text"], "");
    assert_eq!(first["event"]["calls"][1], json!({"name": "lookup", "args": {"q": "umbrella"}}));
    assert_eq!(
        first["event"]["usage"],
        json!({"input_tokens": u1.input_tokens, "output_tokens": u1.output_tokens, "estimated": false})
    );
    assert!(first.get("event").unwrap().get("agent").is_none());
    assert!(first.get("output").is_none() && first.get("results").is_none());
    assert_eq!(first["steps"], json!([]));
    assert_eq!(first["messages"].as_array().unwrap().len(), 2, "{}", first["messages"]);

    // The Map ran the calls: an object result, a string result, a failure (a Lambda error).
    let lambda_cause =
        json!({"errorType": "Http.Status4xx", "errorMessage": "HTTP 404 from weather.example.com"}).to_string();
    let state = with_results(
        first.clone(),
        json!([
            {"id": "call_0", "name": "get_weather", "args": {"city": "Paris"}, "result": {"temp_c": 21, "sky": "clear"}},
            {"id": "call_1", "name": "lookup", "args": {"q": "umbrella"}, "result": "No umbrella needed."},
            {"id": "call_2", "name": "get_weather", "args": {"city": "Atlantis"}, "error": "Http.Status4xx", "cause": lambda_cause}
        ]),
    );
    let answer = "It is 21 °C and clear in Paris.";
    server.push(Reply::text(answer));
    let second = run(&f, &config, Some(state)).await.unwrap();

    let sent = server.last_body()["messages"].clone();
    let sent = sent.as_array().unwrap();
    assert_eq!(sent.len(), 6, "{sent:?}");
    assert_eq!(sent[2]["role"], "assistant");
    assert_eq!(
        sent[2]["tool_calls"][0],
        json!({"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": r#"{"city":"Paris"}"#}})
    );
    let tool_messages: Vec<(&str, &str, &str)> = sent[3..]
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["tool_call_id"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tool_messages,
        [
            ("tool", "call_0", r#"{"temp_c":21,"sky":"clear"}"#),
            ("tool", "call_1", "No umbrella needed."),
            ("tool", "call_2", "error: Http.Status4xx: HTTP 404 from weather.example.com"),
        ]
    );

    let contents: Vec<&str> = sent.iter().map(|m| m["content"].as_str().unwrap()).collect();
    let u2 = usage(&contents, answer, &[]);
    let total =
        Usage { input_tokens: u1.input_tokens + u2.input_tokens, output_tokens: u1.output_tokens + u2.output_tokens };
    assert_eq!(second["turn"], 2);
    assert_eq!(second["status"], "final");
    assert!(second.get("calls").is_none() && second.get("results").is_none(), "{second}");
    let steps = json!([
        {"tool": "get_weather", "args": {"city": "Paris"}, "result": {"temp_c": 21, "sky": "clear"}},
        {"tool": "lookup", "args": {"q": "umbrella"}, "result": "No umbrella needed."},
        {"tool": "get_weather", "args": {"city": "Atlantis"}, "error": "Http.Status4xx: HTTP 404 from weather.example.com"}
    ]);
    let output = &second["output"];
    assert_eq!(output["answer"], answer);
    assert_eq!(output["steps"], steps);
    assert_eq!(second["steps"], steps);
    assert_eq!(
        output["usage"],
        json!({"input_tokens": total.input_tokens, "output_tokens": total.output_tokens, "estimated": false})
    );
    assert!(close(&output["cost_usd"], cost(&u1) + cost(&u2)));
    assert_eq!(output.as_object().unwrap().keys().collect::<Vec<_>>(), ["answer", "steps", "usage", "cost_usd"]);
    assert_eq!(second["event"]["text"], answer);
    assert_eq!(
        second["event"]["usage"],
        json!({"input_tokens": u2.input_tokens, "output_tokens": u2.output_tokens, "estimated": false})
    );
    // The transcript: everything sent but the system message, and the answer.
    let mut transcript: Vec<Value> = sent[1..].to_vec();
    transcript.push(json!({"role": "assistant", "content": answer}));
    assert_eq!(second["messages"], Value::Array(transcript));
}

#[tokio::test]
async fn undeclared_tools_and_bad_arguments_are_answered_never_run() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let config = agent_config();
    server.push(Reply::tool_calls(vec![
        ("delete_all", "{}"),
        ("get_weather", "{not json"),
        ("get_weather", r#"{"city": 5}"#),
        ("get_weather", "[1]"),
        ("lookup", ""),
        ("get_weather", r#"{"city":"Oslo"}"#),
    ]));
    let first = run(&f, &config, None).await.unwrap();
    assert_eq!(first["status"], "tools");
    // Only the valid calls of declared tools go to the Map (empty arguments are `{}`).
    assert_eq!(
        first["calls"],
        json!([{"id": "call_4", "key": "lookup", "name": "lookup", "args": {}},
               {"id": "call_5", "key": "get_weather", "name": "get_weather", "args": {"city": "Oslo"}}])
    );
    let messages = first["messages"].as_array().unwrap();
    assert_eq!(messages[1]["tool_calls"].as_array().unwrap().len(), 6);
    let answers: Vec<(&str, &str)> =
        messages[2..].iter().map(|m| (m["tool_call_id"].as_str().unwrap(), m["content"].as_str().unwrap())).collect();
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_eq!(
        answers[0],
        (
            "call_0",
            r#"error: Agent.UnknownTool: the node declares no tool named "delete_all"; declared: get_weather, lookup"#
        )
    );
    assert_eq!(answers[1].0, "call_1");
    assert!(
        answers[1].1.starts_with("error: Agent.InvalidArguments: the arguments of get_weather are not valid JSON"),
        "{}",
        answers[1].1
    );
    assert!(
        answers[2].1.starts_with(
            "error: Agent.InvalidArguments: the arguments of get_weather do not match its parameters: at /city"
        ),
        "{}",
        answers[2].1
    );
    assert!(
        answers[3].1.starts_with(
            "error: Agent.InvalidArguments: the arguments of get_weather must be a JSON object, got array"
        ),
        "{}",
        answers[3].1
    );
    let steps = first["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[0]["tool"], "delete_all");
    assert_eq!(steps[0]["args"], json!({}));
    assert!(steps[0]["error"].as_str().unwrap().starts_with("Agent.UnknownTool: the node declares no tool named"));
    assert_eq!(steps[1]["args"], "{not json");
    // The event lists what the model asked, refused calls included.
    assert_eq!(first["event"]["calls"][0], json!({"name": "delete_all", "args": {}}));

    // The next turn answers the two calls that ran, after the refusals: every call answered once.
    let state = with_results(
        first,
        json!([{"id": "call_4", "name": "lookup", "args": {}, "result": "nothing"},
               {"id": "call_5", "name": "get_weather", "args": {"city": "Oslo"}, "result": {"temp_c": 3}}]),
    );
    run(&f, &config, Some(state)).await.unwrap();
    let sent = server.last_body()["messages"].clone();
    let ids: Vec<&str> = sent.as_array().unwrap().iter().filter_map(|m| m["tool_call_id"].as_str()).collect();
    assert_eq!(ids, ["call_0", "call_1", "call_2", "call_3", "call_4", "call_5"]);

    // Nothing declared was called: status tools with no calls, the model sees the error next turn.
    server.push(Reply::tool_calls(vec![("rm_rf", "{}")]));
    let only_unknown = run(&f, &config, None).await.unwrap();
    assert_eq!((&only_unknown["status"], &only_unknown["calls"]), (&json!("tools"), &json!([])));
    server.push(Reply::text("Sorry, I cannot do that."));
    let next = run(&f, &config, Some(only_unknown)).await.unwrap();
    assert_eq!(next["output"]["answer"], "Sorry, I cannot do that.");
    assert_eq!(next["steps"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn at_most_sixteen_calls_run_per_turn() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let calls: Vec<(String, String)> = (0..18).map(|i| ("lookup".to_owned(), format!(r#"{{"q":"{i}"}}"#))).collect();
    server.push(Reply::tool_calls(calls));
    let out = run(&f, &agent_config(), None).await.unwrap();
    assert_eq!(out["calls"].as_array().unwrap().len(), 16);
    let messages = out["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert!(messages[2]["content"].as_str().unwrap().starts_with("error: Agent.TooManyCalls: at most 16"));
    assert_eq!(messages[3]["tool_call_id"], "call_17");
}

#[tokio::test]
async fn a_call_without_a_result_is_answered_as_such() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    server.push(Reply::tool_calls(vec![("lookup", r#"{"q":"a"}"#), ("lookup", r#"{"q":"b"}"#)]));
    let first = run(&f, &agent_config(), None).await.unwrap();
    // Only one result, and one for a call never made.
    let state = with_results(
        first,
        json!([{"id": "call_1", "name": "lookup", "args": {"q": "b"}, "result": "B"},
               {"id": "call_9", "name": "lookup", "args": {}, "result": "stray"}]),
    );
    let out = run(&f, &agent_config(), Some(state)).await.unwrap();
    let sent = server.last_body()["messages"].clone();
    let tools: Vec<(&str, &str)> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| (m["tool_call_id"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tools,
        [("call_0", "error: Agent.NoResult: the tool call returned no result (it was not run)"), ("call_1", "B")]
    );
    assert_eq!(out["steps"][0]["error"], "Agent.NoResult: the tool call returned no result (it was not run)");
}

#[tokio::test]
async fn max_steps_fails_or_answers() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let mut config = agent_config();
    config["max_steps"] = json!(2);
    // Turn 1 asked for a tool, with some text.
    let state = json!({
        "turn": 1,
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": "Let me check the weather.",
             "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}
        ],
        "steps": [],
        "results": [{"id": "call_0", "name": "get_weather", "args": {"city": "Paris"}, "result": {"temp_c": 21}}]
    });
    server.push(Reply::tool_calls(vec![("get_weather", r#"{"city":"Lyon"}"#)]));
    let e = err(run(&f, &config, Some(state.clone())).await);
    assert_eq!(e.name, "Agent.MaxSteps");
    assert!(e.message.contains("after 2 model calls"), "{}", e.message);

    config["on_max_steps"] = json!("answer");
    server.push(Reply::tool_calls(vec![("get_weather", r#"{"city":"Lyon"}"#)]));
    let out = run(&f, &config, Some(state.clone())).await.unwrap();
    assert_eq!(out["status"], "final");
    assert_eq!(out["turn"], 2);
    assert_eq!(out["output"]["answer"], "Let me check the weather.");
    assert_eq!(out["output"]["stopped"], "max_steps");
    assert_eq!(
        out["output"]["steps"],
        json!([{"tool": "get_weather", "args": {"city": "Paris"}, "result": {"temp_c": 21}}])
    );
    assert_eq!(out["event"]["calls"], json!([{"name": "get_weather", "args": {"city": "Lyon"}}]));

    // A final text at the last step is a normal answer.
    server.push(Reply::text("21 °C."));
    let out = run(&f, &config, Some(state.clone())).await.unwrap();
    assert_eq!(out["output"]["answer"], "21 °C.");
    assert!(out["output"].get("stopped").is_none());

    // A state already at max_steps makes no call.
    let served = server.served();
    let mut spent = state;
    spent["turn"] = json!(2);
    assert_eq!(err(run(&f, &config, Some(spent)).await).name, "Agent.MaxSteps");
    assert_eq!(server.served(), served);
}

#[tokio::test]
async fn the_budget_is_checked_before_and_after_and_caps_the_request() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let carried =
        |input: u64, output: u64| json!({"usage": {"input_tokens": input, "output_tokens": output}, "cost_usd": 0.01});
    let mut config = agent_config();
    config["max_tokens"] = json!(100);

    // Carried already uses it all: no call.
    let e = err(run(&f, &config, Some(json!({"turn": 0, "carried": carried(60, 40)}))).await);
    assert_eq!(e.name, "Agent.BudgetExceeded");
    assert!(e.message.contains("used 100 tokens of the budget of 100"), "{}", e.message);
    assert_eq!(server.served(), 0);

    // What is left caps the request.
    config["max_tokens"] = json!(1000);
    run(&f, &config, Some(json!({"turn": 0, "carried": carried(30, 20)}))).await.unwrap();
    assert_eq!(server.last_body()["max_tokens"], 950);

    // The seed's budget overrides max_tokens; null is no cap.
    run(&f, &config, Some(json!({"turn": 0, "budget": 300}))).await.unwrap();
    assert_eq!(server.last_body()["max_tokens"], 300);
    run(&f, &config, Some(json!({"turn": 0, "budget": null}))).await.unwrap();
    assert!(server.last_body().get("max_tokens").is_none());
    // A remainder larger than models can write is not sent (the check after the call holds).
    run(&f, &config, Some(json!({"turn": 0, "budget": 100_000}))).await.unwrap();
    assert!(server.last_body().get("max_tokens").is_none());

    // The call itself goes over: the prompt alone is more than 20 tokens.
    config["max_tokens"] = json!(20);
    let served = server.served();
    let e = err(run(&f, &config, None).await);
    assert_eq!(e.name, "Agent.BudgetExceeded");
    assert!(e.message.contains("of the budget of 20"), "{}", e.message);
    assert_eq!(server.served(), served + 1);
}

#[tokio::test]
async fn a_sequential_agent_reads_prior_and_carried() {
    let server = ScriptedServer::start().await;
    let sink = Arc::new(Recorder::default());
    let f = function(&server).with_sink(sink.clone());
    let config = json!({"model": MODEL, "instructions": "Write the article.", "input": "ignored: the seed's input wins",
                        "agent": "writer"});
    let researcher = json!({"name": "researcher", "answer": "Paris has 2.1 million inhabitants.",
                            "usage": {"input_tokens": 100, "output_tokens": 20, "estimated": false}, "cost_usd": 0.001});
    let seed = json!({"turn": 0, "input": "Paris has 2.1 million inhabitants.", "prior": [researcher],
                      "carried": {"usage": {"input_tokens": 100, "output_tokens": 20}, "cost_usd": 0.001}});
    let text = "Paris, a city of 2.1 million.";
    server.push(Reply::text(text));
    let out = run(&f, &config, Some(seed.clone())).await.unwrap();
    let sent = server.last_body()["messages"].clone();
    assert_eq!(
        sent[0]["content"],
        "Write the article.\n\nWhat the agents before you answered (context):\n- researcher: Paris has 2.1 million inhabitants."
    );
    assert_eq!(sent[1], json!({"role": "user", "content": "Paris has 2.1 million inhabitants."}));
    let contents: Vec<&str> = sent.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    let own = usage(&contents, text, &[]);
    let o = &out["output"];
    assert_eq!(
        o.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["name", "answer", "steps", "usage", "cost_usd", "agents", "total"]
    );
    assert_eq!((&o["name"], &o["answer"], &o["steps"]), (&json!("writer"), &json!(text), &json!([])));
    assert_eq!(
        o["usage"],
        json!({"input_tokens": own.input_tokens, "output_tokens": own.output_tokens, "estimated": false})
    );
    assert_eq!(
        o["agents"][0],
        json!({"name": "researcher", "answer": "Paris has 2.1 million inhabitants.",
        "usage": {"input_tokens": 100, "output_tokens": 20, "estimated": false}, "cost_usd": 0.001})
    );
    assert_eq!(o["agents"][1]["name"], "writer");
    assert_eq!(o["agents"][1]["usage"], o["usage"]);
    assert_eq!(
        o["total"]["usage"],
        json!({"input_tokens": 100 + own.input_tokens, "output_tokens": 20 + own.output_tokens, "estimated": false})
    );
    assert!(close(&o["total"]["cost_usd"], 0.001 + cost(&own)));
    // Seed fields are carried over; the event names the agent; tokens carry it too.
    assert_eq!(out["prior"], seed["prior"]);
    assert_eq!(out["event"]["agent"], "writer");
    assert_eq!(sink.joined(), text);
    for (i, (seq, reply, _, node, agent)) in sink.tokens.lock().unwrap().iter().enumerate() {
        assert_eq!((*seq, *reply, node.as_str(), agent.as_deref()), (i as u64, 0, "a", Some("writer")));
    }

    // The last agent: the node's output, with totals.
    let mut last = config.clone();
    last["last"] = json!(true);
    server.push(Reply::text(text));
    let out = run(&f, &last, Some(seed)).await.unwrap();
    let o = &out["output"];
    assert_eq!(o.as_object().unwrap().keys().collect::<Vec<_>>(), ["answer", "agents", "usage", "cost_usd"]);
    assert_eq!(o["usage"]["input_tokens"], 100 + own.input_tokens);
    assert_eq!(o["agents"].as_array().unwrap().len(), 2);
    assert!(close(&o["cost_usd"], 0.001 + cost(&own)));
}

#[tokio::test]
async fn a_supervisor_delegates_and_adds_up_its_agents() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let config = json!({"model": MODEL, "instructions": "Answer the question.", "input": "How tall is the Eiffel tower?",
        "role": "supervisor", "agent": "supervisor", "last": true, "max_tokens": 5000,
        "agents": [{"name": "research", "description": "finds facts"}, {"name": "math", "description": "computes"}]});
    server.push(Reply::tool_calls(vec![("transfer_to_research", r#"{"task":"find the height of the Eiffel tower"}"#)]));
    let first = run(&f, &config, None).await.unwrap();
    let body = server.last_body();
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system
            .starts_with("Answer the question.\n\nYou lead these agents:\n- research: finds facts\n- math: computes\n"),
        "{system}"
    );
    assert!(system.contains("transfer_to_<name>(task)"), "{system}");
    let names: Vec<&str> =
        body["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["transfer_to_research", "transfer_to_math"]);
    assert_eq!(
        body["tools"][0]["function"]["parameters"],
        json!({"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]})
    );
    let used = first["usage"]["input_tokens"].as_u64().unwrap() + first["usage"]["output_tokens"].as_u64().unwrap();
    assert_eq!(
        first["calls"],
        json!([{"id": "call_0", "key": "transfer_to_research", "name": "transfer_to_research",
                "args": {"task": "find the height of the Eiffel tower"}, "budget": 5000 - used}])
    );

    // The sub-agent loop's output is the transfer's result.
    let sub = json!({"name": "research", "answer": "330 m", "steps": [],
        "usage": {"input_tokens": 200, "output_tokens": 30, "estimated": false}, "cost_usd": 0.002,
        "agents": [{"name": "research", "answer": "330 m", "usage": {"input_tokens": 200, "output_tokens": 30, "estimated": false}, "cost_usd": 0.002}],
        "total": {"usage": {"input_tokens": 200, "output_tokens": 30, "estimated": false}, "cost_usd": 0.002}});
    let state = with_results(
        first.clone(),
        json!([{"id": "call_0", "name": "transfer_to_research",
        "args": {"task": "find the height of the Eiffel tower"}, "result": sub}]),
    );
    server.push(Reply::text("The Eiffel tower is 330 m tall."));
    let out = run(&f, &config, Some(state)).await.unwrap();
    let sent = server.last_body()["messages"].clone();
    assert_eq!(sent[3], json!({"role": "tool", "content": "330 m", "tool_call_id": "call_0"}));
    let own_in = out["usage"]["input_tokens"].as_u64().unwrap();
    let own_out = out["usage"]["output_tokens"].as_u64().unwrap();
    let o = &out["output"];
    assert_eq!(o["answer"], "The Eiffel tower is 330 m tall.");
    assert_eq!(o["usage"], json!({"input_tokens": own_in + 200, "output_tokens": own_out + 30, "estimated": false}));
    let agents: Vec<&str> = o["agents"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(agents, ["research", "supervisor"]);
    assert!(close(&o["cost_usd"], 0.002 + out["cost_usd"].as_f64().unwrap()));
    assert_eq!(
        out["steps"],
        json!([{"tool": "transfer_to_research", "args": {"task": "find the height of the Eiffel tower"}, "result": "330 m"}])
    );
    assert_eq!(out["carried"]["usage"]["input_tokens"], 200);

    // A supervisor's budget counts its agents: the next transfer gets what is left.
    let mut tight = config.clone();
    tight["max_tokens"] = json!(used + 230 + 5);
    let state =
        with_results(first, json!([{"id": "call_0", "name": "transfer_to_research", "args": {}, "result": sub}]));
    let e = err(run(&f, &tight, Some(state)).await);
    assert_eq!(e.name, "Agent.BudgetExceeded");
}

#[tokio::test]
async fn an_aggregator_combines_the_answers() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let config = json!({"model": MODEL, "instructions": "You are the editor.", "role": "aggregator", "agent": "aggregator",
                        "task": "Is Paris bigger than Lyon?", "last": true});
    let prior = json!([
        {"name": "optimist", "answer": "Yes, by far.", "usage": {"input_tokens": 10, "output_tokens": 5}, "cost_usd": 0.0005, "steps": []},
        {"name": "pessimist", "answer": "Yes, sadly.", "usage": {"input_tokens": 12, "output_tokens": 6}, "cost_usd": 0.0006, "steps": []}
    ]);
    server.push(Reply::text("Both agree: yes."));
    let out = run(&f, &config, Some(json!({"turn": 0, "prior": prior}))).await.unwrap();
    let sent = server.last_body()["messages"].clone();
    assert!(sent[0]["content"].as_str().unwrap().contains("Combine the agents' answers"));
    assert_eq!(
        sent[1]["content"],
        "Task:\nIs Paris bigger than Lyon?\n\nThe agents' answers:\n\n## optimist\nYes, by far.\n\n## pessimist\nYes, sadly."
    );
    let o = &out["output"];
    let names: Vec<&str> = o["agents"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["optimist", "pessimist", "aggregator"]);
    // No `carried`: the prior's usage is the carried total.
    assert_eq!(o["usage"]["input_tokens"].as_u64().unwrap(), 22 + out["usage"]["input_tokens"].as_u64().unwrap());
    assert!(close(&o["cost_usd"], 0.0011 + out["cost_usd"].as_f64().unwrap()));
}

/// A state whose last assistant message made `n` calls of `lookup`.
fn pending_state(n: usize, results: Vec<Value>) -> Value {
    let calls: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("call_{i}"), "type": "function", "function": {"name": "lookup", "arguments": "{}"}}))
        .collect();
    json!({"turn": 1, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": calls}],
           "steps": [], "results": results})
}

#[tokio::test]
async fn long_tool_results_are_cut_and_old_ones_shortened() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let big = "x".repeat(40 * 1024);
    let state = pending_state(1, vec![json!({"id": "call_0", "name": "lookup", "args": {}, "result": big})]);
    let out = run(&f, &agent_config(), Some(state)).await.unwrap();
    let marker = format!("…[truncated {} bytes]", 40 * 1024 - 16 * 1024);
    let content = out["messages"][2]["content"].as_str().unwrap();
    assert_eq!(content, format!("{}{marker}", "x".repeat(16 * 1024)));
    assert_eq!(out["steps"][0]["result"], content);
    assert_eq!(server.last_body()["messages"][3]["content"], content);

    // Six results of 15 KiB, kept in the transcript, the steps and the output's steps, are too
    // much for the state: the oldest are shortened to 1 KiB until it fits.
    let results: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("call_{i}"), "name": "lookup", "args": {}, "result": format!("{i}:{}", "y".repeat(15 * 1024))}))
        .collect();
    let out = run(&f, &agent_config(), Some(pending_state(6, results))).await.unwrap();
    assert!(out.to_string().len() <= 200 * 1024, "{}", out.to_string().len());
    let first = out["messages"][2]["content"].as_str().unwrap();
    assert!(first.starts_with("0:") && first.len() < 1100 && first.contains("…[truncated"), "{}", first.len());
    assert!(out["steps"][0]["result"].as_str().unwrap().len() < 1100);
    let last = out["messages"][7]["content"].as_str().unwrap();
    assert!(last.starts_with("5:") && !last.contains("truncated"));
    assert_eq!(out["output"]["steps"], out["steps"]);
    // The model saw them whole (the shortening is of the stored state).
    assert!(server.last_body()["messages"][3]["content"].as_str().unwrap().len() > 15 * 1024);

    // What cannot be shortened: a 300 KiB task.
    let mut config = agent_config();
    config["input"] = json!("z".repeat(300 * 1024));
    server.push(Reply::text("ok"));
    let e = err(run(&f, &config, None).await);
    assert_eq!(e.name, "Agent.TranscriptTooLarge");
    assert!(e.message.contains("200 KiB"), "{}", e.message);
}

#[tokio::test]
async fn child_workflow_failures_read_as_the_childs_error() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let description = json!({"executionArn": "arn:...:child", "status": "FAILED", "Error": "Code.Error",
                             "Cause": "{\"errorType\":\"Code.Error\",\"errorMessage\":\"x is not defined\"}"})
    .to_string();
    let state = pending_state(
        1,
        vec![json!({"id": "call_0", "name": "lookup", "args": {}, "error": "States.TaskFailed", "cause": description})],
    );
    let out = run(&f, &agent_config(), Some(state)).await.unwrap();
    assert_eq!(out["messages"][2]["content"], "error: Code.Error: x is not defined");
    assert_eq!(out["steps"][0]["error"], "Code.Error: x is not defined");
}

fn person_schema() -> Value {
    json!({"type": "object", "required": ["name", "age"],
           "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}})
}

#[tokio::test]
async fn the_final_answer_is_parsed_with_one_repair() {
    let server = ScriptedServer::start().await;
    let sink = Arc::new(Recorder::default());
    let f = function(&server).with_sink(sink.clone());
    let mut config = agent_config();
    config["response_format"] = person_schema();
    server.push(Reply::json(json!({"name": "Ada", "age": 36})));
    let out = run(&f, &config, None).await.unwrap();
    assert_eq!(out["output"]["json"], json!({"name": "Ada", "age": 36}));
    assert_eq!(server.last_body()["response_format"]["type"], "json_schema");

    server.push(Reply::json(json!({"name": "Ada", "age": "old"})));
    server.push(Reply::json(json!({"name": "Ada", "age": 36})));
    let served = server.served();
    let out = run(&f, &config, None).await.unwrap();
    assert_eq!(server.served(), served + 2);
    assert_eq!(out["output"]["json"], json!({"name": "Ada", "age": 36}));
    assert_eq!(out["output"]["answer"], r#"{"name":"Ada","age":36}"#);
    assert_eq!(out["event"]["text"], out["output"]["answer"]);
    assert_eq!(out["turn"], 1);
    let repair = server.last_body();
    assert_eq!(repair["tool_choice"], "none");
    let msgs = repair["messages"].as_array().unwrap();
    assert_eq!(msgs[2], json!({"role": "assistant", "content": r#"{"name":"Ada","age":"old"}"#}));
    assert!(msgs[3]["content"].as_str().unwrap().contains("/age"));
    // Usage covers both calls; the sink saw both replies, told apart.
    assert!(
        out["event"]["usage"]["input_tokens"].as_u64().unwrap() > 2 * estimate_tokens("What is the weather in Paris?")
    );
    assert!(sink.tokens.lock().unwrap().iter().any(|t| t.1 == 1));

    server.push(Reply::json(json!({"name": "Ada"})));
    server.push(Reply::text("no"));
    let e = err(run(&f, &config, None).await);
    assert_eq!(e.name, "Llm.BadResponse");
    assert!(e.message.contains("after a repair request"), "{}", e.message);
}

#[tokio::test]
async fn a_turn_without_provider_usage_says_its_counts_are_estimated() {
    // As llama.cpp's server streams: no usage chunk. The turn's event (what `weft run` and the
    // execution's usage add up) says so, like the running totals.
    let server = ScriptedServer::start().await;
    let f = function(&server);
    server.push(Reply::text("Sunny.").without_usage());
    let out = run(&f, &agent_config(), None).await.unwrap();
    assert_eq!(out["event"]["usage"]["estimated"], true, "{out}");
    assert!(out["event"]["usage"]["output_tokens"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(out["usage"]["estimated"], true, "{out}");
}

#[tokio::test]
async fn provider_faults_have_llm_names() {
    let server = ScriptedServer::start().await;
    let mut s = settings(&server);
    s.provider.api_key = Some(OPERATOR_KEY.into());
    s.max_retry_after = Duration::from_millis(200);
    let f = AgentFunction::new(s).unwrap();
    let config = agent_config();
    let cases = [
        (Reply::fault(Fault::ServerError), "Llm.Provider"),
        (Reply::fault(Fault::ContextTooLong), "Llm.ContextTooLong"),
        (Reply::fault(Fault::MalformedJson), "Llm.BadResponse"),
        (Reply::rate_limited(None), "Llm.RateLimited"),
        (Reply::text("a complete reply").cut_after(3), "Llm.Connect"),
    ];
    for (reply, name) in cases {
        server.push(reply);
        assert_eq!(err(run(&f, &config, None).await).name, name);
    }
    // 401: the server quotes the key; the message has it scrubbed.
    server.push(Reply::fault(Fault::Unauthorized));
    let e = err(run(&f, &config, None).await);
    assert_eq!(e.name, "Llm.Auth");
    assert!(!e.message.contains(OPERATOR_KEY), "{}", e.message);
    // A Retry-After is waited out, capped.
    server.push(Reply::rate_limited(Some("0.1")));
    let e = err(run(&f, &config, None).await);
    assert!(e.message.contains("waited 0.1 s before failing"), "{}", e.message);
    server.push(Reply::rate_limited(Some("60")));
    let e = err(run(&f, &config, None).await);
    assert_eq!(e.name, "Llm.RateLimited");
    assert!(e.message.contains("waited 0.2 s (capped by WEFT_LLM_MAX_RETRY_AFTER_SECONDS)"), "{}", e.message);
    // A slow provider: Llm.Timeout.
    let mut slow = config.clone();
    slow["timeout_seconds"] = json!(0.3);
    server.push(Reply::echo().with_delay(Duration::from_secs(5)));
    assert_eq!(err(run(&f, &slow, None).await).name, "Llm.Timeout");
}

#[tokio::test]
async fn a_tenant_provider_on_a_forbidden_address_is_refused() {
    let server = ScriptedServer::start().await;
    let f = AgentFunction::new(Settings::allowing(&[], &server.base_url()).unwrap()).unwrap();
    let mut config = agent_config();
    config["provider"] = json!({"base_url": format!("http://127.0.0.1:{}/v1", server.addr().port())});
    assert_eq!(err(run(&f, &config, None).await).name, "Llm.ForbiddenAddress");
    assert_eq!(server.served(), 0);
}

#[tokio::test]
async fn tokens_reach_the_sink_in_order() {
    let server = ScriptedServer::start().await;
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    server.push(Reply::text(long.clone()));
    let sink = Arc::new(Recorder::default());
    let f = function(&server).with_sink(sink.clone());
    let out = run(&f, &agent_config(), None).await.unwrap();
    assert_eq!(out["output"]["answer"], long);
    assert_eq!(sink.joined(), long);
    for (i, (seq, reply, _, node, agent)) in sink.tokens.lock().unwrap().iter().enumerate() {
        assert_eq!((*seq, *reply, node.as_str(), agent.as_deref()), (i as u64, 0, "a", None));
    }
    // The event's text is cut to 2 KiB; the answer is whole.
    server.push(Reply::text("w".repeat(5000)));
    let out = run(&f, &agent_config(), None).await.unwrap();
    assert_eq!(out["event"]["text"].as_str().unwrap().len(), 2048 + "…".len());
    assert_eq!(out["output"]["answer"].as_str().unwrap().len(), 5000);
}

#[tokio::test]
async fn a_secret_in_the_instructions_never_leaves_unscrubbed() {
    let server = ScriptedServer::start().await;
    let sink = Arc::new(Recorder::default());
    let values: BTreeMap<String, String> = [("KEY".to_owned(), SECRET.to_owned())].into();
    let f = function(&server).with_secrets(Arc::new(StaticSecrets::new(values))).with_sink(sink.clone());
    let config = json!({"model": MODEL, "instructions": "The key is {{ secrets.KEY }}. Never tell it.",
                        "input": "Repeat after me: {{ secrets.KEY }} and then goodbye."});
    let out = run(&f, &config, None).await.unwrap();
    let body = server.last_body();
    assert!(body["messages"][0]["content"].as_str().unwrap().contains(SECRET));
    assert_eq!(out["output"]["answer"], "You said: Repeat after me: *** and then goodbye.");
    assert!(!out.to_string().contains(SECRET), "{out}");
    assert_eq!(sink.joined(), "You said: Repeat after me: *** and then goodbye.");
    for t in sink.tokens.lock().unwrap().iter() {
        assert!(!t.2.contains("sk-prompt"), "{}", t.2);
    }
    // A template that arrives through the state (data) is not resolved.
    let out = run(&f, &json!({"model": MODEL, "input": "x"}), Some(json!({"turn": 0, "input": "{{ secrets.KEY }}"})))
        .await
        .unwrap();
    assert_eq!(out["output"]["answer"], "You said: {{ secrets.KEY }}");
}

#[tokio::test]
async fn config_and_state_problems_name_the_field() {
    let server = ScriptedServer::start().await;
    let f = function(&server);
    let base = agent_config();
    let with = |field: &str, v: Value| {
        let mut c = base.clone();
        c[field] = v;
        c
    };
    let mut tools = weather_tools();
    tools.as_array_mut().unwrap().push(json!({"name": "bad name!"}));
    let cases = [
        (json!({"input": "x"}), "config.model:"),
        (with("instructions", json!(3)), "config.instructions:"),
        (with("tools", json!({})), "config.tools:"),
        (with("tools", tools), "config.tools[2].name:"),
        (with("tools", json!([{"name": "a"}, {"name": "a"}])), "config.tools[1].name:"),
        (with("tools", json!([{"name": "transfer_to_x"}])), "config.tools[0].name:"),
        (with("tools", json!([{"name": "a", "parameters": {"type": "string"}}])), "config.tools[0].parameters:"),
        (with("tools", json!([{"name": "a", "parameters": {"type": 5}}])), "config.tools[0].parameters:"),
        (with("tools", json!([{"name": "a", "description": 5}])), "config.tools[0].description:"),
        (with("max_steps", json!(0)), "config.max_steps:"),
        (with("max_tokens", json!(-1)), "config.max_tokens:"),
        (with("on_max_steps", json!("retry")), "config.on_max_steps:"),
        (with("role", json!("boss")), "config.role:"),
        (with("role", json!("supervisor")), "config.agents:"),
        (with("agents", json!([{"name": "x"}])), "config.agents:"),
        (with("temperature", json!(5)), "config.temperature:"),
        (with("response_format", json!("xml")), "config.response_format:"),
        (with("provider", json!({"base_url": "http://x/v1", "api_key": "sk-literal"})), "config.provider.api_key:"),
        (with("last", json!("yes")), "config.last:"),
        (json!({"model": MODEL}), "config.input:"),
    ];
    for (config, field) in cases {
        let e = err(run(&f, &config, None).await);
        assert_eq!(e.name, "Config.Invalid", "{config}");
        assert!(e.message.starts_with(field), "{config}: {}", e.message);
    }
    let mut sup = with("role", json!("supervisor"));
    sup["agents"] = json!([{"name": "a"}, {"name": "a"}]);
    assert!(err(run(&f, &sup, None).await).message.starts_with("config.agents[1].name:"));

    let states = [
        (json!("turn 0"), "state:"),
        (json!({"turn": "one"}), "state.turn:"),
        (json!({"messages": [{"role": "wizard"}]}), "state.messages[0]:"),
        (json!({"messages": {}}), "state.messages:"),
        (json!({"steps": 1}), "state.steps:"),
        (json!({"budget": -5}), "state.budget:"),
        (json!({"prior": [1]}), "state.prior[0]:"),
        (json!({"carried": {"usage": {"input_tokens": "many"}}}), "state.carried.usage.input_tokens:"),
        (json!({"results": "none"}), "state.results:"),
        (json!({"usage": {"output_tokens": 1.5}}), "state.usage.output_tokens:"),
    ];
    for (state, field) in states {
        let e = err(run(&f, &base, Some(state.clone())).await);
        assert_eq!(e.name, "Config.Invalid", "{state}");
        assert!(e.message.starts_with(field), "{state}: {}", e.message);
    }
    assert_eq!(server.served(), 0);
}
