//! The recorder function in Lambda: connect once, then record each EventBridge event's execution.

use anyhow::Context as _;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let config = config::Config::from_env()?;
    let state = fn_api::AppState::connect(&config, false).await.context("starting the recorder function")?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A failure is returned so EventBridge retries the event (recording is idempotent).
        let recorded = fn_recorder::handle(state, &event.payload).await?;
        Ok::<Value, lambda_runtime::Error>(json!({"recorded": recorded}))
    }))
    .await
}
