//! The `trigger` function as a Lambda `bootstrap` (an SQS event source with
//! `FunctionResponseTypes: [ReportBatchItemFailures]` and a redrive policy to a dead-letter queue,
//! and an EventBridge schedule every minute for the cron triggers).
//! It reads only the execution domain's configuration (`config::ExecutionsConfig`).

use std::sync::Arc;

use anyhow::Context as _;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_glue::init_tracing();
    // Clients are built once per process: the pool and the Step Functions client.
    let config = config::ExecutionsConfig::from_env()?;
    let function = Arc::new(fn_trigger::connect(&config).await.context("starting the trigger function")?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = function.clone();
        async move { Ok::<Value, lambda_runtime::Error>(function.invoke(event.payload).await?) }
    }))
    .await
}
