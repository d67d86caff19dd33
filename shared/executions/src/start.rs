//! Starting executions: one preamble ([`Executions::start`]), then an asynchronous start
//! (`StartExecution`, with idempotency keys) or a synchronous one (`StartSyncExecution`, EXPRESS
//! only, bounded by a wait). Also the [`triggers::Starter`] every trigger starts through.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sfn::error::ProvideErrorMetadata;
use serde_json::Value;
use uuid::Uuid;

use crate::record::Answer;
use crate::{COLUMNS, ExecError, Execution, Executions, MAX_INPUT_BYTES, row_to_execution};

/// What to start.
#[derive(Debug, Clone)]
pub struct Start {
    pub tenant: String,
    /// Recorded as `started_by`: the caller's subject, or `trigger:...`.
    pub started_by: String,
    pub workflow_id: Uuid,
    pub input: Value,
    pub mode: Mode,
}

/// How to start it.
#[derive(Debug, Clone)]
pub enum Mode {
    /// `StartExecution`. With a key, a second start with the same key answers the first
    /// execution (`replayed` set) instead of starting another; the same key with a different
    /// input is [`ExecError::IdempotencyConflict`].
    Async { idempotency_key: Option<String> },
    /// `StartSyncExecution` of an EXPRESS workflow, waiting at most `wait` for its outcome.
    Sync { wait: Duration },
}

/// The longest an asynchronous start waits for the recording backlog (see [`crate::Backlog`]).
const ADMIT_WAIT: Duration = Duration::from_secs(5);

/// What starts need of a published version.
pub(crate) struct Published {
    version_arn: String,
    workflow_type: String,
    /// The start node's `input_schema`, if it has one.
    input_schema: Option<Value>,
}

/// What a start runs: the version the `live` alias routes to, checked against the input.
struct Target {
    version: i32,
    version_arn: String,
    workflow_type: String,
    input_text: String,
}

impl Executions {
    /// Starts the version the workflow's `live` alias routes to (the latest when no alias was
    /// ever moved). The one preamble of every start: the input fits Step Functions' limit, the
    /// workflow is published with a state machine version, the input matches the start node's
    /// `input_schema` (see [`crate::schema`]), the key is well-formed and a sync start is EXPRESS.
    /// Used by `POST /v1/workflows/{id}/executions`, webhooks, schedules and queue triggers.
    pub async fn start(&self, start: Start) -> Result<Execution, ExecError> {
        let client = self.sfn()?.clone();
        if let Mode::Async { idempotency_key: Some(k) } = &start.mode
            && (k.is_empty() || k.len() > 256)
        {
            return Err(ExecError::BadRequest("Idempotency-Key must be 1 to 256 characters".into()));
        }
        let target = self.target(&start.tenant, start.workflow_id, &start.input).await?;
        if matches!(start.mode, Mode::Sync { .. }) && target.workflow_type != "EXPRESS" {
            return Err(ExecError::NotExpress);
        }
        let this = self.clone();
        // On a task of its own: a client that hangs up (the request future is dropped) does not
        // interrupt a start between the row's INSERT and its ARN, so disconnects never orphan
        // rows. (A process crash can still orphan one: see `sweep_orphans`.)
        let work = async move {
            match start.mode.clone() {
                Mode::Async { idempotency_key } => this.start_async(&client, start, idempotency_key, target).await,
                Mode::Sync { wait } => this.start_sync(&client, start, target, wait).await,
            }
        };
        tokio::spawn(work).await.map_err(|e| ExecError::Internal(format!("start task: {e}")))?
    }

    async fn target(&self, tenant: &str, workflow_id: Uuid, input: &Value) -> Result<Target, ExecError> {
        let input_text = input.to_string();
        if input_text.len() > MAX_INPUT_BYTES {
            return Err(ExecError::InputTooLarge { size: input_text.len() });
        }
        let Some(version) =
            self.store().live_version(tenant, workflow_id).await.map_err(ExecError::store("workflow"))?
        else {
            return Err(ExecError::NotPublished("publish the workflow before starting it"));
        };
        let published = self.published(tenant, workflow_id, version).await?;
        if let Some(schema) = &published.input_schema {
            let problems = crate::schema::validate(schema, input);
            if !problems.is_empty() {
                return Err(ExecError::InvalidInput(format!(
                    "the input does not match the start node's input_schema: {}",
                    problems.join("; ")
                )));
            }
        }
        Ok(Target {
            version,
            version_arn: published.version_arn.clone(),
            workflow_type: published.workflow_type.clone(),
            input_text,
        })
    }

