//! Recording: an execution's Step Functions history, translated into node-level events
//! ([`crate::history`]), appended past the stored ones to `execution_events` and to the
//! execution's Redis stream, with the row's status and output following the history.

use aws_sdk_sfn::error::ProvideErrorMetadata as _;
use serde_json::{Value, json};
use sqlx::Row as _;
use uuid::Uuid;

use crate::history::{self, NodeEvent, Outcome};
use crate::{COLUMNS, ExecError, Execution, Executions, is_terminal, row_to_execution};

/// What a recording moves the row to.
enum Ending<'a> {
    /// The outcome the history tells (RUNNING until it ends), and the id of the history's last
    /// event (the cursor of the next recording).
    History { outcome: Outcome, last: Option<i64> },
    /// A synchronous execution's answer, with its execution ARN.
    Sync { arn: &'a str, answer: Answer },
}

/// The outcome `StartSyncExecution` answered (or the wait's end), for the `executions` row.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: &'static str,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Answer {
    /// Puts the answer on the row (and the ARN, when Step Functions gave one); the row after.
    pub(crate) async fn store(
        &self,
        conn: &mut sqlx::PgConnection,
        id: Uuid,
        arn: Option<&str>,
    ) -> Result<Execution, sqlx::Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE executions SET status = $2, output = $3::text::json, error = $4, cause = $5, execution_arn = $6, \
             stopped_at = now() WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(self.status)
        .bind(self.output.as_ref().map(Value::to_string))
        .bind(&self.error)
        .bind(&self.cause)
        .bind(arn)
        .fetch_one(conn)
        .await?;
        row_to_execution(&row, false)
    }
}

/// The Redis stream of an execution's node-level events; entry ids are `{seq}-1`.
pub fn stream_key(tenant: &str, id: Uuid) -> String {
    format!("weft:exec:{tenant}:{id}")
}

/// How long a finished execution's stream stays in Redis (readers fall back to Postgres).
const STREAM_TTL_SECONDS: u64 = 86_400;
/// Entries kept per stream (approximately).
const STREAM_MAXLEN: u64 = 10_000;

impl Executions {
    /// Records execution `id`'s new history: appends node-level events past the stored ones (to
    /// Postgres, then to the Redis stream) and updates the row's status and output. Returns
    /// whether anything changed. Safe to run concurrently and repeatedly (it is how the recorder
    /// loop, the AWS `recorder` function and readers all keep executions current).
    pub async fn record(&self, id: Uuid) -> Result<bool, ExecError> {
        let Some(row) =
            sqlx::query("SELECT tenant_id, execution_arn, status, history_event_id FROM executions WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?
        else {
            return Ok(false);
        };
        let tenant: String = row.try_get("tenant_id")?;
        let Some(arn): Option<String> = row.try_get("execution_arn")? else { return Ok(false) };
        let status: String = row.try_get("status")?;
        let recorded: Option<i64> = row.try_get("history_event_id")?;
        // Incremental: when the history's last event is the last one translated, nothing is new
        // (a one-event read instead of the whole history).
        if let Some(recorded) = recorded
            && !is_terminal(&status)
            && self.last_history_id(&arn).await? == Some(recorded)
        {
            return Ok(false);
        }
        let (node_events, outcome, last) = self.translated_history(&arn).await?;
        Ok(self.append(&tenant, id, &node_events, &Ending::History { outcome, last }).await?.0)
    }

    /// The id of the last event of `arn`'s history (`reverseOrder`, one event).
    async fn last_history_id(&self, arn: &str) -> Result<Option<i64>, ExecError> {
        let page = self
            .sfn()?
            .get_execution_history()
            .execution_arn(arn)
            .reverse_order(true)
            .max_results(1)
            .send()
            .await
            .map_err(|e| ExecError::StepFunctions(format!("{:?}: {:?}", e.code(), e.message())))?;
        Ok(page.events().first().map(|e| e.id()))
    }

    /// Records a synchronous execution's answer (`StartSyncExecution`'s status and output) with
    /// the node-level events of its history, in one transaction; an endpoint that keeps no
    /// history of EXPRESS executions (AWS) leaves the events out.
    pub(crate) async fn record_sync(
        &self,
        tenant: &str,
        id: Uuid,
        arn: &str,
        answer: Answer,
    ) -> Result<Execution, ExecError> {
        let node_events = match self.translated_history(arn).await {
            Ok((events, _, _)) => events,
            Err(err) => {
                tracing::debug!(%err, execution = %id, "no history for a synchronous execution");
                Vec::new()
            }
        };
        let (_, row) = self.append(tenant, id, &node_events, &Ending::Sync { arn, answer }).await?;
        row.ok_or_else(|| ExecError::Internal("a synchronous execution's row was not updated".into()))
    }

    /// The whole history of `arn`, translated, the outcome it tells and its last event's id.
    async fn translated_history(&self, arn: &str) -> Result<(Vec<NodeEvent>, Outcome, Option<i64>), ExecError> {
        let client = self.sfn()?;
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .get_execution_history()
                .execution_arn(arn)
                .max_results(1000)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| ExecError::StepFunctions(format!("{:?}: {:?}", e.code(), e.message())))?;
            events.extend_from_slice(page.events());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        let items = history::from_sdk(&events);
        Ok((history::translate(&items), history::outcome(&items), items.last().map(|e| e.id)))
    }

