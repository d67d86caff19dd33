//! Recording: an execution's Step Functions history, translated into node-level events
//! ([`crate::history`]), appended past the stored ones to `execution_events` and to the
//! execution's Redis stream, with the row's status and output following the history. The domain
//! events of what a recording appends and of the status it moves to go to the outbox in the same
//! statement ([`crate::outbox`]).

use aws_sdk_sfn::error::ProvideErrorMetadata as _;
use serde_json::{Value, json};
use sqlx::Row as _;
use uuid::Uuid;

use crate::history::{self, NodeEvent, Outcome};
use crate::{COLUMNS, ExecError, Execution, Executions, is_terminal, outbox, row_to_execution};

/// A recording of a history: the translation of the whole history so far, the outcome it tells
/// and the id of its last event (the cursor of the next recording).
struct Recording<'a> {
    tenant: &'a str,
    id: Uuid,
    workflow_id: Uuid,
    node_events: &'a [NodeEvent],
    outcome: &'a Outcome,
    last: Option<i64>,
}

/// A row as a recording read it: its status and how many node events are stored.
struct Seen {
    status: String,
    stored: i64,
}

/// How many node events of execution `e` are stored (the last seq: seqs are dense from 1).
const STORED: &str = "(SELECT coalesce(max(c.last_seq), 0) FROM execution_event_chunks c WHERE c.execution_id = e.id)";

impl Seen {
    /// The row, locked until the transaction ends.
    async fn locked(tx: &mut sqlx::PgConnection, id: Uuid) -> Result<Self, sqlx::Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT e.status, {STORED} AS stored FROM executions e WHERE e.id = $1 FOR UPDATE"
        )))
        .bind(id)
        .fetch_one(tx)
        .await?;
        Ok(Self { status: row.try_get("status")?, stored: row.try_get("stored")? })
    }

    /// The events of `node_events` (a whole history's translation) past the stored ones.
    fn fresh<'e>(&self, node_events: &'e [NodeEvent]) -> &'e [NodeEvent] {
        node_events.get(usize::try_from(self.stored).unwrap_or(usize::MAX)..).unwrap_or_default()
    }
}

/// What [`Recording::write`] did.
enum Written<'a> {
    /// Appended these events, from seq `first_seq` (none, when only the status moved).
    Appended { first_seq: i64, fresh: &'a [NodeEvent] },
    /// Nothing new (how far the history was read is remembered).
    NothingNew,
    /// Nothing: the row is no longer as seen.
    RowMoved,
}

impl<'a> Recording<'a> {
    /// Appends the events past the `seen.stored` ones as one chunk and moves the row to the
    /// outcome, in one statement that writes only while the row is as `seen` (status and stored
    /// events; a concurrent recording also takes the chunk's key first, failing this one with a
    /// unique violation). The same statement records the domain events of the appended node
    /// events and of the move, so they are recorded exactly when the write is.
    async fn write(&self, conn: &mut sqlx::PgConnection, seen: &Seen) -> Result<Written<'a>, sqlx::Error> {
        let (outcome, status) = (self.outcome, seen.status.as_str());
        let stored = usize::try_from(seen.stored).unwrap_or(usize::MAX);
        let fresh = seen.fresh(self.node_events);
        if self.node_events.len() < stored || (fresh.is_empty() && status == outcome.status) {
            // Another recording saw a newer history already, or nothing is new (the history may
            // have grown by events that translate to nothing yet: remember how far it was read).
            if self.node_events.len() == stored && !is_terminal(status) {
                sqlx::query(
                    "UPDATE executions SET history_event_id = $2 WHERE id = $1 AND history_event_id IS DISTINCT FROM $2",
                )
                .bind(self.id)
                .bind(self.last)
                .execute(conn)
                .await?;
            }
            return Ok(Written::NothingNew);
        }
        let moves = status_moves(status, outcome.status);
        let chunk = Chunk { tenant: self.tenant, first_seq: seen.stored + 1, events: fresh };
        let mut domain = domain_events::Batch::new();
        domain.extend(outbox::nodes(self.id, fresh));
        if moves {
            domain.extend(outbox::ended(self.id, self.workflow_id, outcome.status, outcome.error.as_deref()));
        }
        let written = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "WITH upd AS (UPDATE executions e SET \
                 status = CASE WHEN $8 THEN $2 ELSE status END, \
                 output = CASE WHEN $8 THEN $3::text::json ELSE output END, \
                 error = CASE WHEN $8 THEN $4 ELSE error END, \
                 cause = CASE WHEN $8 THEN $5 ELSE cause END, \
                 stopped_at = CASE WHEN $8 THEN (CASE WHEN $6 THEN now() END) ELSE stopped_at END, \
                 history_event_id = CASE WHEN $8 OR $9 THEN $7 ELSE history_event_id END \
               WHERE e.id = $1 AND e.status = $10 AND {STORED} = $11 \
               RETURNING e.tenant_id, e.id), \
             ins AS (INSERT INTO execution_event_chunks (tenant_id, execution_id, first_seq, last_seq, events) \
               SELECT tenant_id, id, $11 + 1, $12, $13::text::json FROM upd WHERE $13::text IS NOT NULL), \
             ev AS ({}) \
             SELECT count(*) FROM upd",
            domain_events::insert_sql("upd", "upd.tenant_id", "$14")
        )))
        .bind(self.id)
        .bind(outcome.status)
        .bind(outcome.output.as_ref().map(Value::to_string))
        .bind(&outcome.error)
        .bind(&outcome.cause)
        .bind(is_terminal(outcome.status))
        .bind(self.last)
        .bind(moves)
        .bind(!moves && !is_terminal(outcome.status))
        .bind(status)
        .bind(seen.stored)
        .bind(chunk.last_seq())
        .bind((!fresh.is_empty()).then(|| chunk.json()))
        .bind(domain.to_param())
        .fetch_one(conn)
        .await?;
        Ok(if written == 1 { Written::Appended { first_seq: chunk.first_seq, fresh } } else { Written::RowMoved })
    }
}

