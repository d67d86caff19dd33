//! Reading executions: one with its node summary, its events, and keyset-paginated lists.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    COLUMNS, ExecError, Execution, Executions, NodeSummary, StoredEvent, UsageTotal, is_terminal, row_to_execution,
};

/// Filters of an execution list.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    /// PENDING, RUNNING, SUCCEEDED, FAILED, ABORTED or TIMED_OUT.
    pub status: Option<String>,
    pub workflow_id: Option<Uuid>,
    /// Started at or after.
    pub started_after: Option<DateTime<Utc>>,
    /// Started before.
    pub started_before: Option<DateTime<Utc>>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
}

/// A page of executions, newest first.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionPage {
    pub items: Vec<Execution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl Executions {
    /// Reads an execution (recording any new history first when it is not over).
    pub async fn get(&self, tenant: &str, id: Uuid) -> Result<Execution, ExecError> {
        let fetch = || async {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM executions WHERE tenant_id = $1 AND id = $2"
            )))
            .bind(tenant)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(ExecError::NotFound("execution"))?;
            Ok::<_, ExecError>(row_to_execution(&row, true)?)
        };
        let mut execution = fetch().await?;
        if !is_terminal(&execution.status) && self.record(id).await.unwrap_or(false) {
            execution = fetch().await?;
        }
        let events = self.events_after(tenant, id, 0, 100_000).await?;
        execution.nodes = Some(summarize(&events));
        execution.usage = usage_total(&events);
        Ok(execution)
    }

    /// Events of an execution with `seq > after`, in order, at most `limit`.
    pub async fn events_after(
        &self,
        tenant: &str,
        id: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, ExecError> {
        // Chunks overlapping `(after, ..]`; every chunk holds at least one event, so `limit`
        // chunks hold at least `limit` events.
        let rows: Vec<(sqlx::types::Json<Vec<StoredEvent>>,)> = sqlx::query_as(
            "SELECT events FROM execution_event_chunks \
             WHERE tenant_id = $1 AND execution_id = $2 AND last_seq > $3 ORDER BY first_seq LIMIT $4",
        )
        .bind(tenant)
        .bind(id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let limit = usize::try_from(limit).unwrap_or(0);
        Ok(rows.into_iter().flat_map(|(events,)| events.0).filter(|e| e.seq > after).take(limit).collect())
    }

    /// Lists executions, newest first, keyset-paginated.
    pub async fn list(&self, tenant: &str, q: ListFilter) -> Result<ExecutionPage, ExecError> {
        if let Some(s) = &q.status
            && !matches!(s.as_str(), "PENDING" | "RUNNING" | "SUCCEEDED" | "FAILED" | "ABORTED" | "TIMED_OUT")
        {
            return Err(ExecError::BadRequest(
                "status must be PENDING, RUNNING, SUCCEEDED, FAILED, ABORTED or TIMED_OUT".into(),
            ));
        }
        let limit = q.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ExecError::BadRequest("limit must be 1 to 200".into()));
        }
        let after = match q.cursor.as_deref() {
            Some(c) => Some(decode_cursor(c).ok_or_else(|| ExecError::BadRequest("invalid cursor".into()))?),
            None => None,
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM executions WHERE tenant_id = $1 \
             AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR workflow_id = $3) \
             AND ($4::timestamptz IS NULL OR started_at >= $4) AND ($5::timestamptz IS NULL OR started_at < $5) \
             AND ($6::timestamptz IS NULL OR (started_at, id) < ($6, $7)) \
             ORDER BY started_at DESC, id DESC LIMIT $8"
        )))
        .bind(tenant)
        .bind(&q.status)
        .bind(q.workflow_id)
        .bind(q.started_after)
        .bind(q.started_before)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1).unwrap_or_default())
        .bind(i64::from(limit) + 1)
        .fetch_all(self.pool())
        .await?;
        let mut items = rows.iter().map(|r| row_to_execution(r, false)).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| encode_cursor(e.started_at, e.id))
        } else {
            None
        };
        Ok(ExecutionPage { items, next_cursor })
    }
}

fn summarize(events: &[StoredEvent]) -> Vec<NodeSummary> {
    let mut nodes: Vec<NodeSummary> = Vec::new();
    for e in events {
        let Some(node) = &e.node_id else { continue };
        let i = match nodes.iter().position(|n| &n.node_id == node) {
            Some(i) => i,
            None => {
                nodes.push(NodeSummary {
                    node_id: node.clone(),
                    status: "RUNNING".into(),
                    attempts: 0,
                    error: None,
                    child_execution_ids: Vec::new(),
                });
                nodes.len() - 1
            }
        };
        let n = &mut nodes[i];
        match e.kind.as_str() {
            "node_started" => {
                n.status = "RUNNING".into();
                n.attempts += 1;
            }
            "node_retried" => n.attempts += 1,
            "node_succeeded" => n.status = "SUCCEEDED".into(),
            "child_execution_started" => {
                if let Some(id) = e.payload.get("child_execution_id").and_then(serde_json::Value::as_str) {
                    n.child_execution_ids.push(id.to_owned());
                }
            }
            "node_failed" => {
                n.status = "FAILED".into();
                n.error = e.payload.get("error").and_then(serde_json::Value::as_str).map(str::to_owned);
            }
            _ => {}
        }
    }
    nodes
}