    /// Appends the events of `node_events` (the translation of the whole history so far) that
    /// are past the stored ones, and moves the row to the `ending`, in one transaction under the
    /// row's lock; then adds the new events to the Redis stream in one round trip. Returns
    /// whether anything changed, and for a synchronous ending the row after.
    async fn append(
        &self,
        tenant: &str,
        id: Uuid,
        node_events: &[NodeEvent],
        ending: &Ending<'_>,
    ) -> Result<(bool, Option<Execution>), ExecError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "SELECT status, (SELECT coalesce(max(last_seq), 0) FROM execution_event_chunks WHERE execution_id = $1) \
             AS stored FROM executions WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let status: String = row.try_get("status")?;
        let stored: i64 = row.try_get("stored")?;
        let stored = usize::try_from(stored).unwrap_or(usize::MAX);
        let fresh = node_events.get(stored..).unwrap_or_default();
        if let Ending::History { outcome, last } = ending
            && (node_events.len() < stored || (fresh.is_empty() && status == outcome.status))
        {
            // Another recorder saw a newer history already, or nothing is new (the history may
            // have grown by events that translate to nothing yet: remember how far it was read).
            if node_events.len() == stored && !is_terminal(&status) {
                sqlx::query(
                    "UPDATE executions SET history_event_id = $2 WHERE id = $1 AND history_event_id IS DISTINCT FROM $2",
                )
                .bind(id)
                .bind(last)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            return Ok((false, None));
        }
        let first_seq = stored as i64 + 1;
        if !fresh.is_empty() {
            let chunk: Vec<Value> = fresh
                .iter()
                .enumerate()
                .map(|(i, e)| json!({"seq": first_seq + i as i64, "type": e.kind, "node_id": e.node_id, "payload": e.payload}))
                .collect();
            sqlx::query(
                "INSERT INTO execution_event_chunks (tenant_id, execution_id, first_seq, last_seq, events) \
                 VALUES ($1, $2, $3, $4, $5::text::json)",
            )
            .bind(tenant)
            .bind(id)
            .bind(first_seq)
            .bind(first_seq + fresh.len() as i64 - 1)
            .bind(Value::Array(chunk).to_string())
            .execute(&mut *tx)
            .await?;
        }
        let mut after = None;
        let over = match ending {
            Ending::History { outcome, last } => {
                if status != outcome.status && status != "PENDING"
                    || (status == "PENDING" && outcome.status != "RUNNING")
                {
                    sqlx::query(
                        "UPDATE executions SET status = $2, output = $3::text::json, error = $4, cause = $5, \
                         stopped_at = CASE WHEN $6 THEN now() ELSE NULL END, history_event_id = $7 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(outcome.status)
                    .bind(outcome.output.as_ref().map(Value::to_string))
                    .bind(&outcome.error)
                    .bind(&outcome.cause)
                    .bind(is_terminal(outcome.status))
                    .bind(last)
                    .execute(&mut *tx)
                    .await?;
                } else if !is_terminal(outcome.status) {
                    sqlx::query("UPDATE executions SET history_event_id = $2 WHERE id = $1")
                        .bind(id)
                        .bind(last)
                        .execute(&mut *tx)
                        .await?;
                }
                is_terminal(outcome.status)
            }
            Ending::Sync { arn, answer } => {
                after = Some(answer.store(&mut tx, id, Some(arn)).await?);
                true
            }
        };
        tx.commit().await?;
        self.publish(tenant, id, first_seq, fresh, over).await;
        Ok((true, after))
    }

    /// Adds events (sequence numbers from `first_seq`) to the execution's Redis stream, in one
    /// pipelined round trip. Best effort: Postgres is the record, readers fall back to it.
    async fn publish(&self, tenant: &str, id: Uuid, first_seq: i64, events: &[NodeEvent], over: bool) {
        let Some(mut redis) = self.redis() else { return };
        let key = stream_key(tenant, id);
        let mut pipe = redis::pipe();
        for (i, e) in events.iter().enumerate() {
            let seq = first_seq + i as i64;
            // Explicit ids keep the stream in seq order and make re-adds fail instead of duplicating.
            pipe.cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAXLEN)
                .arg(format!("{seq}-1"))
                .arg("seq")
                .arg(seq)
                .arg("type")
                .arg(e.kind)
                .arg("node_id")
                .arg(e.node_id.as_deref().unwrap_or_default())
                .arg("payload")
                .arg(e.payload.to_string())
                .ignore();
        }
        if over {
            pipe.cmd("EXPIRE").arg(&key).arg(STREAM_TTL_SECONDS).ignore();
        }
        if events.is_empty() && !over {
            return;
        }
        // A re-add fails the whole reply but not the other commands of the pipeline.
        if let Err(err) = pipe.query_async::<()>(&mut redis).await {
            tracing::debug!(%err, execution = %id, "redis stream append skipped");
        }
    }