/// The outcome `StartSyncExecution` answered (or the wait's end), for the `executions` row.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The execution's workflow (for its domain events).
    pub workflow_id: Uuid,
    pub status: &'static str,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// Node-level events as one `execution_event_chunks` row: seqs `first_seq..`, as a JSON array.
pub(crate) struct Chunk<'a> {
    pub tenant: &'a str,
    pub first_seq: i64,
    pub events: &'a [NodeEvent],
}

impl Chunk<'_> {
    fn last_seq(&self) -> i64 {
        self.first_seq + self.events.len() as i64 - 1
    }

    fn json(&self) -> String {
        let items: Vec<Value> = self
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({"seq": self.first_seq + i as i64, "type": e.kind, "node_id": e.node_id, "payload": e.payload})
            })
            .collect();
        Value::Array(items).to_string()
    }
}

impl Answer {
    /// Puts the answer on the row (and the ARN, when Step Functions gave one), with the chunk of
    /// events when there is one (not empty), in one statement; the row after. A chunk whose
    /// first seq is stored already fails the statement (unique violation) and changes nothing.
    /// The same statement records the domain events: `ExecutionStarted` unless the row had its
    /// ARN already (a sweep adopted it), those of the chunk's node events, and the outcome's
    /// unless the row had that status already (a recording got there first).
    pub(crate) async fn store(
        &self,
        conn: &mut sqlx::PgConnection,
        id: Uuid,
        arn: Option<&str>,
        chunk: Option<&Chunk<'_>>,
    ) -> Result<Execution, sqlx::Error> {
        let chunk = chunk.filter(|c| !c.events.is_empty());
        let mut domain = domain_events::Batch::new();
        domain.push(outbox::started(id, self.workflow_id));
        domain.extend(outbox::nodes(id, chunk.map(|c| c.events).unwrap_or_default()));
        domain.extend(outbox::ended(id, self.workflow_id, self.status, self.error.as_deref()));
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH old AS (SELECT execution_arn AS old_arn, status AS old_status FROM executions WHERE id = $1 FOR UPDATE), \
             upd AS (UPDATE executions SET status = $2, output = $3::text::json, error = $4, cause = $5, \
               execution_arn = $6, stopped_at = now() FROM old WHERE id = $1 \
               RETURNING {COLUMNS}, tenant_id, old_arn, old_status), \
             chunk AS (INSERT INTO execution_event_chunks (tenant_id, execution_id, first_seq, last_seq, events) \
               SELECT $7, id, $8, $9, $10::text::json FROM upd WHERE $10::text IS NOT NULL), \
             ev AS ({}) \
             SELECT {COLUMNS} FROM upd",
            domain_events::insert_sql_where("upd", "upd.tenant_id", "$11", &outbox::transition_filter("$2"))
        )))
        .bind(id)
        .bind(self.status)
        .bind(self.output.as_ref().map(Value::to_string))
        .bind(&self.error)
        .bind(&self.cause)
        .bind(arn)
        .bind(chunk.map(|c| c.tenant))
        .bind(chunk.map(|c| c.first_seq))
        .bind(chunk.map(Chunk::last_seq))
        .bind(chunk.map(Chunk::json))
        .bind(domain.to_param())
        .fetch_one(conn)
        .await?;
        row_to_execution(&row, false)
    }
}

/// What a recording reads of a row first (`executions e`): its state and how many node events
/// are stored.
const RECORD_COLUMNS: &str = "e.id, e.tenant_id, e.workflow_id, e.execution_arn, e.status, e.history_event_id";

