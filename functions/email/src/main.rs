//! The `email` function as a Lambda `bootstrap`; the connection secret comes from Postgres
//! (`WEFT_DATABASE_URL`, `WEFT_SECRETS_KEY`), for the tenant owning each execution.

#[tokio::main]
async fn main() -> Result<(), lambda_glue::Error> {
    lambda_glue::init_tracing();
    let secrets = std::sync::Arc::new(tenant_secrets::PgSecretResolver::from_env()?);
    lambda_glue::run(fn_email::EmailFunction::from_env()?.with_secrets(secrets)).await
}
