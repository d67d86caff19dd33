//! Weft's Postgres schema: the sqlx migrations of this directory (`<version>_<name>.sql`, applied
//! in version order; a released migration is never edited, a change is a new file), embedded as
//! [`MIGRATOR`]. `store::Store::migrate` and `sfn_server::PgStore::migrate` both run it, so
//! whichever starts first creates every table, and sqlx's lock serialises concurrent runs.
//!
//! # Who owns which table
//!
//! One database holds every table, but each table has one owner that writes it and decides its
//! shape; others may only read it, where listed. A migration touching a table is the owner's
//! change.
//!
//! | owner | tables | also read by |
//! |---|---|---|
//! | `store` (tenant-scoped repositories) | `tenants`, `users`, `api_keys`, `workflows`, `workflow_versions` (immutable: the `workflow_versions_immutable` trigger), `secrets` (sealed values) | `tenant-secrets` (`workflow_versions`, `secrets`), `triggers` and `executions` (`workflows`) |
//! | `executions` (the execution domain) | `executions`, `execution_event_chunks` (read through the `execution_events` view) | `tenant-secrets` and `triggers` (`executions`: whose execution an ARN is), `fn-api`'s `exec_routes` (`executions`) |
//! | `triggers` | `triggers`, `webhook_deliveries`, `approvals` | |
//! | `sfn-server` | `sfn_state_machines`, `sfn_versions`, `sfn_aliases`, `sfn_executions`, `sfn_definitions`, `sfn_history_chunks` | |
//! | `domain-events` (the outbox: `store` and `executions` insert through its `record` and `insert_sql`, in their own transactions) | `domain_events` | |
//!
//! Every row of the tenant-aware tables (all but `sfn_*`) belongs to a tenant. The `sfn_*` tables
//! are the Step Functions endpoint's and know nothing of tenants, as `sfn-server` does not.
//! Execution data (`executions` input and output, `execution_event_chunks`, the `sfn_*`
//! documents) is `json`, not `jsonb`, because `jsonb` refuses `\u0000`, which node outputs may
//! contain.
//!
//! **Invariant:** this crate is data: no IO crate (tokio, reqwest, ...) without the `test-util`
//! feature (checked by `cargo tree` in `scripts/test`).

/// The migrations of this directory, embedded in the binary (`build.rs` rebuilds the crate when
/// a file is added or changed).
// The path is relative to the crate's directory, named from its parent: `sqlx::migrate!` refuses
// a one-segment path such as ".".
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[cfg(feature = "test-util")]
pub mod testing;

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let mut files: Vec<String> = std::fs::read_dir(env!("CARGO_MANIFEST_DIR"))
            .expect("the crate directory")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> =
            super::MIGRATOR.iter().map(|m| format!("{}_{}.sql", m.version, m.description.replace(' ', "_"))).collect();
        assert_eq!(embedded, files);
    }
}
