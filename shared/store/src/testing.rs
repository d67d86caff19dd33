//! Test support: a fresh, migrated database per test, so tests run in parallel safely.
//!
//! Tests read `WEFT_TEST_DATABASE_URL` (an admin URL, e.g. from `scripts/dev-services`). When it
//! is unset they skip ([`test_skip`]), unless `WEFT_TEST_STRICT=1`, when they fail.

use sqlx::Connection as _;
use uuid::Uuid;

use crate::{Store, StoreError};

/// `Some(value)` of a test service URL variable, or `None` when the calling test skips (see
/// [`test_skip`]: a `SKIPPED:` line, or a failure under `WEFT_TEST_STRICT=1`).
pub fn service_url(var: &str) -> Option<String> {
    test_skip::var(var)
}

/// Creates a new database next to the one `admin_url` names and returns its URL.
pub async fn create_database(admin_url: &str) -> Result<String, StoreError> {
    let name = format!("weft_test_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    // The name is generated above, never user input, so formatting it in is safe.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await?;
    conn.close().await?;
    Ok(with_database(admin_url, &name))
}

/// A migrated [`Store`] on a fresh database.
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

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // `scheme://authority/db`: replace what follows the authority's slash.
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced() {
        assert_eq!(super::with_database("postgres://u@h:1/weft", "x"), "postgres://u@h:1/x");
        assert_eq!(super::with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(super::with_database("postgres://u@h/a?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    }
}
