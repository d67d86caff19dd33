//! Runs compiled agent graphs on Weft's ASL engine with the real agent and code functions (what
//! `weft run` does, without the CLI), counting the time spent inside the functions. Shared by
//! `tests/engine_loop.rs` and `benches/loop.rs`.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use engine::{Definition, Engine, EngineConfig, Outcome, TaskCall, TaskFailure, TaskInvoker};
use fn_agent::{AgentFunction, Settings};
use fn_code::{CodeFunction, Limits};
use model_client::testing::ScriptedServer;
use node_contract::{NodeEvent, NodeFunction};
use serde_json::{Value, json};

/// The engine's invoker: `AgentFunction` for agent turns, `CodeFunction` for code tools.
pub struct Functions {
    agent: AgentFunction,
    code: CodeFunction,
    pub nanos: AtomicU64,
    pub calls: AtomicU64,
    pub code_calls: AtomicU64,
}

#[async_trait::async_trait]
impl TaskInvoker for Functions {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        let started = Instant::now();
        let mut event = NodeEvent::from_value(call.payload)
            .map_err(|e| TaskFailure { error: e.name.clone(), cause: e.message.clone() })?;
        event.execution.id = call.context.execution_arn.clone();
        let out = if call.function_name.contains("AgentFunction") {
            self.agent.handle(event).await
        } else if call.function_name.contains("CodeFunction") {
            self.code_calls.fetch_add(1, Ordering::Relaxed);
            self.code.handle(event).await
        } else {
            return Err(TaskFailure {
                error: "Lambda.ResourceNotFoundException".into(),
                cause: format!("Function not found: {}", call.function_name),
            });
        };
        self.nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        out.map_err(|e| TaskFailure {
            error: e.name.clone(),
            cause: json!({"errorMessage": e.message, "errorType": e.name}).to_string(),
        })
    }
}

pub struct Harness {
    pub functions: Arc<Functions>,
    engine: Engine,
}

pub struct Run {
    pub outcome: Outcome,
    pub states: Vec<String>,
    pub wall: Duration,
    pub inside: Duration,
}

impl Run {
    /// How many times the state `name` was entered.
    pub fn entered(&self, name: &str) -> usize {
        self.states.iter().filter(|s| *s == name).count()
    }
}

impl Harness {
    pub fn new(server: &ScriptedServer) -> Self {
        let agent = AgentFunction::new(Settings::allowing(&["127.0.0.1"], &server.base_url()).unwrap()).unwrap();
        let code = CodeFunction::new(Limits { timeout: Duration::from_secs(5), ..Limits::default() });
        let functions = Arc::new(Functions { agent, code, nanos: 0.into(), calls: 0.into(), code_calls: 0.into() });
        let engine = Engine::new(EngineConfig::new(functions.clone()));
        Self { functions, engine }
    }

    pub fn code_calls(&self) -> u64 {
        self.functions.code_calls.load(Ordering::Relaxed)
    }

    pub async fn run(&self, graph: &Value, input: Value) -> Run {
        let g = compiler::parse(&graph.to_string()).unwrap();
        let compiled = compiler::compile(&g, &compiler::CompileOptions::default()).unwrap();
        let def = Arc::new(Definition::parse(&compiled.asl).unwrap());
        self.functions.nanos.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let exec = self.engine.start(def, input, Default::default());
        let outcome = tokio::time::timeout(Duration::from_secs(120), exec.wait()).await.expect("the run ends");
        let wall = started.elapsed();
        let states = exec
            .history_snapshot()
            .iter()
            .filter(|e| e.event_type.as_str().ends_with("StateEntered"))
            .map(|e| e.to_aws_json())
            .filter_map(|v| v.pointer("/stateEnteredEventDetails/name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let inside = Duration::from_nanos(self.functions.nanos.load(Ordering::Relaxed));
        Run { outcome, states, wall, inside }
    }
}

/// start → agent `a` (with `data`) → end.
pub fn agent_graph(data: Value) -> Value {
    json!({"format": "weft/v1", "id": "t", "name": "t",
           "nodes": [{"id": "start", "type": "start", "data": {}},
                     {"id": "a", "type": "agent", "data": data},
                     {"id": "done", "type": "end", "data": {}}],
           "edges": [{"source": "start", "target": "a"}, {"source": "a", "target": "done"}]})
}