    /// What starts need of a published version, read once per process (see `Inner::versions`).
    async fn published(&self, tenant: &str, workflow_id: Uuid, version: i32) -> Result<Arc<Published>, ExecError> {
        let key = (tenant.to_owned(), workflow_id, version);
        if let Some(p) = self.inner.versions.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(Arc::clone(p));
        }
        let v = self
            .store()
            .get_version(tenant, workflow_id, version)
            .await
            .map_err(ExecError::store("workflow version"))?;
        let Some(version_arn) = v.state_machine_version_arn else {
            return Err(ExecError::NotPublished("the live version was stored without Step Functions; publish again"));
        };
        let published = Arc::new(Published {
            version_arn,
            workflow_type: v.workflow_type,
            input_schema: start_schema(&v.graph).cloned(),
        });
        let mut cache = self.inner.versions.lock().unwrap_or_else(|p| p.into_inner());
        // A bound, not an eviction policy: entries are small and re-read cheaply.
        if cache.len() >= 4096 {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&published));
        Ok(published)
    }

    async fn start_async(
        &self,
        client: &aws_sdk_sfn::Client,
        start: Start,
        idempotency_key: Option<String>,
        target: Target,
    ) -> Result<Execution, ExecError> {
        let Start { tenant, started_by, workflow_id, input, .. } = start;
        // At capacity, starts are admitted as fast as executions are recorded (bounded wait).
        if let Some(backlog) = self.inner.backlog.get() {
            backlog.admit(ADMIT_WAIT).await;
        }
        let pool = self.pool();
        let id = Uuid::new_v4();
        let inserted = sqlx::query(
            "INSERT INTO executions (id, tenant_id, workflow_id, version, status, input, idempotency_key, started_by) \
             VALUES ($1, $2, $3, $4, 'PENDING', $5::text::json, $6, $7) \
             ON CONFLICT (tenant_id, workflow_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
             RETURNING id",
        )
        .bind(id)
        .bind(&tenant)
        .bind(workflow_id)
        .bind(target.version)
        .bind(&target.input_text)
        .bind(&idempotency_key)
        .bind(&started_by)
        // Deferred: the UPDATE below, which the caller waits for, flushes it.
        .fetch_optional(self.deferred_pool())
        .await?;
        let (id, version_arn) = if inserted.is_some() {
            (id, target.version_arn)
        } else {
            // The key was used before: answer that execution, or finish starting it.
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS}, execution_arn FROM executions WHERE tenant_id = $1 AND workflow_id = $2 AND idempotency_key = $3"
            )))
            .bind(&tenant)
            .bind(workflow_id)
            .bind(&idempotency_key)
            .fetch_one(pool)
            .await?;
            let mut existing = row_to_execution(&row, true)?;
            if existing.input.as_ref() != Some(&input) {
                return Err(ExecError::IdempotencyConflict);
            }
            existing.replayed = true;
            if existing.status != "PENDING" {
                existing.input = None;
                return Ok(existing);
            }
            // Started by a call that died (or is still running) between insert and
            // StartExecution: starting again under the same name is idempotent in Step Functions.
            let version = self.published(&tenant, workflow_id, existing.version).await?;
            (existing.id, version.version_arn.clone())
        };
        let started = client
            .start_execution()
            .state_machine_arn(&version_arn)
            .name(id.to_string())
            .input(target.input_text)
            .send()
            .await;
        let arn = match started {
            Ok(out) => out.execution_arn().to_owned(),
            Err(err) => {
                // Nothing started: forget the row so a retry (with or without the key) starts afresh.
                let _ = sqlx::query(
                    "DELETE FROM executions WHERE id = $1 AND status = 'PENDING' AND execution_arn IS NULL",
                )
                .bind(id)
                .execute(pool)
                .await;
                return Err(start_error(err));
            }
        };
        // `ExecutionStarted` goes to the outbox with the ARN, once: not when a replayed start finds
        // the ARN there already.
        let mut domain = domain_events::Batch::new();
        domain.push(crate::outbox::started(id, workflow_id));
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH old AS (SELECT execution_arn AS old_arn FROM executions WHERE id = $1 FOR UPDATE), \
             upd AS (UPDATE executions SET status = CASE WHEN status = 'PENDING' THEN 'RUNNING' ELSE status END, \
               execution_arn = $2 FROM old WHERE id = $1 RETURNING {COLUMNS}, tenant_id, old_arn), \
             ev AS ({}) \
             SELECT {COLUMNS} FROM upd",
            domain_events::insert_sql_where(
                "upd",
                "upd.tenant_id",
                "$3",
                "upd.old_arn IS NULL AND upd.status = 'RUNNING'"
            )
        )))
        .bind(id)
        .bind(&arn)
        .bind(domain.to_param())
        .fetch_one(pool)
        .await?;
        let mut execution = row_to_execution(&row, false)?;
        execution.replayed = inserted.is_none();
        Ok(execution)
    }

    async fn start_sync(
        &self,
        client: &aws_sdk_sfn::Client,
        start: Start,
        target: Target,
        wait: Duration,
    ) -> Result<Execution, ExecError> {
        let id = Uuid::new_v4();
        let pool = self.pool();
        sqlx::query(
            "INSERT INTO executions (id, tenant_id, workflow_id, version, status, input, started_by) \
             VALUES ($1, $2, $3, $4, 'RUNNING', $5::text::json, $6)",
        )
        .bind(id)
        .bind(&start.tenant)
        .bind(start.workflow_id)
        .bind(target.version)
        .bind(&target.input_text)
        .bind(&start.started_by)
        // Deferred: the outcome's write, which the caller waits for, flushes it.
        .execute(self.deferred_pool())
        .await?;
        let call = client
            .start_sync_execution()
            .state_machine_arn(target.version_arn)
            .name(id.to_string())
            .input(target.input_text)
            .send();
        let (answer, arn) = match tokio::time::timeout(wait, call).await {
            Err(_) => {
                let cause = Some(format!("no result within {wait:?}"));
                let answer = Answer {
                    workflow_id: start.workflow_id,
                    status: "TIMED_OUT",
                    output: None,
                    error: Some("Weft.WaitTimedOut".to_owned()),
                    cause,
                };
                (answer, None)
            }
            Ok(Err(err)) => {
                let _ = sqlx::query("DELETE FROM executions WHERE id = $1").bind(id).execute(pool).await;
                return Err(start_error(err));
            }
            Ok(Ok(out)) => {
                let status = match out.status().as_str() {
                    "SUCCEEDED" => "SUCCEEDED",
                    "TIMED_OUT" => "TIMED_OUT",
                    _ => "FAILED",
                };
                let output =
                    out.output().map(|o| serde_json::from_str(o).unwrap_or_else(|_| Value::String(o.to_owned())));
                let answer = Answer {
                    workflow_id: start.workflow_id,
                    status,
                    output,
                    error: out.error().map(str::to_owned),
                    cause: out.cause().map(str::to_owned),
                };
                (answer, Some(out.execution_arn().to_owned()))
            }
        };
        match &arn {
            // With the node-level events when the endpoint keeps EXPRESS history (weft serve does;
            // AWS does not), in one transaction.
            Some(arn) => self.record_sync(&start.tenant, id, arn, answer).await,
            None => Ok(answer.store(&mut *pool.acquire().await?, id, None, None).await?),
        }
    }
}