/// Whether a recording moves a row in `status` to the history's `outcome` status (a PENDING row
/// becomes RUNNING only through its start, which puts the ARN on it).
fn status_moves(status: &str, outcome: &str) -> bool {
    (status != outcome && status != "PENDING") || (status == "PENDING" && outcome != "RUNNING")
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
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS}, {STORED} AS stored FROM executions e WHERE e.id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => self.record_row(&row).await,
            None => Ok(false),
        }
    }

    /// [`Executions::record`] of the row `row` (selected with [`RECORD_COLUMNS`]).
    async fn record_row(&self, row: &sqlx::postgres::PgRow) -> Result<bool, ExecError> {
        let id: Uuid = row.try_get("id")?;
        let tenant: String = row.try_get("tenant_id")?;
        let workflow_id: Uuid = row.try_get("workflow_id")?;
        let Some(arn): Option<String> = row.try_get("execution_arn")? else { return Ok(false) };
        let status: String = row.try_get("status")?;
        let recorded: Option<i64> = row.try_get("history_event_id")?;
        let stored: i64 = row.try_get("stored")?;
        // Incremental: when the history's last event is the last one translated, nothing is new
        // (a one-event read instead of the whole history).
        if let Some(recorded) = recorded
            && !is_terminal(&status)
            && self.last_history_id(&arn).await? == Some(recorded)
        {
            return Ok(false);
        }
        let (node_events, outcome, last) = self.translated_history(&arn).await?;
        let seen = Seen { status, stored };
        let recording =
            Recording { tenant: &tenant, id, workflow_id, node_events: &node_events, outcome: &outcome, last };
        // Without the row lock first (one statement, which writes only if the row is still as it
        // was read); should another recording have moved it meanwhile, again under the lock.
        // (The connection goes back to the pool before the locked attempt takes one.)
        let first = recording.write(&mut *self.pool().acquire().await?, &seen).await;
        let written = match first {
            Ok(Written::RowMoved) => self.record_locked(&recording).await?,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => self.record_locked(&recording).await?,
            Ok(written) => written,
            Err(e) => return Err(e.into()),
        };
        match written {
            Written::Appended { first_seq, fresh } => {
                self.publish(&tenant, id, first_seq, fresh, is_terminal(outcome.status)).await;
                Ok(true)
            }
            Written::NothingNew | Written::RowMoved => Ok(false),
        }
    }

    /// [`Recording::write`] under the row's lock, where the row is as read.
    async fn record_locked<'r>(&self, recording: &Recording<'r>) -> Result<Written<'r>, ExecError> {
        let mut tx = self.pool().begin().await?;
        let seen = Seen::locked(&mut tx, recording.id).await?;
        let written = recording.write(&mut tx, &seen).await?;
        if matches!(written, Written::RowMoved) {
            return Err(ExecError::Internal("a locked row changed under its lock".into()));
        }
        tx.commit().await?;
        Ok(written)
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
        // Nothing else records a synchronous execution while it runs (its row has no ARN yet), so
        // its events are the first: one statement. Should a sweep have recorded some meanwhile,
        // the chunk collides with theirs and the general path appends only what is new.
        let chunk = Chunk { tenant, first_seq: 1, events: &node_events };
        let first = answer.store(&mut *self.pool().acquire().await?, id, Some(arn), Some(&chunk)).await;
        match first {
            Ok(row) => {
                self.publish(tenant, id, 1, &node_events, true).await;
                return Ok(row);
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
            Err(e) => return Err(e.into()),
        }
        self.record_sync_locked(tenant, id, arn, &node_events, &answer).await
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

    /// A synchronous execution's answer with the events past the stored ones, under the row's
    /// lock (the fallback of [`Executions::record_sync`]).
    async fn record_sync_locked(
        &self,
        tenant: &str,
        id: Uuid,
        arn: &str,
        node_events: &[NodeEvent],
        answer: &Answer,
    ) -> Result<Execution, ExecError> {
        let mut tx = self.pool().begin().await?;
        let seen = Seen::locked(&mut tx, id).await?;
        let first_seq = seen.stored + 1;
        let fresh = seen.fresh(node_events);
        let row = answer.store(&mut tx, id, Some(arn), Some(&Chunk { tenant, first_seq, events: fresh })).await?;
        tx.commit().await?;
        self.publish(tenant, id, first_seq, fresh, true).await;
        Ok(row)
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
        Ok(self.record_known_arn(execution_arn).await?.unwrap_or(false))
    }

    /// [`Executions::record_arn`], `None` when no row has the ARN (yet: a start puts it on its
    /// row once Step Functions answered).
    pub(crate) async fn record_known_arn(&self, execution_arn: &str) -> Result<Option<bool>, ExecError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS}, {STORED} AS stored FROM executions e WHERE e.execution_arn = $1"
        )))
        .bind(execution_arn)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => Ok(Some(self.record_row(&row).await?)),
            None => Ok(None),
        }
    }
}