    /// Ids of executions that are not over yet (and have started), oldest first, at most `limit`.
    pub async fn active_ids(&self, limit: i64) -> Result<Vec<Uuid>, ExecError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM executions WHERE status IN ('PENDING', 'RUNNING') AND execution_arn IS NOT NULL \
             ORDER BY started_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Records every execution that is not over yet (oldest first, at most `limit`), `parallel`
    /// at a time. Returns how many changed.
    pub async fn record_active(&self, limit: i64, parallel: usize) -> Result<usize, ExecError> {
        use futures::StreamExt as _;
        let ids = self.active_ids(limit).await?;
        let changed = futures::stream::iter(ids)
            .map(|id| async move {
                match self.record(id).await {
                    Ok(c) => c,
                    Err(err) => {
                        tracing::warn!(%err, execution = %id, "recording failed; will retry");
                        false
                    }
                }
            })
            .buffer_unordered(parallel.max(1))
            .filter(|c| std::future::ready(*c))
            .count()
            .await;
        Ok(changed)
    }

    /// Records the execution with this ARN (for the AWS recorder function, which gets ARNs from
    /// EventBridge). Unknown ARNs (executions Weft did not start) are ignored.
    pub async fn record_arn(&self, execution_arn: &str) -> Result<bool, ExecError> {
        let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM executions WHERE execution_arn = $1")
            .bind(execution_arn)
            .fetch_optional(self.pool())
            .await?;
        match id {
            Some(id) => self.record(id).await,
            None => Ok(false),
        }
    }
}