/// What a refused `StartExecution`/`StartSyncExecution` means for the caller.
fn start_error<E: ProvideErrorMetadata + std::fmt::Debug>(err: E) -> ExecError {
    match err.code().unwrap_or("") {
        "ExecutionLimitExceeded" | "ThrottlingException" => ExecError::Throttled,
        "StateMachineDoesNotExist" | "StateMachineDeleting" => {
            ExecError::NotPublished("the workflow's state machine is gone; publish again")
        }
        // The input passed our checks, so Step Functions refusing it is a limit we do not know of.
        "InvalidExecutionInput" => ExecError::InvalidInput(format!(
            "Step Functions refused the input: {}",
            err.message().unwrap_or("invalid input")
        )),
        _ => ExecError::sdk(err),
    }
}

/// The start node's `input_schema`, if the graph has one.
fn start_schema(graph: &Value) -> Option<&Value> {
    graph
        .get("nodes")?
        .as_array()?
        .iter()
        .find(|n| n.get("type").and_then(Value::as_str) == Some("start"))?
        .get("data")?
        .get("input_schema")
}

/// Triggers (webhooks, schedules, queue messages) start executions exactly as
/// `POST /v1/workflows/{id}/executions` does; retry-safety comes from [`ExecError::is_retryable`].
#[async_trait::async_trait]
impl triggers::Starter for Executions {
    async fn start(&self, r: triggers::StartRequest) -> Result<triggers::Started, triggers::StartError> {
        let start = Start {
            tenant: r.tenant,
            started_by: r.started_by,
            workflow_id: r.workflow_id,
            input: r.input,
            mode: Mode::Async { idempotency_key: r.idempotency_key },
        };
        match Executions::start(self, start).await {
            Ok(e) => Ok(triggers::Started { id: e.id, status: e.status }),
            Err(e) if e.is_retryable() => Err(triggers::StartError::Unavailable(e.to_string())),
            Err(e) => Err(triggers::StartError::Rejected(e.to_string())),
        }
    }
}
