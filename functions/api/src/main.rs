//! The api function in Lambda: build everything once, then serve the router.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_glue::init_tracing();
    let config = config::Config::from_env()?;
    // Migrations are applied by deployments (`weft serve` or a one-off task), not by every cold start.
    let state = fn_api::AppState::connect(&config, false).await.context("starting the api function")?;
    // `POST /v1/events` goes to Weft's SQS queue when the deployment has one.
    if let Some(queue) = fn_api::event_routes::SqsQueue::from_env().await {
        state.set_event_queue(std::sync::Arc::new(queue));
    }
    lambda_http::run(fn_api::app(state)).await
}
