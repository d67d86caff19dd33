//! The recorder function: the AWS path of Weft's execution events.
//!
//! An EventBridge rule sends every "Step Functions Execution Status Change" event of Weft's state
//! machines to this Lambda. It reads the execution ARN from `detail.executionArn` and runs
//! [`executions::Executions::record_arn`]: the execution's `GetExecutionHistory` is translated into
//! node-level events (the same translation `weft serve`'s recorder loop and the api's readers
//! use), appended to `execution_events` and the Redis stream, and the final status and output go
//! on the `executions` row. Recording is idempotent, so EventBridge's at-least-once delivery and
//! out-of-order events are harmless; executions Weft did not start are ignored.
//!
//! Status changes arrive only at start and end, so node events of a running execution appear when
//! a client reads it (`GET /v1/executions/{id}` and the SSE endpoint record on read).
//!
//! With `WEFT_EVENT_BUS_NAME`, the domain events a recording writes to the outbox (in the
//! recording's own statement) are published to that EventBridge bus after it
//! ([`handle_and_publish`]), best effort: rows a failure leaves go out with the next recording,
//! the api's next write or the trigger function's minute tick.

use std::time::Duration;

use executions::{ExecError, Executions};
use serde_json::Value;

/// The `detail-type` this function handles.
pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";

/// The execution ARN of a status-change event, or `None` for any other event.
pub fn execution_arn(event: &Value) -> Option<&str> {
    if event.get("detail-type").and_then(Value::as_str) != Some(DETAIL_TYPE) {
        return None;
    }
    event.get("detail")?.get("executionArn")?.as_str()
}

/// Records the event's execution; `Ok(false)` when the event is not for a Weft execution.
pub async fn handle(executions: &Executions, event: &Value) -> Result<bool, ExecError> {
    match execution_arn(event) {
        Some(arn) => executions.record_arn(arn).await,
        None => Ok(false),
    }
}

/// How long publishing after a recording may take.
const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// [`handle`], then, with a sink, the outbox drained to it (best effort: a publishing failure is
/// logged, never returned, so EventBridge does not redeliver an event that was recorded).
pub async fn handle_and_publish(
    executions: &Executions,
    sink: Option<&dyn domain_events::Sink>,
    event: &Value,
) -> Result<bool, ExecError> {
    // Boxed: recording's future is deep enough that nesting it once more overflows the
    // compiler's layout queries of the Lambda's handler future.
    let recorded = Box::pin(handle(executions, event)).await?;
    if let Some(sink) = sink {
        domain_events::drain_best_effort(executions.store().pool(), sink, PUBLISH_WAIT).await;
    }
    Ok(recorded)
}

/// Where domain events go: the EventBridge bus of `WEFT_EVENT_BUS_NAME`, if set (built once).
pub async fn event_sink(config: &config::ExecutionsConfig) -> Option<domain_events::EventBridgeSink> {
    Some(domain_events::EventBridgeSink::connect(config.event_bus_name.clone()?).await)
}

/// The execution domain as the recorder needs it: Postgres, Redis (required: every event goes
/// to the execution's stream) and Step Functions.
pub async fn connect(config: &config::ExecutionsConfig) -> Result<Executions, executions::ConnectError> {
    executions::connect(config, true).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn reads_the_arn_of_status_change_events_only() {
        let event = json!({"version": "0", "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
            "detail": {"executionArn": "arn:aws:states:us-east-1:1:execution:weft-x:abc", "status": "SUCCEEDED"}});
        assert_eq!(super::execution_arn(&event), Some("arn:aws:states:us-east-1:1:execution:weft-x:abc"));
        let other = json!({"detail-type": "Scheduled Event", "detail": {"executionArn": "x"}});
        assert_eq!(super::execution_arn(&other), None);
        assert_eq!(super::execution_arn(&json!({"detail-type": super::DETAIL_TYPE})), None);
    }
}
