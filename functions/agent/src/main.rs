//! The `agent` function as a Lambda `bootstrap`. Secrets come from Postgres (`WEFT_DATABASE_URL`,
//! `WEFT_SECRETS_KEY`) for the tenant owning each execution; streamed tokens go to Redis
//! (`WEFT_REDIS_URL`, for the api's server-sent events) when it is set, nowhere otherwise.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_glue::Error> {
    lambda_glue::init_tracing();
    let secrets = Arc::new(tenant_secrets::PgSecretResolver::from_env()?);
    let mut function = fn_agent::AgentFunction::from_env()?.with_secrets(secrets);
    if let Some(url) = std::env::var("WEFT_REDIS_URL").ok().filter(|u| !u.trim().is_empty()) {
        let sink = fn_agent::RedisSink::new(url.trim()).map_err(|e| fn_agent::SettingsError {
            name: "WEFT_REDIS_URL",
            // The redis crate's message, not the URL (it may hold a password).
            problem: format!("is not a usable Redis URL ({:?})", e.kind()),
        })?;
        function = function.with_sink(Arc::new(sink));
    }
    lambda_glue::run(function).await
}
