//! [`PgStore`]: the [`SfnStore`] over Postgres, in the tables of
//! `migrations/20261130100001_sfn.sql`. Runtime queries with binds (CI has no database at build
//! time); records travel as JSONB documents, with the keys and the columns the listings filter on
//! copied out.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::types::Json;

use crate::store::{
    AliasRecord, ExecutionFilter, ExecutionRecord, SfnStore, StateMachineRecord, StoreError, VersionRecord, event_id,
};

/// Postgres storage. Cheap to clone (a pool and a set).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The hashes of definitions known to be in `sfn_definitions` (stored or seen by this
    /// process; rows there are never deleted), so each is sent once.
    definitions: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// The key of a definition in `sfn_definitions`: the SHA-256 of its text, in hex.
fn definition_sha256(definition: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(definition.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Execution rows: the document and the definition it references.
fn decode_executions(rows: Vec<(Json<Value>, Option<String>)>) -> Result<Vec<ExecutionRecord>, StoreError> {
    rows.into_iter()
        .map(|(Json(doc), definition)| {
            let mut rec: ExecutionRecord = serde_json::from_value(doc)?;
            rec.definition = definition.unwrap_or_default();
            Ok(rec)
        })
        .collect()
}

/// The columns execution reads select, for [`decode_executions`].
const EXECUTION_COLUMNS: &str =
    "e.doc, d.definition FROM sfn_executions e LEFT JOIN sfn_definitions d ON d.sha256 = e.definition_sha256";

fn decode<T: DeserializeOwned>(rows: Vec<(Json<Value>,)>) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(|(Json(v),)| serde_json::from_value(v).map_err(StoreError::from)).collect()
}

// Documents are bound as text and cast to `json`: `jsonb` (and sqlx's jsonb-typed binding)
// refuses `\u0000`, which execution data may legally contain.
fn doc<T: Serialize>(v: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(v)?)
}

impl PgStore {
    /// Connects; call [`PgStore::migrate`] once before use (or let another owner of tables in the
    /// same database migrate it: every owner runs the same `migrations::MIGRATOR`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(max_connections).connect(url).await?;
        Ok(Self::from_pool(pool))
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool, definitions: Default::default() }
    }

    /// Makes sure `definition` is in `sfn_definitions` (a write the first time this process sees
    /// it); its key.
    async fn definition(&self, definition: &str) -> Result<String, StoreError> {
        let sha = definition_sha256(definition);
        if self.definitions.lock().unwrap_or_else(|p| p.into_inner()).contains(&sha) {
            return Ok(sha);
        }
        sqlx::query("INSERT INTO sfn_definitions (sha256, definition) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&sha)
            .bind(definition)
            .execute(&self.pool)
            .await?;
        self.definitions.lock().unwrap_or_else(|p| p.into_inner()).insert(sha.clone());
        Ok(sha)
    }

    /// Runs the workspace's migrations (`migrations::MIGRATOR`), which include this crate's
    /// `sfn_*` tables.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::MIGRATOR.run(&self.pool).await.map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
    }

    async fn one<T: DeserializeOwned>(
        &self,
        sql: &'static str,
        a: &str,
        b: Option<&str>,
        n: Option<i32>,
    ) -> Result<Option<T>, StoreError> {
        let mut q = sqlx::query_as::<_, (Json<Value>,)>(sql).bind(a);
        if let Some(b) = b {
            q = q.bind(b);
        }
        if let Some(n) = n {
            q = q.bind(n);
        }
        Ok(decode(q.fetch_optional(&self.pool).await?.into_iter().collect())?.pop())
    }
}

