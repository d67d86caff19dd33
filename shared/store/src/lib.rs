//! Postgres storage for Weft: tenant-scoped repositories over the tables this crate owns
//! (`tenants`, `users`, `api_keys`, `workflows`, `workflow_versions`, `secrets`; the schema and
//! who owns which table are in the `migrations` crate).
//!
//! Architecture invariant: every function that reads or writes tenant data takes the caller's
//! tenant and filters on it in SQL, so a guessed id from another tenant behaves exactly like an
//! id that does not exist. Workflow writes (create, update, delete, publish) record their domain
//! event (`domain_events::record`) in the same transaction, so the event exists exactly when the
//! write committed. The one exception is [`Store::find_api_key`], which *is* how a key's
//! tenant is found. Queries are runtime `sqlx::query` calls with binds (no compile-time macros:
//! CI has no database at build time).

mod cursor;
#[cfg(feature = "test-util")]
pub mod testing;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{FromRow, Postgres, Row as _, Transaction};
use uuid::Uuid;

pub use cursor::{Cursor, timestamp as cursor_timestamp};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("the cursor is invalid; use the `next_cursor` of a previous page")]
    BadCursor,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// True for failures where retrying the same request may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed))
    }
}

fn unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error().and_then(|e| e.code()).as_deref() == Some("23505")
}

#[derive(Debug, Clone, FromRow)]
pub struct Workflow {
    pub id: Uuid,
    pub tenant_id: String,
    pub name: String,
    pub description: Option<String>,
    pub graph: Value,
    pub latest_version: Option<i32>,
    pub live_version: Option<i32>,
    pub state_machine_arn: Option<String>,
    pub alias_arn: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow)]
pub struct WorkflowSummary {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub latest_version: Option<i32>,
    pub live_version: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow)]
pub struct Version {
    pub workflow_id: Uuid,
    pub version: i32,
    pub graph: Value,
    pub asl: Value,
    pub workflow_type: String,
    pub content_hash: String,
    pub state_machine_arn: Option<String>,
    pub state_machine_version_arn: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow)]