/// The execution's model usage: each agent turn once (an agent's output repeats its turns'
/// totals, so agent nodes count through their `agent_turn` events only), each agent tool call
/// whose result has `usage` and `cost_usd` (a `vector_search` tool's embedding), and every other node
/// whose output (`nodes.<id>` of the state its `node_succeeded` event carries) has `usage` and
/// `cost_usd`. `None` when nothing used a model.
pub fn usage_total(events: &[StoredEvent]) -> Option<UsageTotal> {
    use serde_json::Value;
    let agents: std::collections::HashSet<&str> =
        events.iter().filter(|e| e.kind == "agent_turn").filter_map(|e| e.node_id.as_deref()).collect();
    let mut total = UsageTotal::default();
    let mut any = false;
    let mut add = |usage: Option<&Value>, cost: Option<&Value>| {
        let Some(usage) = usage.filter(|u| u.is_object()) else { return };
        any = true;
        total.input_tokens += usage.get("input_tokens").and_then(Value::as_u64).unwrap_or(0);
        total.output_tokens += usage.get("output_tokens").and_then(Value::as_u64).unwrap_or(0);
        total.estimated |= usage.get("estimated").and_then(Value::as_bool).unwrap_or(false);
        total.cost_usd += cost.and_then(Value::as_f64).unwrap_or(0.0);
    };
    for e in events {
        match e.kind.as_str() {
            "agent_turn" => add(e.payload.get("usage"), e.payload.get("cost_usd")),
            // A tool that is itself a model node (a `vector_search` tool embeds its query):
            // its result has the AI outputs' `usage` and `cost_usd`.
            "agent_tool_call" => {
                let result = e.payload.get("result");
                let cost = result.and_then(|r| r.get("cost_usd")).filter(|c| c.is_number());
                if cost.is_some() {
                    add(result.and_then(|r| r.get("usage")), cost);
                }
            }
            "node_succeeded" => {
                let Some(node) = e.node_id.as_deref().filter(|n| !agents.contains(n)) else { continue };
                // The state's output holds the node's at `nodes.<id>` (a Task's still wrapped in
                // `value` when its main state exits).
                let Some(mine) = e.payload.pointer("/output/nodes").and_then(|n| n.get(node)) else { continue };
                let mine = mine.get("value").filter(|v| v.get("usage").is_some()).unwrap_or(mine);
                add(mine.get("usage"), mine.get("cost_usd"));
            }
            _ => {}
        }
    }
    // Sums of binary fractions: round to a micro-dollar so 0.1 + 0.2 reads 0.3.
    total.cost_usd = (total.cost_usd * 1e6).round() / 1e6;
    any.then_some(total)
}

fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.timestamp_micros()))
}

fn decode_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (micros, id) = raw.split_once('|')?;
    // Out-of-range years (which Postgres cannot compare with) are invalid cursors, not 503s.
    Some((store::cursor_timestamp(micros.parse().ok()?)?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_round_trip() {
        let at = chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap_or_default();
        let id = uuid::Uuid::new_v4();
        assert_eq!(super::decode_cursor(&super::encode_cursor(at, id)), Some((at, id)));
        assert_eq!(super::decode_cursor("nope"), None);
    }

    #[test]
    fn usage_sums_agent_turns_and_other_model_nodes_once() {
        use serde_json::json;
        let ev = |seq: i64, kind: &str, node: &str, payload: serde_json::Value| crate::StoredEvent {
            seq,
            kind: kind.into(),
            node_id: Some(node.into()),
            payload,
        };
        let llm = json!({"text": "hi", "usage": {"input_tokens": 10, "output_tokens": 5, "estimated": false}, "cost_usd": 0.1});
        let events = [
            ev(1, "node_succeeded", "ask", json!({"output": {"input": {}, "nodes": {"ask": {"value": llm}}}})),
            ev(2, "agent_turn", "a", json!({"usage": {"input_tokens": 100, "output_tokens": 20}, "cost_usd": 0.2})),
            ev(
                3,
                "agent_turn",
                "a",
                json!({"usage": {"input_tokens": 150, "output_tokens": 30, "estimated": true}, "cost_usd": 0.3}),
            ),
            // The agent's output repeats its turns' totals: not counted again.
            ev(
                4,
                "node_succeeded",
                "a",
                json!({"output": {"nodes": {"a": {"value": {"answer": "x",
                "usage": {"input_tokens": 250, "output_tokens": 50}, "cost_usd": 0.5}}}}}),
            ),
            ev(5, "node_succeeded", "code", json!({"output": {"nodes": {"code": {"value": {"n": 1}}}}})),
            // A vector_search tool's embedding counts; an http tool's body that merely has a
            // `usage` field does not.
            ev(
                6,
                "agent_tool_call",
                "a",
                json!({"tool": "kb", "result": {"matches": [],
                "usage": {"input_tokens": 7, "output_tokens": 0, "estimated": false}, "cost_usd": 0.05}}),
            ),
            ev(7, "agent_tool_call", "a", json!({"tool": "web", "result": {"usage": {"input_tokens": 1000}}})),
        ];
        let total = super::usage_total(&events).expect("usage");
        assert_eq!(total, crate::UsageTotal { input_tokens: 267, output_tokens: 55, cost_usd: 0.65, estimated: true });
        assert_eq!(super::usage_total(&events[4..5]), None);
        assert_eq!(super::usage_total(&events[6..]), None);
    }
}
