//! The `code` function as a Lambda `bootstrap`.

#[tokio::main]
async fn main() -> Result<(), lambda_glue::Error> {
    lambda_glue::init_tracing();
    lambda_glue::run(fn_code::CodeFunction::from_env()?).await
}