pub struct VersionSummary {
    pub version: i32,
    pub workflow_type: String,
    pub content_hash: String,
    pub state_machine_version_arn: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// A version about to be inserted by [`WorkflowTx::insert_version`].
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub version: i32,
    pub graph: Value,
    pub asl: Value,
    pub workflow_type: String,
    pub content_hash: String,
    pub state_machine_arn: Option<String>,
    pub state_machine_version_arn: Option<String>,
    pub alias_arn: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct SecretName {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub tenant_id: String,
    pub name: String,
    pub prefix: String,
    pub role: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A stored API key with its hash, for verification only.
#[derive(Debug, Clone, FromRow)]
pub struct ApiKeySecret {
    pub id: Uuid,
    pub tenant_id: String,
    pub name: String,
    pub role: String,
    pub secret_hash: Vec<u8>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A page of results and the cursor of the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The connection pool and every repository method.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

// Macros rather than consts so that queries stay `&'static str` (sqlx refuses dynamic SQL).
macro_rules! workflow_columns {
    () => {
        "id, tenant_id, name, description, graph, latest_version, live_version, \
         state_machine_arn, alias_arn, created_by, created_at, updated_at"
    };
}
macro_rules! version_columns {
    () => {
        "workflow_id, version, graph, asl, workflow_type, content_hash, \
         state_machine_arn, state_machine_version_arn, created_by, created_at"
    };
}

/// How long a pooled connection may have been idle before it is checked (pinged) on its way out
/// of the pool: a connection in use within that time has just completed a round trip (sqlx pings
/// each connection as it comes back), so a check would only repeat that; one that failed is
/// closed rather than returned. A connection that broke since fails its query, which callers
/// see as the database being unavailable (what they see while it is down anyway).
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// When a commit of a pool's connections returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After the commit's WAL is flushed to disk (Postgres' default): acknowledged writes survive
    /// an operating-system crash.
    Flushed,
    /// Before the flush (`synchronous_commit = off`), for writes nobody is waiting on: running
    /// executions' history, the recorder's events. Postgres stays consistent; an OS crash (not a
    /// process crash) may lose the last few hundred milliseconds of them, which the restart and
    /// recording paths tolerate (re-recorded from history; a lost RUNNING row is the restart
    /// case). A later flushed commit on any connection flushes every deferred commit before it,
    /// so whatever a client was answered after a flushed commit is durable.
    Deferred,
}

impl Store {
    /// Connects lazily-checked: the first query fails if Postgres is unreachable.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(url, max_connections, Durability::Flushed).await
    }

    /// A pool whose commits are [`Durability::Flushed`] or [`Durability::Deferred`].
    pub async fn connect_with(url: &str, max_connections: u32, durability: Durability) -> Result<Self, StoreError> {
        let mut options: sqlx::postgres::PgConnectOptions = url.parse()?;
        if durability == Durability::Deferred {
            options = options.options([("synchronous_commit", "off")]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            // sqlx pings every idle connection it hands out (a round trip to Postgres per
            // query, on top of the one it makes when the connection comes back): only those
            // idle long enough to have been dropped meanwhile are checked (see `IDLE_CHECK`).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_CHECK {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations of the whole schema (`migrations::MIGRATOR`; idempotent,
    /// concurrent callers are serialised by sqlx's lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ---- workflows ----

    /// Creates a workflow, and its tenant and user on first use.
    pub async fn create_workflow(
        &self,
        tenant: &str,
        user: &str,
        role: &str,
        name: &str,
        description: Option<&str>,
        graph: &Value,
    ) -> Result<Workflow, StoreError> {
        let mut tx = self.pool.begin().await?;
        touch_tenant_and_user(&mut tx, tenant, user, role).await?;
        let row = sqlx::query_as::<_, Workflow>(concat!(
            "INSERT INTO workflows (id, tenant_id, name, description, graph, created_by) \
             VALUES ($1, $2, $3, $4, $5::text::json, $6) RETURNING ",
            workflow_columns!(),
            ""
        ))
        .bind(Uuid::new_v4())
        .bind(tenant)
        .bind(name)
        .bind(description)
        .bind(graph.to_string())
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
        let event = domain_events::Event::WorkflowCreated(workflow_data(&row, None));
        domain_events::record(&mut tx, tenant, &event).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The version a start runs: the one the `live` alias routes to, else the latest; `None` when
    /// the workflow was never published. One small read (the graphs stay in the database).
    pub async fn live_version(&self, tenant: &str, id: Uuid) -> Result<Option<i32>, StoreError> {
        sqlx::query_scalar::<_, Option<i32>>(
            "SELECT coalesce(live_version, latest_version) FROM workflows WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    pub async fn get_workflow(&self, tenant: &str, id: Uuid) -> Result<Workflow, StoreError> {
        sqlx::query_as::<_, Workflow>(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflows WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    /// Replaces the draft (graph, name, description).
    pub async fn update_workflow(
        &self,
        tenant: &str,
        id: Uuid,
        name: &str,
        description: Option<&str>,
        graph: &Value,
    ) -> Result<Workflow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query_as::<_, Workflow>(concat!(
            "UPDATE workflows SET name = $3, description = $4, graph = $5::text::json, updated_at = now() \
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING ",
            workflow_columns!(),
            ""
        ))
        .bind(tenant)
        .bind(id)
        .bind(name)
        .bind(description)
        .bind(graph.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let event = domain_events::Event::WorkflowUpdated(workflow_data(&row, None));
        domain_events::record(&mut tx, tenant, &event).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Soft delete: the row stays for its versions and executions, hidden from every read.
    pub async fn delete_workflow(&self, tenant: &str, id: Uuid) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let name: String = sqlx::query_scalar(
            "UPDATE workflows SET deleted_at = now(), updated_at = now() \
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING name",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let data = domain_events::WorkflowData { workflow_id: id, name: Some(name), version: None };
        domain_events::record(&mut tx, tenant, &domain_events::Event::WorkflowDeleted(data)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Newest first; `name` filters case-insensitively on a substring.
    pub async fn list_workflows(
        &self,
        tenant: &str,
        name: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<WorkflowSummary>, StoreError> {
        let after = cursor.map(Cursor::decode).transpose()?;
        let pattern = name.map(|n| format!("%{}%", escape_like(&n.to_lowercase())));
        let limit = limit.clamp(1, 200) as i64;
        let rows = sqlx::query_as::<_, WorkflowSummary>(
            "SELECT id, name, description, latest_version, live_version, created_at, updated_at \
             FROM workflows \
             WHERE tenant_id = $1 AND deleted_at IS NULL \
               AND ($2::text IS NULL OR lower(name) LIKE $2) \
               AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind(tenant)
        .bind(pattern)
        .bind(after.as_ref().map(|c| c.created_at))
        .bind(after.as_ref().map(|c| c.id))
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(page(rows, limit as usize, |w| Cursor { created_at: w.created_at, id: w.id }.encode()))
    }

    /// Locks the workflow row for a publish or an alias change; other writers of the same
    /// workflow wait until this transaction ends.
    pub async fn lock_workflow(&self, tenant: &str, id: Uuid) -> Result<WorkflowTx, StoreError> {
        let mut tx = self.pool.begin().await?;
        let workflow = sqlx::query_as::<_, Workflow>(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflows \
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(WorkflowTx { tx, workflow })
    }

    // ---- versions ----

    pub async fn get_version(&self, tenant: &str, workflow_id: Uuid, version: i32) -> Result<Version, StoreError> {
        sqlx::query_as::<_, Version>(concat!(
            "SELECT ", version_columns!(), " FROM workflow_versions v \
             WHERE v.tenant_id = $1 AND v.workflow_id = $2 AND v.version = $3 \
               AND EXISTS (SELECT 1 FROM workflows w WHERE w.id = v.workflow_id AND w.tenant_id = $1 AND w.deleted_at IS NULL)"
        ))
        .bind(tenant)
        .bind(workflow_id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    /// Newest first; the cursor is the last version number seen.
    pub async fn list_versions(
        &self,
        tenant: &str,
        workflow_id: Uuid,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<VersionSummary>, StoreError> {
        // Checking the workflow first turns "no versions" and "no such workflow" into
        // different answers.
        self.get_workflow(tenant, workflow_id).await?;
        let before = match cursor {
            Some(c) => Some(c.parse::<i32>().map_err(|_| StoreError::BadCursor)?),
            None => None,
        };
        let limit = limit.clamp(1, 200) as i64;
        let rows = sqlx::query_as::<_, VersionSummary>(
            "SELECT version, workflow_type, content_hash, state_machine_version_arn, created_by, created_at \
             FROM workflow_versions \
             WHERE tenant_id = $1 AND workflow_id = $2 AND ($3::int IS NULL OR version < $3) \
             ORDER BY version DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(workflow_id)
        .bind(before)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(page(rows, limit as usize, |v| v.version.to_string()))
    }

    // ---- secrets ----

    /// Stores a new secret; `Conflict` if the name is taken.
    pub async fn create_secret(
        &self,
        tenant: &str,
        user: &str,
        role: &str,
        name: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<SecretName, StoreError> {
        let mut tx = self.pool.begin().await?;
        touch_tenant_and_user(&mut tx, tenant, user, role).await?;
        let row = sqlx::query_as::<_, SecretName>(
            "INSERT INTO secrets (tenant_id, name, nonce, ciphertext) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, name) DO NOTHING RETURNING name, created_at, updated_at",
        )
        .bind(tenant)
        .bind(name)
        .bind(nonce)
        .bind(ciphertext)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Conflict(format!("a secret named `{name}` already exists; delete it first")))?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn list_secrets(&self, tenant: &str) -> Result<Vec<SecretName>, StoreError> {
        Ok(sqlx::query_as::<_, SecretName>(
            "SELECT name, created_at, updated_at FROM secrets WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The sealed value, for node functions that resolve `{{ secrets.NAME }}`.
    pub async fn get_secret(&self, tenant: &str, name: &str) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let row = sqlx::query("SELECT nonce, ciphertext FROM secrets WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((row.try_get("nonce")?, row.try_get("ciphertext")?))
    }

    pub async fn delete_secret(&self, tenant: &str, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    // ---- API keys ----

    #[allow(clippy::too_many_arguments)]
    pub async fn create_api_key(
        &self,
        tenant: &str,
        user: &str,
        user_role: &str,
        name: &str,
        role: &str,
        prefix: &str,
        secret_hash: &[u8],
    ) -> Result<ApiKeyRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        touch_tenant_and_user(&mut tx, tenant, user, user_role).await?;
        let row = sqlx::query_as::<_, ApiKeyRow>(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, role, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             RETURNING id, tenant_id, name, prefix, role, created_by, created_at, last_used_at",
        )
        .bind(Uuid::new_v4())
        .bind(tenant)
        .bind(name)
        .bind(prefix)
        .bind(secret_hash)
        .bind(role)
        .bind(user)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if unique_violation(&e) { StoreError::Conflict("key prefix collision; retry".into()) } else { e.into() }
        })?;
        tx.commit().await?;
        Ok(row)
    }

    /// Looks a key up by its public prefix, across tenants (this is how its tenant is found).
    /// Revoked keys are not returned.
    pub async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKeySecret>, StoreError> {
        Ok(sqlx::query_as::<_, ApiKeySecret>(
            "SELECT id, tenant_id, name, role, secret_hash, last_used_at FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL",
        )
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records that a key was just used, unless that was recorded less than a minute ago (by
    /// any process), so a busy key costs one write a minute, not one per request.
    pub async fn touch_api_key(&self, id: Uuid) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = now() \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKeyRow>, StoreError> {
        Ok(sqlx::query_as::<_, ApiKeyRow>(
            "SELECT id, tenant_id, name, prefix, role, created_by, created_at, last_used_at FROM api_keys \
             WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn revoke_api_key(&self, tenant: &str, id: Uuid) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}

/// A locked workflow row (see [`Store::lock_workflow`]). Dropping it without
/// [`WorkflowTx::commit`] rolls everything back.
pub struct WorkflowTx {
    tx: Transaction<'static, Postgres>,
    workflow: Workflow,
}

impl WorkflowTx {
    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// The number the next published version gets.
    pub fn next_version(&self) -> i32 {
        self.workflow.latest_version.unwrap_or(0) + 1
    }

    /// Inserts an immutable version and makes it the latest and live one.
    pub async fn insert_version(&mut self, user: &str, role: &str, new: NewVersion) -> Result<Version, StoreError> {
        let tenant = self.workflow.tenant_id.clone();
        touch_tenant_and_user(&mut self.tx, &tenant, user, role).await?;
        let version = sqlx::query_as::<_, Version>(concat!(
            "INSERT INTO workflow_versions (tenant_id, workflow_id, version, graph, asl, workflow_type, \
                 content_hash, state_machine_arn, state_machine_version_arn, created_by) \
             VALUES ($1, $2, $3, $4::text::json, $5::text::json, $6, $7, $8, $9, $10) RETURNING ",
            version_columns!(),
            ""
        ))
        .bind(&tenant)
        .bind(self.workflow.id)
        .bind(new.version)
        .bind(new.graph.to_string())
        .bind(new.asl.to_string())
        .bind(&new.workflow_type)
        .bind(&new.content_hash)
        .bind(&new.state_machine_arn)
        .bind(&new.state_machine_version_arn)
        .bind(user)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict("this version was published concurrently; retry".into())
            } else {
                e.into()
            }
        })?;
        sqlx::query(
            "UPDATE workflows SET latest_version = $3, live_version = $3, \
                 state_machine_arn = COALESCE($4, state_machine_arn), alias_arn = COALESCE($5, alias_arn), \
                 updated_at = now() \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&tenant)
        .bind(self.workflow.id)
        .bind(new.version)
        .bind(&new.state_machine_arn)
        .bind(&new.alias_arn)
        .execute(&mut *self.tx)
        .await?;
        let event = domain_events::Event::WorkflowPublished(workflow_data(&self.workflow, Some(new.version)));
        domain_events::record(&mut self.tx, &tenant, &event).await?;
        Ok(version)
    }

    /// A version of this workflow, read inside the lock.
    pub async fn version(&mut self, version: i32) -> Result<Version, StoreError> {
        sqlx::query_as::<_, Version>(concat!(
            "SELECT ",
            version_columns!(),
            " FROM workflow_versions WHERE tenant_id = $1 AND workflow_id = $2 AND version = $3"
        ))
        .bind(&self.workflow.tenant_id)
        .bind(self.workflow.id)
        .bind(version)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound)
    }

    /// Points the live alias at an existing version (rollback or roll forward).
    pub async fn set_live_version(&mut self, version: i32, alias_arn: Option<&str>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE workflows SET live_version = $3, alias_arn = COALESCE($4, alias_arn), updated_at = now() \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.workflow.tenant_id)
        .bind(self.workflow.id)
        .bind(version)
        .bind(alias_arn)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

async fn touch_tenant_and_user(
    tx: &mut Transaction<'static, Postgres>,
    tenant: &str,
    user: &str,
    role: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT (id) DO NOTHING")
        .bind(tenant)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO users (tenant_id, id, role) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET role = EXCLUDED.role, last_seen_at = now()",
    )
    .bind(tenant)
    .bind(user)
    .bind(role)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The `data` of a workflow's domain event: its id and name (and the version published).
fn workflow_data(workflow: &Workflow, version: Option<i32>) -> domain_events::WorkflowData {
    domain_events::WorkflowData { workflow_id: workflow.id, name: Some(workflow.name.clone()), version }
}

fn page<T>(mut rows: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor)
    } else {
        None
    };
    Page { items: rows, next_cursor }
}

/// Makes `%`, `_` and `\` in user input match literally in a LIKE pattern.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
