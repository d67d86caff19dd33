//! The `trigger` function as a Lambda `bootstrap` (an SQS event source with
//! `FunctionResponseTypes: [ReportBatchItemFailures]` and a redrive policy to a dead-letter queue).
//! It reads only the execution domain's configuration (`config::ExecutionsConfig`).

use std::sync::Arc;

use anyhow::Context as _;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_glue::init_tracing();
    // Clients are built once per process: the pool and the Step Functions client.
    let config = config::ExecutionsConfig::from_env()?;
    let function = Arc::new(fn_trigger::connect(&config).await.context("starting the trigger function")?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let function = function.clone();
        async move { Ok::<SqsBatchResponse, lambda_runtime::Error>(function.handle(event.payload).await) }
    }))
    .await
}
