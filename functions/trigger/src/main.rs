//! The `trigger` function as a Lambda `bootstrap` (an SQS event source with
//! `FunctionResponseTypes: [ReportBatchItemFailures]` and a redrive policy to a dead-letter queue).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_glue::init_tracing();
    // Clients are built once per process: the api's state holds the pool and the Step Functions client.
    let config = config::Config::from_env()?;
    let state = fn_api::AppState::connect(&config, false).await?;
    let function = Arc::new(fn_trigger::TriggerFunction::new(
        fn_api::trigger_routes::registry(&state),
        Arc::new(fn_api::trigger_routes::ApiStarter(state)),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let function = function.clone();
        async move { Ok::<SqsBatchResponse, lambda_runtime::Error>(function.handle(event.payload).await) }
    }))
    .await
}
