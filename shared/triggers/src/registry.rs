//! The `triggers` table: which published workflows start on a webhook, a schedule or a queue event.
//!
//! Rows are registered from the live version's graph when a workflow is published or its alias
//! moves ([`Registry::sync`]). A row is identified by (workflow, kind, key), so publishing the same
//! trigger again keeps its webhook secret and the schedule's last fire time; triggers that left the
//! graph are disabled, not deleted (their deliveries stay referenced).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::Error;

/// A trigger as the graph declares it: `{"type": "schedule", "cron": "..."}` etc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphTrigger {
    pub kind: String,
    /// The cron expression, the event name, or empty for a webhook.
    pub key: String,
}

impl GraphTrigger {
    /// The triggers of a `weft/v1` graph document; entries that are not well formed are skipped
    /// (publishing validated them already).
    pub fn from_graph(graph: &Value) -> Vec<Self> {
        let mut out: Vec<Self> = Vec::new();
        for t in graph.get("triggers").and_then(Value::as_array).into_iter().flatten() {
            let field = |name: &str| t.get(name).and_then(Value::as_str).map(str::trim).unwrap_or_default().to_owned();
            let trigger = match t.get("type").and_then(Value::as_str) {
                Some("webhook") => Self { kind: "webhook".into(), key: String::new() },
                Some("schedule") if !field("cron").is_empty() => Self { kind: "schedule".into(), key: field("cron") },
                Some("queue") if !field("event").is_empty() => Self { kind: "queue".into(), key: field("event") },
                _ => continue,
            };
            if !out.contains(&trigger) {
                out.push(trigger);
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct TriggerRow {
    pub id: Uuid,
    pub tenant_id: String,
    pub workflow_id: Uuid,
    pub kind: String,
    pub key: String,
    pub enabled: bool,
    pub version: Option<i32>,
    /// When it last started its workflow (a schedule: the due time it fired for); `None` until then.
    pub last_fired_at: Option<DateTime<Utc>>,
    /// When it was registered or last re-enabled; a schedule counts due times from here.
    pub armed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl TriggerRow {
    /// Where a schedule's next due time is counted from: its last fire, but never before it was
    /// (re-)armed.
    pub fn counting_from(&self) -> DateTime<Utc> {
        self.last_fired_at.map_or(self.armed_at, |fired| fired.max(self.armed_at))
    }
}

/// `secret_nonce`, `secret_sealed`.
type SealedColumns = (Option<Vec<u8>>, Option<Vec<u8>>);

const COLUMNS: &str = "id, tenant_id, workflow_id, kind, key, enabled, version, last_fired_at, armed_at, created_at";

#[derive(Clone)]
pub struct Registry {
    pool: PgPool,
    /// Webhook secrets are sealed with it; `None` for processes that only read and fire
    /// triggers (the trigger function, the scheduler), which need no secrets key.
    secrets: Option<secrets::SecretsKey>,
}

fn secret_name(id: Uuid) -> String {
    format!("trigger:{id}")
}

impl Registry {
    pub fn new(pool: PgPool, secrets: secrets::SecretsKey) -> Self {
        Self { pool, secrets: Some(secrets) }
    }

    /// A registry that finds and fires triggers but cannot seal or open webhook secrets
    /// (registering or verifying webhooks is then [`Error::NoSecretsKey`]).
    pub fn without_secrets(pool: PgPool) -> Self {
        Self { pool, secrets: None }
    }

    /// The pool it queries (the trigger function drains the domain event outbox on it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn key(&self) -> Result<&secrets::SecretsKey, Error> {
        self.secrets.as_ref().ok_or(Error::NoSecretsKey)
    }

    /// Makes the enabled triggers of `workflow_id` exactly `triggers` (from version `version`).
    /// New and re-enabled triggers are armed at `now` (schedules never fire for times before
    /// that); `last_fired_at` stays as it was (unset for new rows) until the trigger fires. A
    /// workflow that is not `tenant`'s is `RowNotFound`, as a missing one, and nothing changes.
    pub async fn sync(
        &self,
        tenant: &str,
        workflow_id: Uuid,
        version: i32,
        triggers: &[GraphTrigger],
        now: DateTime<Utc>,
    ) -> Result<Vec<TriggerRow>, Error> {
        let mut tx = self.pool.begin().await?;
        // Rows are keyed by workflow, not tenant: without this check another tenant's call would
        // update this workflow's rows or add its own. A plain read: the publish calling this
        // holds the workflow row's lock on another connection.
        let owned: Option<i32> = sqlx::query_scalar("SELECT 1 FROM workflows WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(workflow_id)
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            return Err(Error::Database(sqlx::Error::RowNotFound));
        }
        let mut ids = Vec::with_capacity(triggers.len());
        for t in triggers {
            let id = Uuid::new_v4();
            let sealed = if t.kind == "webhook" {
                Some(self.key()?.seal(tenant, &secret_name(id), super::signature::new_secret().as_bytes())?)
            } else {
                None
            };
            let config = match t.kind.as_str() {
                "schedule" => json!({"cron": t.key}),
                "queue" => json!({"event": t.key}),
                _ => json!({}),
            };
            // A disabled schedule that comes back starts counting from now, not from when it stopped.
            let (row_id,): (Uuid,) = sqlx::query_as(
                "INSERT INTO triggers (id, tenant_id, workflow_id, kind, key, config, version, secret_nonce, secret_sealed, armed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (workflow_id, kind, key) DO UPDATE SET
                    version = EXCLUDED.version,
                    armed_at = CASE WHEN triggers.enabled THEN triggers.armed_at ELSE EXCLUDED.armed_at END,
                    enabled = true
                 RETURNING id",
            )
            .bind(id)
            .bind(tenant)
            .bind(workflow_id)
            .bind(&t.kind)
            .bind(&t.key)
            .bind(config)
            .bind(version)
            .bind(sealed.as_ref().map(|s| s.nonce.clone()))
            .bind(sealed.as_ref().map(|s| s.ciphertext.clone()))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(row_id);
        }
        sqlx::query(
            "UPDATE triggers SET enabled = false WHERE tenant_id = $1 AND workflow_id = $2 AND NOT (id = ANY($3))",
        )
        .bind(tenant)
        .bind(workflow_id)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.list(tenant, workflow_id).await
    }

    /// Every trigger row of a workflow (enabled or not).
    pub async fn list(&self, tenant: &str, workflow_id: Uuid) -> Result<Vec<TriggerRow>, Error> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM triggers WHERE tenant_id = $1 AND workflow_id = $2 ORDER BY kind, key"
        )))
        .bind(tenant)
        .bind(workflow_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The webhook secret of a trigger, for its owner to sign deliveries with.
    pub async fn webhook_secret(&self, tenant: &str, id: Uuid) -> Result<Option<String>, Error> {
        let row: Option<SealedColumns> =
            sqlx::query_as("SELECT secret_nonce, secret_sealed FROM triggers WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some((Some(nonce), Some(ciphertext))) = row else { return Ok(None) };
        let plain = self.key()?.open(tenant, &secret_name(id), &secrets::Sealed { nonce, ciphertext })?;
        Ok(String::from_utf8(plain).ok())
    }

    /// The enabled webhook trigger of a workflow and its secret. Not tenant-scoped: the caller
    /// is a webhook sender, whose signature with this secret is what authenticates it.
    pub async fn webhook(&self, workflow_id: Uuid) -> Result<Option<(TriggerRow, String)>, Error> {
        let row: Option<TriggerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM triggers t WHERE workflow_id = $1 AND kind = 'webhook' AND enabled
               AND EXISTS (SELECT 1 FROM workflows w WHERE w.id = t.workflow_id AND w.deleted_at IS NULL)"
        )))
        .bind(workflow_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let Some(secret) = self.webhook_secret(&row.tenant_id, row.id).await? else { return Ok(None) };
        Ok(Some((row, secret)))
    }

    /// Records a delivery's signature; false if it was already seen (a replay). Deliveries older
    /// than twice the replay window are pruned here, since they can no longer pass the timestamp check.
    pub async fn record_delivery(&self, trigger_id: Uuid, signature: &str, now: DateTime<Utc>) -> Result<bool, Error> {
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(now - chrono::Duration::seconds(2 * super::signature::REPLAY_WINDOW_SECONDS))
            .execute(&self.pool)
            .await?;
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (trigger_id, signature, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(trigger_id)
        .bind(signature)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that a webhook or queue trigger just started its workflow.
    pub async fn mark_fired(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), Error> {
        sqlx::query("UPDATE triggers SET last_fired_at = $2 WHERE id = $1 AND kind <> 'schedule'")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets a recorded delivery (its execution could not be started, so the sender may retry).
    pub async fn forget_delivery(&self, trigger_id: Uuid, signature: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM webhook_deliveries WHERE trigger_id = $1 AND signature = $2")
            .bind(trigger_id)
            .bind(signature)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The enabled queue triggers for `event`: `tenant`'s only, or across tenants for a message
    /// without one (the queue is Weft's own, and each row says whose workflow starts).
    pub async fn queue_targets(&self, event: &str, tenant: Option<&str>) -> Result<Vec<TriggerRow>, Error> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM triggers t WHERE kind = 'queue' AND enabled AND config ->> 'event' = $1
               AND ($2::text IS NULL OR t.tenant_id = $2)
               AND EXISTS (SELECT 1 FROM workflows w WHERE w.id = t.workflow_id AND w.deleted_at IS NULL)
             ORDER BY created_at, id"
        )))
        .bind(event)
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every enabled schedule, across tenants (the scheduler's scan).
    pub async fn schedules(&self) -> Result<Vec<TriggerRow>, Error> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM triggers t WHERE kind = 'schedule' AND enabled
               AND EXISTS (SELECT 1 FROM workflows w WHERE w.id = t.workflow_id AND w.deleted_at IS NULL)"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Advances a schedule's `last_fired_at` from `seen` to `due`; false when another scheduler did first.
    pub async fn claim_fire(&self, id: Uuid, seen: Option<DateTime<Utc>>, due: DateTime<Utc>) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE triggers SET last_fired_at = $3 WHERE id = $1 AND enabled AND last_fired_at IS NOT DISTINCT FROM $2",
        )
        .bind(id)
        .bind(seen)
        .bind(due)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
