//! The domain events the execution domain records (the `domain-events` outbox), each in the
//! statement or transaction of the write that justifies it, and only on the transition:
//! - `ExecutionStarted` when the row gets its execution ARN (Step Functions has the execution:
//!   the start's own write, a sweep's adoption, a child's row, or a synchronous start's answer;
//!   `old_arn IS NULL` in those statements makes it once per execution);
//! - `ExecutionSucceeded` / `ExecutionFailed` when the row moves to a terminal status (a
//!   recording whose write is conditional on the row as it read it, a synchronous answer, a
//!   stop's fallback, a sweep's failure);
//! - `NodeSucceeded` / `NodeFailed` for each `node_succeeded` / `node_failed` event appended:
//!   appends are exactly once per seq (the chunk's key and the conditional write), so
//!   re-recording the same history emits nothing again.
//!
//! A redrive emits no second `ExecutionStarted`; its end emits a new outcome event.

use domain_events::{Event, NodeData};
use uuid::Uuid;

use crate::history::NodeEvent;
use crate::is_terminal;

/// `NodeSucceeded` or `NodeFailed` (with the error's name, never its cause) for each node event
/// that is one.
pub(crate) fn nodes(execution_id: Uuid, events: &[NodeEvent]) -> impl Iterator<Item = Event> + '_ {
    events.iter().filter_map(move |e| {
        let node_id = e.node_id.clone()?;
        match e.kind {
            "node_succeeded" => Some(Event::NodeSucceeded(NodeData { execution_id, node_id, error: None })),
            "node_failed" => {
                let error = e.payload.get("error").and_then(serde_json::Value::as_str).map(str::to_owned);
                Some(Event::NodeFailed(NodeData { execution_id, node_id, error }))
            }
            _ => None,
        }
    })
}

/// `ExecutionSucceeded` or `ExecutionFailed` for a terminal `status`; `None` otherwise.
pub(crate) fn ended(execution_id: Uuid, workflow_id: Uuid, status: &str, error: Option<&str>) -> Option<Event> {
    if !is_terminal(status) {
        return None;
    }
    Event::execution(execution_id, workflow_id, status, error)
}

/// `ExecutionStarted`.
pub(crate) fn started(execution_id: Uuid, workflow_id: Uuid) -> Event {
    Event::ExecutionStarted(domain_events::ExecutionData {
        execution_id,
        workflow_id,
        status: "RUNNING".to_owned(),
        error: None,
    })
}

/// The filter (for [`domain_events::insert_sql_where`]) of a statement that may start an
/// execution and end it: `ExecutionStarted` only if the row had no ARN (`upd.old_arn`), the
/// outcome only if the row's status was another (`upd.old_status`, the new one bound at
/// `status`), node events always.
pub(crate) fn transition_filter(status_param: &str) -> String {
    let kind = domain_events::KIND_SQL;
    format!(
        "({kind} <> 'ExecutionStarted' OR upd.old_arn IS NULL) \
         AND ({kind} NOT IN ('ExecutionSucceeded', 'ExecutionFailed') OR upd.old_status IS DISTINCT FROM {status_param})"
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(kind: &'static str, node: Option<&str>, payload: serde_json::Value) -> NodeEvent {
        NodeEvent { kind, node_id: node.map(str::to_owned), payload }
    }

    #[test]
    fn only_node_outcomes_become_node_events_with_error_names_only() {
        let id = Uuid::nil();
        let events = [
            ev("execution_started", None, json!({})),
            ev("node_started", Some("a"), json!({})),
            ev("node_succeeded", Some("a"), json!({"output": {"secret": "x"}})),
            ev("node_retried", Some("b"), json!({"error": "Http.Timeout"})),
            ev("node_failed", Some("b"), json!({"error": "Http.Timeout", "cause": "GET https://x?token=s"})),
            ev("agent_turn", Some("c"), json!({})),
        ];
        let got: Vec<serde_json::Value> =
            nodes(id, &events).map(|e| json!({"type": e.kind(), "data": e.data()})).collect();
        assert_eq!(
            got,
            [
                json!({"type": "NodeSucceeded", "data": {"execution_id": id, "node_id": "a"}}),
                json!({"type": "NodeFailed", "data": {"execution_id": id, "node_id": "b", "error": "Http.Timeout"}}),
            ]
        );
    }

    #[test]
    fn only_terminal_statuses_end_an_execution() {
        let id = Uuid::nil();
        assert_eq!(ended(id, id, "RUNNING", None), None);
        assert_eq!(
            ended(id, id, "ABORTED", Some("Ops.Cancelled")).map(|e| e.kind()),
            Some(domain_events::Kind::ExecutionFailed)
        );
        assert_eq!(ended(id, id, "SUCCEEDED", None).map(|e| e.kind()), Some(domain_events::Kind::ExecutionSucceeded));
    }
}
