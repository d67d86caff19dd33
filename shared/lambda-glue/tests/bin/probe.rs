//! A bootstrap for lambda-glue's own tests (`tests/runtime_api.rs`): `main` exactly as every node
//! function's, around a function whose event says what to do. `{"fail": {"name", "message"}}` in
//! the config fails with that error; any other event is answered with the event as the function
//! received it, how many invocations this process served, and how many functions it built.

use std::sync::atomic::{AtomicU64, Ordering};

use node_contract::{NodeError, NodeEvent, NodeFunction};
use serde_json::{Value, json};

static BUILT: AtomicU64 = AtomicU64::new(0);

struct Probe {
    invocations: AtomicU64,
}

impl Probe {
    fn new() -> Self {
        BUILT.fetch_add(1, Ordering::SeqCst);
        Self { invocations: AtomicU64::new(0) }
    }
}

impl NodeFunction for Probe {
    async fn handle(&self, event: NodeEvent) -> Result<Value, NodeError> {
        let invocation = self.invocations.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(node = %event.node.id, invocation, "probe invoked");
        if let Some(fail) = event.config.get("fail") {
            let text = |k: &str| fail.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
            return Err(NodeError::new(&text("name"), text("message")));
        }
        let event = serde_json::to_value(&event).map_err(|e| NodeError::new("Probe.Serialize", e.to_string()))?;
        Ok(json!({"event": event, "invocation": invocation, "built": BUILT.load(Ordering::SeqCst)}))
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_glue::Error> {
    lambda_glue::init_tracing();
    lambda_glue::run(Probe::new()).await
}
