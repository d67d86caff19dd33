//! The compiler's agent loops on Weft's ASL engine with the real agent and code functions, against
//! the scripted OpenAI-compatible server on 127.0.0.1: the states the compiler emits and the
//! working state the function returns fit together (turn → tool calls → turn → answer), for an
//! `agent` node and for each `multi_agent` strategy.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

#[path = "../benches/common/engine.rs"]
mod engine_harness;

use engine::Status;
use engine_harness::{Harness, agent_graph};
use model_client::testing::{Reply, ScriptedServer};
use serde_json::{Value, json};

fn add_tool() -> Value {
    json!([{"name": "add", "description": "Adds two numbers", "type": "code", "expression": "args.a + args.b",
            "parameters": {"type": "object", "required": ["a", "b"],
                           "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}])
}

#[tokio::test]
async fn an_agent_calls_its_declared_tools_through_states_and_answers() {
    let server = ScriptedServer::start().await;
    // One reply asks for a declared tool and for one the node does not declare.
    server.push(Reply::tool_calls(vec![("add", r#"{"a": 2, "b": 3}"#), ("delete_all", "{}")]));
    server.push(Reply::text("The sum is 5."));
    let h = Harness::new(&server);
    let graph = agent_graph(json!({"model": "gpt-4o-mini", "instructions": "Add.", "input": "{{ input.q }}",
                                   "tools": add_tool(), "max_steps": 4}));
    let run = h.run(&graph, json!({"q": "2 + 3?"})).await;
    assert_eq!(run.outcome.status, Status::Succeeded, "{:?}", run.outcome);
    let out = run.outcome.output.clone().unwrap();
    assert_eq!(out["answer"], "The sum is 5.");
    // Steps in the order they were settled: the refusal at once, the result when it came back.
    let steps = out["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{out}");
    assert_eq!(steps[1], json!({"tool": "add", "args": {"a": 2, "b": 3}, "result": 5}));
    assert_eq!(steps[0]["tool"], "delete_all");
    assert!(steps[0]["error"].as_str().unwrap().starts_with("Agent.UnknownTool"), "{out}");
    assert!(out["usage"]["input_tokens"].as_u64().unwrap() > 0, "{out}");
    // The declared tool ran as a state of its own; the undeclared one never ran.
    assert_eq!(run.entered("a.call.add"), 1);
    assert_eq!(run.entered("a.turn"), 2);
    assert_eq!(h.code_calls(), 1);
    // The second request carried the tool's result and the refusal.
    let second = &server.requests()[1].body;
    let tool_messages: Vec<&Value> =
        second["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "tool").collect();
    assert_eq!(tool_messages.len(), 2, "{second}");
    assert!(tool_messages.iter().any(|m| m["content"] == "5"), "{second}");
    assert!(tool_messages.iter().any(|m| m["content"].as_str().unwrap().starts_with("error: Agent.UnknownTool")));
}

#[tokio::test]
async fn an_agent_that_never_stops_ends_with_max_steps() {
    let server = ScriptedServer::start().await;
    for _ in 0..3 {
        server.push(Reply::tool_calls(vec![("add", r#"{"a": 1, "b": 1}"#)]));
    }
    let h = Harness::new(&server);
    let graph = agent_graph(json!({"model": "gpt-4o-mini", "instructions": "Add forever.", "input": "go",
                                   "tools": add_tool(), "max_steps": 2}));
    let run = h.run(&graph, json!({})).await;
    assert_eq!(run.outcome.status, Status::Failed);
    assert_eq!(run.outcome.error.as_deref(), Some("Agent.MaxSteps"), "{:?}", run.outcome);
    assert_eq!(run.entered("a.turn"), 2);
}

#[tokio::test]
async fn a_sequential_team_hands_each_answer_to_the_next_agent() {
    let server = ScriptedServer::start().await;
    server.push(Reply::text("facts: water boils at 100 C"));
    server.push(Reply::text("Briefing: water boils at 100 C."));
    let h = Harness::new(&server);
    let graph = agent_graph_multi(
        json!({"strategy": "sequential", "model": "gpt-4o-mini", "task": "{{ input.topic }}",
        "agents": [{"name": "researcher", "instructions": "Find facts."}, {"name": "writer", "instructions": "Write."}]}),
    );
    let run = h.run(&graph, json!({"topic": "boiling"})).await;
    assert_eq!(run.outcome.status, Status::Succeeded, "{:?}", run.outcome);
    let out = run.outcome.output.clone().unwrap();
    assert_eq!(out["answer"], "Briefing: water boils at 100 C.");
    let names: Vec<&str> = out["agents"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["researcher", "writer"]);
    // The writer's task is the researcher's answer.
    let writer = &server.requests()[1].body;
    let user = writer["messages"].as_array().unwrap().iter().find(|m| m["role"] == "user").unwrap();
    assert!(user["content"].as_str().unwrap().contains("water boils"), "{writer}");
    let per_agent: u64 =
        out["agents"].as_array().unwrap().iter().map(|a| a["usage"]["input_tokens"].as_u64().unwrap()).sum();
    assert_eq!(out["usage"]["input_tokens"].as_u64().unwrap(), per_agent, "{out}");
}

#[tokio::test]
async fn a_parallel_team_is_combined_by_the_aggregator() {
    // No script: each agent's reply echoes its task, the aggregator's its prompt.
    let server = ScriptedServer::start().await;
    let h = Harness::new(&server);
    let graph = agent_graph_multi(json!({"strategy": "parallel", "model": "gpt-4o-mini", "task": "Name a colour",
        "agents": [{"name": "one", "instructions": "Answer."}, {"name": "two", "instructions": "Answer too."}]}));
    let run = h.run(&graph, json!({})).await;
    assert_eq!(run.outcome.status, Status::Succeeded, "{:?}", run.outcome);
    let out = run.outcome.output.clone().unwrap();
    let names: Vec<&str> = out["agents"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["one", "two", "aggregator"]);
    assert_eq!(server.requests().len(), 3);
    assert_eq!(run.entered("team.one.turn") + run.entered("team.two.turn") + run.entered("team.aggregator.turn"), 3);
}

#[tokio::test]
async fn a_supervisor_delegates_with_transfer_tools_that_run_whole_agent_loops() {
    let server = ScriptedServer::start().await;
    server.push(Reply::tool_calls(vec![("transfer_to_writer", r#"{"task": "Write one line about tea"}"#)]));
    server.push(Reply::text("Tea is a leaf infusion."));
    server.push(Reply::text("Here it is: Tea is a leaf infusion."));
    let h = Harness::new(&server);
    let graph = agent_graph_multi(json!({"strategy": "supervisor", "model": "gpt-4o-mini", "task": "A line on tea",
        "agents": [{"name": "writer", "description": "Writes", "instructions": "Write."}]}));
    let run = h.run(&graph, json!({})).await;
    assert_eq!(run.outcome.status, Status::Succeeded, "{:?}", run.outcome);
    let out = run.outcome.output.clone().unwrap();
    assert_eq!(out["answer"], "Here it is: Tea is a leaf infusion.");
    let names: Vec<&str> = out["agents"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["writer", "supervisor"]);
    assert_eq!(run.entered("team.writer.turn"), 1);
    // The writer got the supervisor's task, and the supervisor the writer's answer.
    let writer = &server.requests()[1].body;
    assert!(writer.to_string().contains("Write one line about tea"), "{writer}");
    let last = &server.requests()[2].body;
    assert!(last.to_string().contains("Tea is a leaf infusion."), "{last}");
}

fn agent_graph_multi(data: Value) -> Value {
    json!({"format": "weft/v1", "id": "t", "name": "t",
           "nodes": [{"id": "start", "type": "start", "data": {}},
                     {"id": "team", "type": "multi_agent", "data": data},
                     {"id": "done", "type": "end", "data": {}}],
           "edges": [{"source": "start", "target": "team"}, {"source": "team", "target": "done"}]})
}
