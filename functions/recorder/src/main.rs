//! The recorder function in Lambda: connect once, then record each EventBridge event's execution.
//! It reads only the execution domain's configuration (`config::ExecutionsConfig`: Postgres,
//! Redis, Step Functions, the optional event bus), no JWT or secrets key.

use anyhow::Context as _;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_glue::init_tracing();
    let config = config::ExecutionsConfig::from_env()?;
    let executions = fn_recorder::connect(&config).await.context("starting the recorder function")?;
    let sink = fn_recorder::event_sink(&config).await;
    let (executions, sink) = (&executions, sink.as_ref().map(|s| s as &dyn domain_events::Sink));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A failure is returned so EventBridge retries the event (recording is idempotent).
        let recorded = fn_recorder::handle_and_publish(executions, sink, &event.payload).await?;
        Ok::<Value, lambda_runtime::Error>(json!({"recorded": recorded}))
    }))
    .await
}
