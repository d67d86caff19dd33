//! Weft's domain events: what happened to workflows and executions, for other systems to react
//! to, published with the tenant id to an EventBridge bus in AWS and to a Redis stream under
//! `weft serve`. The schema is documented in `docs/domain-events.md`.
//!
//! # The outbox
//!
//! A write never waits on, nor fails because of, a publication. The writer records its events in
//! the `domain_events` table inside its own transaction ([`record`]) or statement ([`Batch`] with
//! [`insert_sql`]), so an event exists exactly when its write committed. A relay ([`drain`],
//! [`drain_all`], [`spawn`]) later takes unpublished rows in id order (`FOR UPDATE SKIP LOCKED`,
//! so relays running at once take different rows), hands them to a [`Sink`] and marks the ones
//! the sink put as published, in one transaction.
//!
//! Delivery is **at least once**: a relay that dies between the sink's answer and its commit
//! publishes those rows again, so consumers deduplicate by the event's `id` (the outbox row's).
//! Within one drain events go out in id order; rows committed out of id order by concurrent
//! writers, and rows retried after a failure, may go out after higher ids.
//!
//! **Invariant:** events carry ids, names, statuses and error names only: never an execution's
//! input or output, an error's cause, or a secret (the typed [`Event`] data has no field for
//! them).

mod error;
#[cfg(feature = "eventbridge")]
mod eventbridge;
#[cfg(feature = "redis")]
mod redis_stream;
mod relay;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use error::Error;
#[cfg(feature = "eventbridge")]
pub use eventbridge::EventBridgeSink;
#[cfg(feature = "redis")]
pub use redis_stream::{RedisStreamSink, STREAM_KEY};
pub use relay::{Drained, Sink, drain, drain_all, drain_best_effort, spawn};

/// The schema version every event carries (`version`); a change that is not backwards compatible
/// gets a new one.
pub const SCHEMA_VERSION: u32 = 1;

/// The EventBridge `Source` of every event.
pub const SOURCE: &str = "weft";

