//! The `vector_upsert` / `vector_search` function as a Lambda `bootstrap`. Each execution's
//! tenant (and any `{{ secrets.NAME }}`) comes from Postgres (`WEFT_DATABASE_URL`,
//! `WEFT_SECRETS_KEY`); Milvus and the embeddings provider from the settings (`fn_vector::Settings`).

#[tokio::main]
async fn main() -> Result<(), lambda_glue::Error> {
    lambda_glue::init_tracing();
    let pg = std::sync::Arc::new(tenant_secrets::PgSecretResolver::from_env()?);
    let function = fn_vector::VectorFunction::from_env()?.with_secrets(pg.clone()).with_tenants(pg);
    lambda_glue::run(function).await
}
