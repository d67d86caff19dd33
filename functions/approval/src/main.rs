//! The `approval` function as a Lambda `bootstrap`.

#[tokio::main]
async fn main() -> Result<(), lambda_glue::Error> {
    lambda_glue::init_tracing();
    lambda_glue::run(fn_approval::ApprovalFunction::from_env()?).await
}