/// What happened: the event's `type` (and EventBridge's `DetailType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    WorkflowCreated,
    WorkflowUpdated,
    WorkflowDeleted,
    WorkflowPublished,
    ExecutionStarted,
    ExecutionSucceeded,
    ExecutionFailed,
    NodeSucceeded,
    NodeFailed,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::WorkflowCreated,
        Kind::WorkflowUpdated,
        Kind::WorkflowDeleted,
        Kind::WorkflowPublished,
        Kind::ExecutionStarted,
        Kind::ExecutionSucceeded,
        Kind::ExecutionFailed,
        Kind::NodeSucceeded,
        Kind::NodeFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::WorkflowCreated => "WorkflowCreated",
            Kind::WorkflowUpdated => "WorkflowUpdated",
            Kind::WorkflowDeleted => "WorkflowDeleted",
            Kind::WorkflowPublished => "WorkflowPublished",
            Kind::ExecutionStarted => "ExecutionStarted",
            Kind::ExecutionSucceeded => "ExecutionSucceeded",
            Kind::ExecutionFailed => "ExecutionFailed",
            Kind::NodeSucceeded => "NodeSucceeded",
            Kind::NodeFailed => "NodeFailed",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event as a writer records it: its kind and its `data`. Serialized as `{"type", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    WorkflowCreated(WorkflowData),
    WorkflowUpdated(WorkflowData),
    WorkflowDeleted(WorkflowData),
    WorkflowPublished(WorkflowData),
    ExecutionStarted(ExecutionData),
    /// The execution ended with status SUCCEEDED.
    ExecutionSucceeded(ExecutionData),
    /// The execution ended otherwise: FAILED, TIMED_OUT or ABORTED (`status` says which).
    ExecutionFailed(ExecutionData),
    NodeSucceeded(NodeData),
    /// A node failed for good (a failure it retries is not an event).
    NodeFailed(NodeData),
}

/// The `data` of the workflow events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowData {
    pub workflow_id: Uuid,
    /// The workflow's name when the event happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The published version (`WorkflowPublished` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
}

/// The `data` of the execution events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionData {
    pub execution_id: Uuid,
    pub workflow_id: Uuid,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub status: String,
    /// The error name of an execution that did not succeed (never its cause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `data` of the node events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeData {
    pub execution_id: Uuid,
    pub node_id: String,
    /// The error name of a failed node (never its cause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Event {
    /// The execution event for an execution that reached `status`: `ExecutionSucceeded` for
    /// SUCCEEDED, `ExecutionFailed` for FAILED, TIMED_OUT and ABORTED, `ExecutionStarted` for
    /// RUNNING; `None` for any other status.
    pub fn execution(execution_id: Uuid, workflow_id: Uuid, status: &str, error: Option<&str>) -> Option<Event> {
        let data = |error: Option<&str>| ExecutionData {
            execution_id,
            workflow_id,
            status: status.to_owned(),
            error: error.map(str::to_owned),
        };
        match status {
            "RUNNING" => Some(Event::ExecutionStarted(data(None))),
            "SUCCEEDED" => Some(Event::ExecutionSucceeded(data(None))),
            "FAILED" | "TIMED_OUT" | "ABORTED" => Some(Event::ExecutionFailed(data(error))),
            _ => None,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Event::WorkflowCreated(_) => Kind::WorkflowCreated,
            Event::WorkflowUpdated(_) => Kind::WorkflowUpdated,
            Event::WorkflowDeleted(_) => Kind::WorkflowDeleted,
            Event::WorkflowPublished(_) => Kind::WorkflowPublished,
            Event::ExecutionStarted(_) => Kind::ExecutionStarted,
            Event::ExecutionSucceeded(_) => Kind::ExecutionSucceeded,
            Event::ExecutionFailed(_) => Kind::ExecutionFailed,
            Event::NodeSucceeded(_) => Kind::NodeSucceeded,
            Event::NodeFailed(_) => Kind::NodeFailed,
        }
    }

    /// The event's `data`, as stored in the outbox's `detail`. Postgres' `jsonb` cannot hold NUL
    /// characters, so any in a name become U+FFFD: an event must never fail its write.
    pub fn data(&self) -> Value {
        let data = match self {
            Event::WorkflowCreated(d)
            | Event::WorkflowUpdated(d)
            | Event::WorkflowDeleted(d)
            | Event::WorkflowPublished(d) => serde_json::to_value(d),
            Event::ExecutionStarted(d) | Event::ExecutionSucceeded(d) | Event::ExecutionFailed(d) => {
                serde_json::to_value(d)
            }
            Event::NodeSucceeded(d) | Event::NodeFailed(d) => serde_json::to_value(d),
        };
        // Plain structs of strings and numbers always serialize.
        let mut data = data.unwrap_or_default();
        if let Value::Object(fields) = &mut data {
            for value in fields.values_mut() {
                if let Value::String(s) = value
                    && s.contains('\0')
                {
                    *s = s.replace('\0', "\u{FFFD}");
                }
            }
        }
        data
    }
}

/// An event as published: the outbox row in the versioned wire schema. It is the EventBridge
/// `Detail` and the Redis stream entry's `event` field:
/// `{"version": 1, "id", "type", "tenant_id", "occurred_at", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// [`SCHEMA_VERSION`].
    pub version: u32,
    /// The outbox row's id: unique, increasing with insertion; consumers deduplicate by it.
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub tenant_id: String,
    /// When the write committed (its transaction's time), RFC 3339.
    pub occurred_at: DateTime<Utc>,
    /// The kind's data (see [`Event`]).
    pub data: Value,
}

impl DomainEvent {
    /// The typed event (kind and data).
    pub fn event(&self) -> Result<Event, serde_json::Error> {
        serde_json::from_value(serde_json::json!({"type": self.kind, "data": self.data}))
    }

    /// The JSON text published.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and a JSON value always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Records `event` of `tenant` in the outbox, on the caller's connection: inside its transaction,
/// so the event is there exactly when the write it tells of commits. Returns the event's id.
pub async fn record(conn: &mut sqlx::PgConnection, tenant: &str, event: &Event) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO domain_events (tenant_id, kind, detail) VALUES ($1, $2, $3::text::jsonb) RETURNING id",
    )
    .bind(tenant)
    .bind(event.kind().as_str())
    .bind(event.data().to_string())
    .fetch_one(conn)
    .await
}

/// Events a writer records in the statement of its write itself (a data-modifying CTE built by
/// [`insert_sql`]), for writes that are one statement: bound as text, `[{"type", "data"}, ...]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    events: Vec<Event>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The parameter [`insert_sql`] reads; `None` (SQL NULL: nothing is inserted) when empty.
    pub fn to_param(&self) -> Option<String> {
        if self.events.is_empty() {
            return None;
        }
        let items: Vec<Value> =
            self.events.iter().map(|e| serde_json::json!({"type": e.kind().as_str(), "data": e.data()})).collect();
        Some(Value::Array(items).to_string())
    }
}

impl Extend<Event> for Batch {
    fn extend<I: IntoIterator<Item = Event>>(&mut self, iter: I) {
        self.events.extend(iter);
    }
}

