//! Weft's execution domain, shared by the api (`fn-api`), the recorder and trigger functions and
//! `weft serve`: starts (with idempotency keys and input checks), reads, lists, stop and redrive,
//! the recorder that turns Step Functions history into node-level events, the sweeper of
//! interrupted starts, the scheduler of cron triggers, and the [`triggers::Starter`] every
//! trigger starts executions through.
//!
//! Every execution runs on Step Functions through `aws-sdk-sfn` (AWS, or `weft serve`'s own
//! endpoint). The `executions` row is Weft's record: it is inserted PENDING before
//! `StartExecution` (named after the row's id, so a retried start is idempotent on AWS's side
//! too), becomes RUNNING with the execution ARN, and gets its final status and output from the
//! recorder ([`Executions::record`]), which appends translated history to `execution_events`
//! (dense `seq` from 1, the SSE event ids) and to the Redis stream `weft:exec:{tenant}:{id}`.
//!
//! Each transition of an execution (started, succeeded or failed, a node's success or failure)
//! records its domain event in the outbox in the same statement as the write (see `outbox`), and
//! only once, however often the same history is recorded.
//!
//! Invariants: every query that serves a caller is scoped by tenant (the recorder and the
//! sweeper, which are internal, read the tenant from the row); events are appended under a row
//! lock, so concurrent recorders never duplicate or reorder them; the row's status changes only
//! together with the events that justify it. Errors are [`ExecError`]s that say whether a retry
//! is safe; no HTTP type appears here (the api maps them at its edge).

mod backlog;
mod children;
mod control;
mod error;
pub mod history;
mod outbox;
mod read;
mod record;
pub mod recorder;
pub mod schedules;
pub mod schema;
mod start;
mod sweep;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

pub use backlog::Backlog;
pub use children::{Child, ChildRefused};
pub use error::ExecError;
pub use read::{ExecutionPage, ListFilter};
pub use record::stream_key;
pub use start::{Mode, Start};
pub use sweep::START_GRACE;

/// Step Functions' limit on an execution's input (UTF-8 bytes of its JSON text).
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// The execution domain over one connection pool. Cheap to clone.
#[derive(Clone)]
pub struct Executions {
    inner: Arc<Inner>,
}

struct Inner {
    store: store::Store,
    /// Set once (at construction or by [`Executions::set_sfn_client`]); executions need it.
    sfn: OnceLock<aws_sdk_sfn::Client>,
    /// Set once; the event streams use it (without it events are in Postgres only).
    redis: OnceLock<redis::aio::ConnectionManager>,
    /// What starts need of each published version, by (tenant, workflow, version). Versions are
    /// immutable (a trigger refuses UPDATE and DELETE on `workflow_versions`), so an entry never
    /// goes stale; whether the workflow still exists, and which version is live, is read anew
    /// on every start.
    versions: std::sync::Mutex<HashMap<(String, Uuid, i32), Arc<start::Published>>>,
    /// Set once, where the recorder runs beside the engine: asynchronous starts wait for it.
    backlog: OnceLock<Backlog>,
    /// Set once: a pool whose commits do not wait for the WAL flush (`store::Durability::Deferred`),
    /// for the row a start inserts before Step Functions has the execution. No client is answered
    /// on that commit alone: a start answers only after a later flushed commit on its row (the
    /// ARN, or a sync outcome), which makes the insert durable too. Without it, the main pool.
    deferred: OnceLock<store::Store>,
}

impl Executions {
    pub fn new(
        store: store::Store,
        sfn: Option<aws_sdk_sfn::Client>,
        redis: Option<redis::aio::ConnectionManager>,
    ) -> Self {
        let this = Self {
            inner: Arc::new(Inner {
                store,
                sfn: OnceLock::new(),
                redis: OnceLock::new(),
                versions: std::sync::Mutex::new(HashMap::new()),
                backlog: OnceLock::new(),
                deferred: OnceLock::new(),
            }),
        };
        if let Some(client) = sfn {
            this.set_sfn_client(client);
        }
        if let Some(redis) = redis {
            this.set_redis(redis);
        }
        this
    }

