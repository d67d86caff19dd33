//! The `database` function as a Lambda `bootstrap`; connection secrets come from Postgres
//! (`WEFT_DATABASE_URL`, `WEFT_SECRETS_KEY`), for the tenant owning each execution.

#[tokio::main]
async fn main() -> Result<(), lambda_glue::Error> {
    lambda_glue::init_tracing();
    let secrets = std::sync::Arc::new(tenant_secrets::PgSecretResolver::from_env()?);
    lambda_glue::run(fn_database::DatabaseFunction::from_env()?.with_secrets(secrets)).await
}