/// The body of a data-modifying CTE that inserts the events of a [`Batch`] bound at `param`
/// (e.g. `$9`) for each row of `from` (the CTE of the write, so the events exist only if it
/// wrote), with the tenant `tenant` (a column of `from`, e.g. `upd.tenant_id`), in the batch's
/// order. Use as `WITH upd AS (UPDATE ... RETURNING ...), ev AS (<this>) SELECT ... FROM upd`.
pub fn insert_sql(from: &str, tenant: &str, param: &str) -> String {
    insert_sql_where(from, tenant, param, "true")
}

/// The event's kind (`type`) in the `filter` of [`insert_sql_where`].
pub const KIND_SQL: &str = "(ev.e ->> 'type')";

/// [`insert_sql`] of the events for which `filter` holds: an SQL condition on the row of `from`
/// and the event's kind ([`KIND_SQL`]), for events that depend on what the write found (say,
/// `ExecutionStarted` only if the row had no ARN before).
pub fn insert_sql_where(from: &str, tenant: &str, param: &str, filter: &str) -> String {
    format!(
        "INSERT INTO domain_events (tenant_id, kind, detail) \
         SELECT {tenant}, ev.e ->> 'type', ev.e -> 'data' \
         FROM {from}, jsonb_array_elements({param}::text::jsonb) WITH ORDINALITY AS ev (e, n) \
         WHERE {filter} ORDER BY ev.n"
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds_parse_back_and_serialize_as_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).expect("kind"), json!(kind.as_str()));
        }
        assert_eq!(Kind::parse("WorkflowRenamed"), None);
    }

    #[test]
    fn the_wire_form_is_the_documented_schema() {
        let id = Uuid::nil();
        let event =
            Event::WorkflowPublished(WorkflowData { workflow_id: id, name: Some("n".into()), version: Some(3) });
        let occurred_at = DateTime::parse_from_rfc3339("2026-12-04T10:00:00.5Z").expect("time").with_timezone(&Utc);
        let wire = DomainEvent {
            version: SCHEMA_VERSION,
            id: 42,
            kind: event.kind(),
            tenant_id: "acme".into(),
            occurred_at,
            data: event.data(),
        };
        let text: Value = serde_json::from_str(&wire.to_json()).expect("json");
        assert_eq!(
            text,
            json!({"version": 1, "id": 42, "type": "WorkflowPublished", "tenant_id": "acme",
                   "occurred_at": "2026-12-04T10:00:00.500Z",
                   "data": {"workflow_id": id, "name": "n", "version": 3}})
        );
        assert_eq!(wire.event().expect("typed"), event);
        let back: DomainEvent = serde_json::from_value(text).expect("parse");
        assert_eq!(back, wire);
    }

    #[test]
    fn execution_events_follow_the_status_and_keep_only_error_names() {
        let (e, w) = (Uuid::new_v4(), Uuid::new_v4());
        let failed = Event::execution(e, w, "TIMED_OUT", Some("States.Timeout")).expect("event");
        assert_eq!(failed.kind(), Kind::ExecutionFailed);
        assert_eq!(
            failed.data(),
            json!({"execution_id": e, "workflow_id": w, "status": "TIMED_OUT", "error": "States.Timeout"})
        );
        assert_eq!(
            Event::execution(e, w, "SUCCEEDED", Some("ignored")).map(|e| e.data()["error"].clone()),
            Some(Value::Null)
        );
        assert_eq!(Event::execution(e, w, "RUNNING", None).map(|e| e.kind()), Some(Kind::ExecutionStarted));
        assert_eq!(Event::execution(e, w, "PENDING", None), None);
    }

    #[test]
    fn nul_characters_never_reach_jsonb() {
        let event =
            Event::NodeFailed(NodeData { execution_id: Uuid::nil(), node_id: "a".into(), error: Some("x\0y".into()) });
        assert_eq!(event.data()["error"], json!("x\u{FFFD}y"));
    }

    #[test]
    fn batches_bind_in_order_and_empty_ones_insert_nothing() {
        assert_eq!(Batch::new().to_param(), None);
        let mut batch = Batch::new();
        batch.push(Event::WorkflowDeleted(WorkflowData { workflow_id: Uuid::nil(), name: None, version: None }));
        batch.extend([Event::NodeSucceeded(NodeData { execution_id: Uuid::nil(), node_id: "b".into(), error: None })]);
        let param: Value = serde_json::from_str(&batch.to_param().expect("param")).expect("json");
        assert_eq!(param[0]["type"], "WorkflowDeleted");
        assert_eq!(param[1], json!({"type": "NodeSucceeded", "data": {"execution_id": Uuid::nil(), "node_id": "b"}}));
    }
}