    /// The same domain over another pool (say, one sized for background recording, so that it
    /// and request handlers cannot starve each other); the clients are shared.
    pub fn with_store(&self, store: store::Store) -> Self {
        let other = Self::new(store, self.sfn_client().cloned(), self.redis());
        if let Some(backlog) = self.inner.backlog.get() {
            other.set_backlog(backlog.clone());
        }
        other
    }

    /// The recording backlog asynchronous starts wait for, and the recorder loop counts (first
    /// call wins; see [`Backlog`]).
    pub fn set_backlog(&self, backlog: Backlog) {
        let _ = self.inner.backlog.set(backlog);
    }

    /// The pool for the rows starts insert before their execution starts (first call wins): one
    /// with `store::Durability::Deferred` commits saves each start a wait for the WAL flush. Safe
    /// because every start answers its caller only after a flushed commit on the same row, and a
    /// flush makes every earlier commit durable; a crash before that leaves a row the sweeper
    /// resolves, or none (see `Executions::sweep_orphans`).
    pub fn set_deferred_store(&self, store: store::Store) {
        let _ = self.inner.deferred.set(store);
    }

    /// The Step Functions client executions use (first call wins).
    pub fn set_sfn_client(&self, client: aws_sdk_sfn::Client) {
        let _ = self.inner.sfn.set(client);
    }

    /// The Redis connection the event streams use (first call wins).
    pub fn set_redis(&self, redis: redis::aio::ConnectionManager) {
        let _ = self.inner.redis.set(redis);
    }

    pub fn sfn_client(&self) -> Option<&aws_sdk_sfn::Client> {
        self.inner.sfn.get()
    }

    pub fn redis(&self) -> Option<redis::aio::ConnectionManager> {
        self.inner.redis.get().cloned()
    }

    pub fn store(&self) -> &store::Store {
        &self.inner.store
    }

    fn pool(&self) -> &sqlx::PgPool {
        self.inner.store.pool()
    }

    /// Where starts insert their row (see [`Executions::set_deferred_store`]).
    fn deferred_pool(&self) -> &sqlx::PgPool {
        self.inner.deferred.get().unwrap_or(&self.inner.store).pool()
    }

    fn sfn(&self) -> Result<&aws_sdk_sfn::Client, ExecError> {
        self.sfn_client().ok_or(ExecError::Disabled)
    }
}

/// An execution as Weft records it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Execution {
    pub id: Uuid,
    pub workflow_id: Uuid,
    pub version: i32,
    /// PENDING (being started), RUNNING, SUCCEEDED, FAILED, ABORTED or TIMED_OUT.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    /// For the child execution of a `workflow` node: the execution that started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_execution_id: Option<Uuid>,
    /// Per node, from the node-level events (only on `GET /v1/executions/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeSummary>>,
    /// Tokens and cost of the execution's model calls, summed over its AI nodes (only on
    /// `GET /v1/executions/{id}`, and only when it made any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageTotal>,
    /// Set when an `Idempotency-Key` matched an execution started before.
    #[serde(skip)]
    pub replayed: bool,
}

/// The model usage of an execution: every `agent_turn` event's tokens and cost, plus the
/// outputs of the other nodes that report `usage` and `cost_usd` (`llm`, `vector_*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageTotal {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// Some counts are estimates (a provider reported no usage).
    pub estimated: bool,
}

/// What happened to one node of an execution.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeSummary {
    pub node_id: String,
    /// RUNNING, SUCCEEDED or FAILED (the node's last attempt).
    pub status: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The child executions a `workflow` node started (their ids, as `GET /v1/executions/{id}`
    /// takes them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub child_execution_ids: Vec<String>,
}

/// A stored node-level event.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StoredEvent {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    pub payload: Value,
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "SUCCEEDED" | "FAILED" | "ABORTED" | "TIMED_OUT")
}

const COLUMNS: &str = "id, workflow_id, version, status, input, output, error, cause, started_by, started_at, stopped_at, \
     parent_execution_id";