#[async_trait::async_trait]
impl SfnStore for PgStore {
    async fn create_state_machine(&self, sm: &StateMachineRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sfn_state_machines (name, doc) VALUES ($1, $2::text::json)")
            .bind(&sm.name)
            .bind(doc(sm)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn put_state_machine(&self, sm: &StateMachineRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sfn_state_machines (name, doc) VALUES ($1, $2::text::json) ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc")
            .bind(&sm.name)
            .bind(doc(sm)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_state_machine(&self, name: &str) -> Result<Option<StateMachineRecord>, StoreError> {
        self.one("SELECT doc FROM sfn_state_machines WHERE name = $1", name, None, None).await
    }

    async fn list_state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
        let rows = sqlx::query_as("SELECT doc FROM sfn_state_machines ORDER BY name").fetch_all(&self.pool).await?;
        decode(rows)
    }

    async fn create_version(&self, v: &VersionRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sfn_versions (state_machine, version, doc) VALUES ($1, $2, $3::text::json)")
            .bind(&v.state_machine)
            .bind(i32::try_from(v.version).unwrap_or(i32::MAX))
            .bind(doc(v)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_version(&self, state_machine: &str, version: u32) -> Result<Option<VersionRecord>, StoreError> {
        let Ok(n) = i32::try_from(version) else { return Ok(None) };
        self.one("SELECT doc FROM sfn_versions WHERE state_machine = $1 AND version = $2", state_machine, None, Some(n))
            .await
    }

    async fn put_alias(&self, a: &AliasRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sfn_aliases (state_machine, name, doc) VALUES ($1, $2, $3::text::json) \
             ON CONFLICT (state_machine, name) DO UPDATE SET doc = EXCLUDED.doc",
        )
        .bind(&a.state_machine)
        .bind(&a.name)
        .bind(doc(a)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_alias(&self, state_machine: &str, name: &str) -> Result<Option<AliasRecord>, StoreError> {
        self.one("SELECT doc FROM sfn_aliases WHERE state_machine = $1 AND name = $2", state_machine, Some(name), None)
            .await
    }

    async fn insert_execution(&self, e: &ExecutionRecord) -> Result<(), StoreError> {
        let sha = self.definition(&e.definition).await?;
        sqlx::query(
            "INSERT INTO sfn_executions (arn, state_machine, status, start_date, doc, definition_sha256) \
             VALUES ($1, $2, $3, $4, $5::text::json, $6)",
        )
        .bind(&e.arn)
        .bind(&e.state_machine)
        .bind(&e.status)
        .bind(e.start_date)
        .bind(doc(e)?)
        .bind(sha)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn put_execution(&self, e: &ExecutionRecord) -> Result<(), StoreError> {
        self.finish_execution(e, &[]).await
    }

    async fn finish_execution(&self, e: &ExecutionRecord, events: &[Value]) -> Result<(), StoreError> {
        // One statement, so one commit: the events (a chunk, when there are any) and the outcome.
        // (Also `put_execution`, with no events.)
        let sha = self.definition(&e.definition).await?;
        let (first, last, chunk) = chunk(events)?;
        sqlx::query(
            "WITH appended AS (INSERT INTO sfn_history_chunks (execution_arn, first_id, last_id, events) \
               SELECT $1, $6::bigint, $7::bigint, $8::text::json WHERE $8::text IS NOT NULL ON CONFLICT DO NOTHING) \
             INSERT INTO sfn_executions (arn, state_machine, status, start_date, doc, definition_sha256) \
             VALUES ($1, $2, $3, $4, $5::text::json, $9) \
             ON CONFLICT (arn) DO UPDATE SET status = EXCLUDED.status, doc = EXCLUDED.doc",
        )
        .bind(&e.arn)
        .bind(&e.state_machine)
        .bind(&e.status)
        .bind(e.start_date)
        .bind(doc(e)?)
        .bind(first)
        .bind(last)
        .bind(chunk)
        .bind(sha)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {EXECUTION_COLUMNS} WHERE e.arn = $1")))
            .bind(arn)
            .fetch_all(&self.pool)
            .await?;
        Ok(decode_executions(rows)?.pop())
    }

    async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>, StoreError> {
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EXECUTION_COLUMNS} \
             WHERE ($1::text IS NULL OR e.state_machine = $1) AND ($2::text IS NULL OR e.status = $2) \
               AND ($3::text IS NULL OR e.doc->>'version_arn' = $3) AND ($4::text IS NULL OR e.doc->>'alias_arn' = $4) \
             ORDER BY e.start_date DESC, e.arn"
        )))
        .bind(&filter.state_machine)
        .bind(&filter.status)
        .bind(&filter.version_arn)
        .bind(&filter.alias_arn)
        .fetch_all(&self.pool)
        .await?;
        decode_executions(rows)
    }

    async fn running_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        let rows =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {EXECUTION_COLUMNS} WHERE e.status = 'RUNNING'")))
                .fetch_all(&self.pool)
                .await?;
        decode_executions(rows)
    }

    async fn append_events(&self, execution_arn: &str, events: &[Value]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // One row per batch: the driver hands over whatever the engine produced meanwhile. A
        // retried batch (same first id) is not stored twice.
        let (first, last, chunk) = chunk(events)?;
        sqlx::query(
            "INSERT INTO sfn_history_chunks (execution_arn, first_id, last_id, events) VALUES ($1, $2, $3, $4::text::json) \
             ON CONFLICT DO NOTHING",
        )
        .bind(execution_arn)
        .bind(first)
        .bind(last)
        .bind(chunk)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn events(
        &self,
        execution_arn: &str,
        from: u64,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Value>, StoreError> {
        let from_id = i64::try_from(from).unwrap_or(i64::MAX);
        // Every chunk holds at least one event, so `limit` chunks hold at least `limit` events.
        let chunks = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = if reverse {
            "SELECT events FROM sfn_history_chunks WHERE execution_arn = $1 AND first_id <= $2 ORDER BY first_id DESC LIMIT $3"
        } else {
            "SELECT events FROM sfn_history_chunks WHERE execution_arn = $1 AND last_id >= $2 ORDER BY first_id LIMIT $3"
        };
        let rows: Vec<(Json<Vec<Value>>,)> =
            sqlx::query_as(sql).bind(execution_arn).bind(from_id).bind(chunks).fetch_all(&self.pool).await?;
        let events = rows.into_iter().flat_map(|(Json(events),)| {
            let mut events = events;
            if reverse {
                events.reverse();
            }
            events
        });
        Ok(if reverse {
            events.filter(|e| event_id(e) <= from).take(limit).collect()
        } else {
            events.filter(|e| event_id(e) >= from).take(limit).collect()
        })
    }
}

/// A chunk row's columns: first and last event ids and the JSON array (all `None` for no events).
type ChunkColumns = (Option<i64>, Option<i64>, Option<String>);

/// A batch of events as one chunk row: its first and last ids and its JSON array (`None` for no events).
fn chunk(events: &[Value]) -> Result<ChunkColumns, StoreError> {
    let id = |e: Option<&Value>| e.map(|e| i64::try_from(event_id(e)).unwrap_or(i64::MAX));
    if events.is_empty() {
        return Ok((None, None, None));
    }
    // A slice serializes as the JSON array of its items, without copying them into a `Value`.
    Ok((id(events.first()), id(events.last()), Some(serde_json::to_string(events)?)))
}
