//! Test support (feature `test-util`): a fresh, migrated [`Store`] per test, so tests run in
//! parallel safely. The database helpers themselves are the `migrations` crate's.
//!
//! Tests read `WEFT_TEST_DATABASE_URL` (an admin URL, e.g. from `scripts/dev-services`). When it
//! is unset they skip (`test_skip`), unless `WEFT_TEST_STRICT=1`, when they fail.

pub use migrations::testing::{create_database, service_url};

use uuid::Uuid;

use crate::{Store, StoreError};

/// A migrated [`Store`] on a fresh database, and the database's URL.
pub async fn fresh_store(admin_url: &str) -> Result<(Store, String), StoreError> {
    let url = create_database(admin_url).await?;
    let store = Store::connect(&url, 5).await?;
    store.migrate().await?;
    Ok((store, url))
}

/// The region and account of the ARNs the fixtures below write.
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// A workflow of `tenant` with version 1 published as the api publishes it (through
/// [`Store::lock_workflow`]), to the state machine `weft-<workflow id>`. The tenant is created on
/// first use.
pub async fn published_workflow(store: &Store, tenant: &str) -> Result<crate::Workflow, StoreError> {
    let graph = serde_json::json!({"format": "weft/v1", "nodes": [], "edges": []});
    let workflow = store.create_workflow(tenant, "fixture", "editor", "fixture", None, &graph).await?;
    let name = format!("weft-{}", workflow.id);
    let machine = arn::StateMachineArn::new(REGION, ACCOUNT, &name);
    let mut tx = store.lock_workflow(tenant, workflow.id).await?;
    let new = crate::NewVersion {
        version: tx.next_version(),
        graph,
        asl: serde_json::json!({"StartAt": "done", "States": {"done": {"Type": "Succeed"}}}),
        workflow_type: "STANDARD".into(),
        content_hash: "fixture".into(),
        state_machine_version_arn: Some(machine.with_version(1).to_string()),
        state_machine_arn: Some(machine.to_string()),
        alias_arn: None,
    };
    tx.insert_version("fixture", "editor", new).await?;
    tx.commit().await?;
    store.get_workflow(tenant, workflow.id).await
}

/// An `executions` row of version 1 of `workflow`, PENDING, as the api inserts it before
/// StartExecution: named after its id, so its ARN is `...:execution:weft-<workflow>:<id>`, which
/// is recorded on the row only when `recorded` (StartExecution returned). Returns (id, ARN).
pub async fn execution(
    store: &Store,
    tenant: &str,
    workflow: Uuid,
    recorded: bool,
) -> Result<(Uuid, String), StoreError> {
    let id = Uuid::new_v4();
    let arn = arn::ExecutionArn::new(REGION, ACCOUNT, &format!("weft-{workflow}"), &id.to_string()).to_string();
    sqlx::query(
        "INSERT INTO executions (id, tenant_id, workflow_id, version, status, input, started_by, execution_arn) \
         VALUES ($1, $2, $3, 1, 'PENDING', '{}', 'fixture', $4)",
    )
    .bind(id)
    .bind(tenant)
    .bind(workflow)
    .bind(recorded.then(|| arn.clone()))
    .execute(store.pool())
    .await?;
    Ok((id, arn))
}

/// Asserts that `result` is the refusal of the migrations' immutability trigger on `table`
/// (`weft_refuse_change`: SQLSTATE P0001 `raise_exception`, "<table> rows are immutable"), not
/// some other failure such as a constraint or a syntax error.
pub fn assert_refused_as_immutable<T: std::fmt::Debug>(result: Result<T, sqlx::Error>, table: &str) {
    let error = match result {
        Ok(done) => panic!("the change to {table} was not refused: {done:?}"),
        Err(e) => e,
    };
    let Some(db) = error.as_database_error() else { panic!("not a database error: {error:?}") };
    assert_eq!(
        (db.code().as_deref(), db.message()),
        (Some("P0001"), format!("{table} rows are immutable").as_str()),
        "{error:?}"
    );
}