fn row_to_execution(r: &sqlx::postgres::PgRow, with_input: bool) -> Result<Execution, sqlx::Error> {
    use sqlx::Row as _;
    Ok(Execution {
        id: r.try_get("id")?,
        workflow_id: r.try_get("workflow_id")?,
        version: r.try_get("version")?,
        status: r.try_get("status")?,
        input: if with_input { r.try_get("input")? } else { None },
        output: r.try_get("output")?,
        error: r.try_get("error")?,
        cause: r.try_get("cause")?,
        started_by: r.try_get("started_by")?,
        started_at: r.try_get("started_at")?,
        stopped_at: r.try_get("stopped_at")?,
        parent_execution_id: r.try_get("parent_execution_id")?,
        nodes: None,
        usage: None,
        replayed: false,
    })
}

/// Why [`connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to Postgres at {url}: {source}")]
    Database { url: String, source: store::StoreError },
    #[error("cannot connect to Redis at {url}: {source}")]
    Redis { url: String, source: cache::CacheError },
    #[error("WEFT_REDIS_URL is not set: this function appends every event to the execution's Redis stream")]
    NoRedis,
    #[error("WEFT_SFN_ENDPOINT or WEFT_SFN_ENABLED is not set: executions run on Step Functions")]
    NoStepFunctions,
}

/// The execution domain from its configuration section alone (what the recorder and trigger
/// functions run on): one pool, the Step Functions client and, when configured (or `needs_redis`
/// says it must be), Redis.
pub async fn connect(config: &config::ExecutionsConfig, needs_redis: bool) -> Result<Executions, ConnectError> {
    let db = &config.database;
    let store = store::Store::connect(&db.url, db.max_connections)
        .await
        .map_err(|source| ConnectError::Database { url: config::redact_url(&db.url), source })?;
    let redis = match &config.redis {
        Some(r) => Some(
            cache::connect(&r.url)
                .await
                .map_err(|source| ConnectError::Redis { url: config::redact_url(&r.url), source })?,
        ),
        None if needs_redis => return Err(ConnectError::NoRedis),
        None => None,
    };
    let config::SfnConfig::On { endpoint, region, .. } = &config.sfn else {
        return Err(ConnectError::NoStepFunctions);
    };
    let sfn = sfn_client(endpoint.as_deref(), region.as_deref()).await;
    Ok(Executions::new(store, Some(sfn), redis))
}

/// A Step Functions client for AWS (`endpoint` unset: the environment's region and
/// credentials) or for a local endpoint (region `us-east-1` unless given; placeholder
/// credentials when the environment has none).
pub async fn sfn_client(endpoint: Option<&str>, region: Option<&str>) -> aws_sdk_sfn::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    } else if endpoint.is_some() {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(aws_sdk_sfn::config::Credentials::new(
                "weft-local",
                "weft-local",
                None,
                None,
                "weft-local",
            ));
        }
    }
    let shared = loader.load().await;
    // A custom endpoint (here, `WEFT_SFN_ENDPOINT`, or `AWS_ENDPOINT_URL` as LocalStack gives its
    // Lambdas) does not answer at the `sync-` host the SDK prepends for StartSyncExecution.
    let overridden = endpoint.is_some()
        || ["AWS_ENDPOINT_URL_SFN", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|u| !u.is_empty()));
    if overridden {
        let config = aws_sdk_sfn::config::Builder::from(&shared).interceptor(StripSyncHostPrefix).build();
        return aws_sdk_sfn::Client::from_conf(config);
    }
    aws_sdk_sfn::Client::new(&shared)
}

/// Removes the `sync-` host prefix the SDK adds to StartSyncExecution, for custom endpoints.
/// (`sfn_server::sdk::StripHostPrefix` is the same for clients of `weft serve`'s endpoint; the
/// two crates do not depend on each other.)
#[derive(Debug, Clone, Copy)]
struct StripSyncHostPrefix;

impl aws_sdk_sfn::config::Intercept for StripSyncHostPrefix {
    fn name(&self) -> &'static str {
        "StripSyncHostPrefix"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_sdk_sfn::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _: &aws_sdk_sfn::config::RuntimeComponents,
        _: &mut aws_sdk_sfn::config::ConfigBag,
    ) -> Result<(), aws_sdk_sfn::error::BoxError> {
        let req = context.request_mut();
        let uri = req.uri().to_owned();
        if let Some((scheme, rest)) = uri.split_once("://")
            && let Some(host) = rest.strip_prefix("sync-")
        {
            req.set_uri(format!("{scheme}://{host}"))?;
        }
        Ok(())
    }
}
