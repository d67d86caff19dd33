//! Step Functions execution history → Weft's node-level events.
//!
//! [`translate`] is a pure function of the whole history, and it is *prefix-stable*: the events it
//! yields for a prefix of a history are a prefix of the events it yields for the whole. That is
//! what makes event ids stable: the recorder re-reads the history, translates it, and appends only
//! the events past the ones already stored. A failed Task attempt is only classified (retried or
//! failed) once the next event of the history is known, so a history that ends on a failure
//! yields nothing for it yet.
//!
//! State names are node ids, or a node id plus a `.suffix` for the helper states the compiler
//! adds (`fetch.output`, `fetch.error`, `check.test`, `done.from.fetch`), so the node is the name
//! up to the first dot. A node's events come from the state that opened it: entering a state of a
//! node other than the previous state's node (or a node's main state) is `node_started`, leaving
//! that same state is `node_succeeded`; helper states that follow add nothing. A Task attempt that
//! failed is `node_retried` when the same state schedules another attempt, else `node_failed`
//! (and the state's exit after a caught failure is not a success). Every event's payload names the
//! `state` it came from.

use serde_json::{Map, Value, json};

/// One history event, reduced to what translation needs (built from the SDK's type or JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    pub id: i64,
    pub previous_id: i64,
    /// AWS's event type, e.g. `TaskStateEntered`.
    pub kind: String,
    /// RFC 3339.
    pub timestamp: Option<String>,
    /// State name of `*StateEntered` / `*StateExited`.
    pub state: Option<String>,
    /// Input (entered, execution started) or output (exited, execution succeeded), as JSON text.
    pub data: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// A node-level event, before it gets its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEvent {
    /// `execution_started`, `node_started`, `node_succeeded`, `node_retried`, `node_failed`,
    /// `child_execution_started` (a `workflow` node's child, `child_execution_id` in the
    /// payload), `agent_turn` (one model call of an agent: `turn`, `status`, `text`, `calls`,
    /// `usage` and `cost_usd` of that call, `agent` for a `multi_agent` node's agents),
    /// `agent_tool_call` (a tool call answered: `tool`, `args`, `result` or `error`/`cause`),
    /// `execution_redriven`, `execution_succeeded`, `execution_failed`, `execution_aborted`,
    /// `execution_timed_out`.
    pub kind: &'static str,
    pub node_id: Option<String>,
    pub payload: Value,
}

/// The node a state belongs to: its name up to the first dot.
pub fn node_of(state: &str) -> &str {
    state.split('.').next().unwrap_or(state)
}

/// Whether `state` is the state of an agent loop ending in `suffix` (`<node>.turn`,
/// `<node>.<agent>.turn`, `<node>.call.ok`, ...): `Some(agent name)` (`None` for an `agent`
/// node's own loop), or `None` when it is not.
fn agent_state<'s>(state: &'s str, suffix: &[&str]) -> Option<Option<&'s str>> {
    let segments: Vec<&str> = state.split('.').collect();
    let n = segments.len();
    if n < suffix.len() + 1 || segments[n - suffix.len()..] != *suffix {
        return None;
    }
    match n - suffix.len() {
        1 => Some(None),
        2 => Some(Some(segments[1])),
        _ => None,
    }
}

/// The execution's status as the history tells it: the last execution-level outcome, or RUNNING.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: &'static str,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

fn parse_json(text: &Option<String>) -> Value {
    match text {
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
        None => Value::Null,
    }
}

fn is_task_failure(kind: &str) -> bool {
    matches!(kind, "TaskFailed" | "TaskTimedOut" | "LambdaFunctionFailed" | "LambdaFunctionTimedOut")
}

fn is_task_schedule(kind: &str) -> bool {
    matches!(kind, "TaskScheduled" | "LambdaFunctionScheduled")
}

/// The error and cause of the child execution whose description is the cause of a failed
/// `startExecution.sync` Task, if this failure is one.
fn child_failure(ev: &HistoryItem) -> Option<(String, Option<String>)> {
    if ev.error.as_deref() != Some("States.TaskFailed") {
        return None;
    }
    let child: Value = serde_json::from_str(ev.cause.as_deref()?).ok()?;
    child.get("ExecutionArn")?;
    let error = child.get("Error").and_then(Value::as_str).unwrap_or("States.TaskFailed").to_owned();
    Some((error, child.get("Cause").and_then(Value::as_str).map(str::to_owned)))
}

/// Translates a whole history (ordered by id) into node-level events.
pub fn translate(history: &[HistoryItem]) -> Vec<NodeEvent> {
    let mut out = Vec::new();
    // The state each event belongs to, following previousEventId back to a `*StateEntered`.
    let mut state_of: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    let mut attempts: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    // The state that opened each node, the node of the last entered state, and states whose last
    // attempt failed (so their exit is not a success).
    let mut opener: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut last_node: Option<String> = None;
    let mut failed: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut children: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (i, ev) in history.iter().enumerate() {
        let state = if ev.kind.ends_with("StateEntered") {
            ev.state.clone()
        } else {
            ev.state.clone().or_else(|| state_of.get(&ev.previous_id).cloned())
        };
        if let Some(s) = &state {
            state_of.insert(ev.id, s.clone());
        }
        let base = |extra: Value| -> Value {
            let mut m = Map::new();
            m.insert("history_event_id".into(), json!(ev.id));
            if let Some(ts) = &ev.timestamp {
                m.insert("timestamp".into(), json!(ts));
            }
            if let Value::Object(e) = extra {
                m.extend(e);
            }
            Value::Object(m)
        };
        let kind = ev.kind.as_str();
        match kind {
            "ExecutionStarted" => out.push(NodeEvent {
                kind: "execution_started",
                node_id: None,
                payload: base(json!({"input": parse_json(&ev.data)})),
            }),
            "ExecutionRedriven" => {
                out.push(NodeEvent { kind: "execution_redriven", node_id: None, payload: base(json!({})) })
            }
            "ExecutionSucceeded" => out.push(NodeEvent {
                kind: "execution_succeeded",
                node_id: None,
                payload: base(json!({"output": parse_json(&ev.data)})),
            }),
            "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut" => out.push(NodeEvent {
                kind: match kind {
                    "ExecutionFailed" => "execution_failed",
                    "ExecutionAborted" => "execution_aborted",
                    _ => "execution_timed_out",
                },
                node_id: None,
                payload: base(json!({"error": ev.error, "cause": ev.cause})),
            }),
            k if k.ends_with("StateEntered") => {
                let Some(s) = state else { continue };
                attempts.insert(s.clone(), 1);
                failed.remove(&s);
                let node = node_of(&s).to_owned();
                // The state before this one *in the same branch* (its previous event belongs to
                // it), so interleaved Parallel branches and Map iterations do not re-open nodes.
                let previous = state_of.get(&ev.previous_id).map(|p| node_of(p)).or(last_node.as_deref());
                let opens = s == node || previous != Some(node.as_str());
                last_node = Some(node.clone());
                if !opens {
                    continue;
                }
                opener.insert(node.clone(), s.clone());
                out.push(NodeEvent {
                    kind: "node_started",
                    node_id: Some(node),
                    payload: base(json!({"state": s, "state_type": k.trim_end_matches("StateEntered"), "input": parse_json(&ev.data)})),
                });
            }
            k if k.ends_with("StateExited") => {
                let Some(s) = state else { continue };
                let node = node_of(&s).to_owned();
                // An agent's tool call was answered: `<p>.call.ok`, `.failed` or `.unknown`.
                if let Some(agent) = agent_state(&s, &["call", "ok"])
                    .or_else(|| agent_state(&s, &["call", "failed"]))
                    .or_else(|| agent_state(&s, &["call", "unknown"]))
                {
                    let call = parse_json(&ev.data);
                    let mut p = json!({"state": s, "call_id": call.get("id"), "tool": call.get("name"),
                                       "args": call.get("args")});
                    for key in ["result", "error", "cause"] {
                        if let Some(v) = call.get(key) {
                            p[key] = v.clone();
                        }
                    }
                    if let Some(a) = agent {
                        p["agent"] = json!(a);
                    }
                    out.push(NodeEvent { kind: "agent_tool_call", node_id: Some(node.clone()), payload: base(p) });
                }
                if failed.remove(&s) || opener.get(&node) != Some(&s) {
                    continue;
                }
                out.push(NodeEvent {
                    kind: "node_succeeded",
                    node_id: Some(node),
                    payload: base(json!({"state": s, "state_type": k.trim_end_matches("StateExited"), "output": parse_json(&ev.data)})),
                });
            }
            // A `workflow` node's child execution (`startExecution.sync`): its ARN is in the
            // Task's submitted and succeeded output; the child's row id is its name.
            "TaskSubmitted" | "TaskSucceeded" => {
                let Some(s) = state else { continue };
                let data = parse_json(&ev.data);
                // An agent's turn (`<p>.turn`): the agent function's summary of it.
                if kind == "TaskSucceeded"
                    && let Some(agent) = agent_state(&s, &["turn"])
                {
                    let mut p = data.pointer("/Payload/event").cloned().unwrap_or_else(|| json!({}));
                    if let Value::Object(m) = &mut p {
                        m.insert("state".into(), json!(s));
                        if let Some(a) = agent {
                            m.entry("agent").or_insert(json!(a));
                        }
                    }
                    out.push(NodeEvent { kind: "agent_turn", node_id: Some(node_of(&s).to_owned()), payload: base(p) });
                    continue;
                }
                let Some(arn) = data.get("ExecutionArn").and_then(Value::as_str) else { continue };
                if !children.insert(arn.to_owned()) {
                    continue;
                }
                let id = arn.rsplit(':').next().unwrap_or(arn);
                out.push(NodeEvent {
                    kind: "child_execution_started",
                    node_id: Some(node_of(&s).to_owned()),
                    payload: base(json!({"state": s, "child_execution_id": id, "execution_arn": arn})),
                });
            }
            k if is_task_failure(k) => {
                let Some(s) = state else { continue };
                // Classified by the next event: another attempt of the same state is a retry.
                let Some(next) = history.get(i + 1) else { break };
                let next_state = next.state.clone().or_else(|| {
                    if next.previous_id == ev.id { Some(s.clone()) } else { state_of.get(&next.previous_id).cloned() }
                });
                let attempt = attempts.get(&s).copied().unwrap_or(1);
                let retried = is_task_schedule(&next.kind) && next_state.as_deref() == Some(s.as_str());
                if retried {
                    attempts.insert(s.clone(), attempt + 1);
                } else {
                    failed.insert(s.clone());
                }
                // A `workflow` node's child failed: `States.TaskFailed` with the child's
                // description as the cause; the node failed with the child's error and cause.
                let (error, cause) = match child_failure(ev) {
                    Some((e, c)) => (Some(e), c),
                    None => (ev.error.clone(), ev.cause.clone()),
                };
                out.push(NodeEvent {
                    kind: if retried { "node_retried" } else { "node_failed" },
                    node_id: Some(node_of(&s).to_owned()),
                    payload: base(json!({"state": s, "attempt": attempt, "error": error, "cause": cause})),
                });
            }
            _ => {}
        }
    }
    out
}

/// The execution's status per its history (the last execution-level event decides).
pub fn outcome(history: &[HistoryItem]) -> Outcome {
    let mut o = Outcome { status: "RUNNING", output: None, error: None, cause: None };
    for ev in history {
        match ev.kind.as_str() {
            "ExecutionStarted" | "ExecutionRedriven" => {
                o = Outcome { status: "RUNNING", output: None, error: None, cause: None };
            }
            "ExecutionSucceeded" => {
                o = Outcome { status: "SUCCEEDED", output: Some(parse_json(&ev.data)), error: None, cause: None }
            }
            "ExecutionFailed" => {
                o = Outcome { status: "FAILED", output: None, error: ev.error.clone(), cause: ev.cause.clone() }
            }
            "ExecutionAborted" => {
                o = Outcome { status: "ABORTED", output: None, error: ev.error.clone(), cause: ev.cause.clone() }
            }
            "ExecutionTimedOut" => {
                o = Outcome { status: "TIMED_OUT", output: None, error: ev.error.clone(), cause: ev.cause.clone() }
            }
            _ => {}
        }
    }
    o
}

/// Builds [`HistoryItem`]s from the SDK's history events.
pub fn from_sdk(events: &[aws_sdk_sfn::types::HistoryEvent]) -> Vec<HistoryItem> {
    events
        .iter()
        .map(|e| {
            let mut item = HistoryItem {
                id: e.id(),
                previous_id: e.previous_event_id(),
                kind: e.r#type().as_str().to_owned(),
                timestamp: e.timestamp().fmt(aws_sdk_sfn::primitives::DateTimeFormat::DateTime).ok(),
                state: None,
                data: None,
                error: None,
                cause: None,
            };
            if let Some(d) = e.state_entered_event_details() {
                item.state = Some(d.name().to_owned());
                item.data = d.input().map(str::to_owned);
            }
            if let Some(d) = e.state_exited_event_details() {
                item.state = Some(d.name().to_owned());
                item.data = d.output().map(str::to_owned);
            }
            if let Some(d) = e.task_submitted_event_details() {
                item.data = d.output().map(str::to_owned);
            }
            if let Some(d) = e.task_succeeded_event_details() {
                item.data = d.output().map(str::to_owned);
            }
            if let Some(d) = e.execution_started_event_details() {
                item.data = d.input().map(str::to_owned);
            }
            if let Some(d) = e.execution_succeeded_event_details() {
                item.data = d.output().map(str::to_owned);
            }
            let (error, cause) = if let Some(d) = e.execution_failed_event_details() {
                (d.error(), d.cause())
            } else if let Some(d) = e.execution_aborted_event_details() {
                (d.error(), d.cause())
            } else if let Some(d) = e.execution_timed_out_event_details() {
                (d.error(), d.cause())
            } else if let Some(d) = e.task_failed_event_details() {
                (d.error(), d.cause())
            } else if let Some(d) = e.task_timed_out_event_details() {
                (d.error(), d.cause())
            } else if let Some(d) = e.lambda_function_failed_event_details() {
                (d.error(), d.cause())
            } else if let Some(d) = e.lambda_function_timed_out_event_details() {
                (d.error(), d.cause())
            } else {
                (None, None)
            };
            item.error = error.map(str::to_owned);
            item.cause = cause.map(str::to_owned);
            item
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_nodes_child_is_linked_once() {
        let arn = "arn:aws:states:us-east-1:123456789012:execution:child:5e0c1d2a-0000-4000-8000-000000000001";
        let with = |mut e: HistoryItem, data: Value| {
            e.data = Some(data.to_string());
            e
        };
        let h = vec![
            ev(1, 0, "ExecutionStarted", None),
            ev(2, 1, "TaskStateEntered", Some("sub")),
            ev(3, 2, "TaskScheduled", None),
            ev(4, 3, "TaskStarted", None),
            with(ev(5, 4, "TaskSubmitted", None), json!({"ExecutionArn": arn, "StartDate": 1})),
            with(ev(6, 5, "TaskSucceeded", None), json!({"ExecutionArn": arn, "Output": {"ok": true}})),
            ev(7, 6, "TaskStateExited", Some("sub")),
        ];
        let events = translate(&h);
        let linked: Vec<&NodeEvent> = events.iter().filter(|e| e.kind == "child_execution_started").collect();
        assert_eq!(linked.len(), 1, "{events:?}");
        assert_eq!(linked[0].node_id.as_deref(), Some("sub"));
        assert_eq!(linked[0].payload["child_execution_id"], json!("5e0c1d2a-0000-4000-8000-000000000001"));
        assert_eq!(linked[0].payload["execution_arn"], json!(arn));
        // Prefix-stable: the prefix up to the submission yields the same link.
        let prefix = translate(&h[..5]);
        assert!(prefix.iter().any(|e| e.kind == "child_execution_started"));

        // A child that fails: the node fails with the child's error and cause.
        let mut failed = ev(6, 5, "TaskFailed", None);
        failed.error = Some("States.TaskFailed".into());
        failed.cause = Some(json!({"ExecutionArn": arn, "Error": "Code.Error", "Cause": "boom"}).to_string());
        let h = vec![
            h[0].clone(),
            h[1].clone(),
            h[2].clone(),
            h[3].clone(),
            h[4].clone(),
            failed,
            ev(7, 6, "ExecutionFailed", None),
        ];
        let events = translate(&h);
        let node_failed = events.iter().find(|e| e.kind == "node_failed").expect("node_failed");
        assert_eq!(node_failed.payload["error"], json!("Code.Error"));
        assert_eq!(node_failed.payload["cause"], json!("boom"));
    }

    #[test]
    fn agent_turns_and_tool_calls_are_events_of_their_node() {
        let with = |mut e: HistoryItem, data: Value| {
            e.data = Some(data.to_string());
            e
        };
        let turn = json!({"Payload": {"status": "tools", "event": {"turn": 1, "status": "tools", "text": "",
            "calls": [{"name": "add", "args": {"a": 1}}], "usage": {"input_tokens": 9, "output_tokens": 3}, "cost_usd": 0.01}}});
        let h = vec![
            ev(1, 0, "ExecutionStarted", None),
            ev(2, 1, "ParallelStateEntered", Some("a")),
            ev(3, 2, "PassStateEntered", Some("a.start")),
            ev(4, 3, "PassStateExited", Some("a.start")),
            ev(5, 4, "TaskStateEntered", Some("a.turn")),
            ev(6, 5, "TaskScheduled", None),
            ev(7, 6, "TaskStarted", None),
            with(ev(8, 7, "TaskSucceeded", None), turn),
            ev(9, 8, "TaskStateExited", Some("a.turn")),
            ev(10, 9, "MapStateEntered", Some("a.tools")),
            ev(11, 10, "ChoiceStateEntered", Some("a.call")),
            ev(12, 11, "ChoiceStateExited", Some("a.call")),
            ev(13, 12, "PassStateEntered", Some("a.call.ok")),
            with(
                ev(14, 13, "PassStateExited", Some("a.call.ok")),
                json!({"id": "c1", "name": "add", "args": {"a": 1}, "result": 2}),
            ),
            ev(15, 14, "PassStateEntered", Some("team.writer.call.failed")),
            with(
                ev(16, 15, "PassStateExited", Some("team.writer.call.failed")),
                json!({"id": "c2", "name": "fetch", "args": {}, "error": "Http.ForbiddenAddress", "cause": "no"}),
            ),
            ev(17, 16, "MapStateExited", Some("a.tools")),
            ev(18, 17, "ParallelStateExited", Some("a")),
        ];
        let events = translate(&h);
        let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "agent_turn").count(), 1, "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| **k == "agent_tool_call").count(), 2, "{kinds:?}");
        let turn = events.iter().find(|e| e.kind == "agent_turn").expect("agent_turn");
        assert_eq!(turn.node_id.as_deref(), Some("a"));
        assert_eq!(turn.payload["state"], "a.turn");
        assert_eq!(turn.payload["usage"]["input_tokens"], 9);
        assert_eq!(turn.payload.get("agent"), None);
        let calls: Vec<&NodeEvent> = events.iter().filter(|e| e.kind == "agent_tool_call").collect();
        assert_eq!(calls[0].payload["tool"], "add");
        assert_eq!(calls[0].payload["result"], 2);
        assert_eq!(calls[1].node_id.as_deref(), Some("team"));
        assert_eq!(calls[1].payload["agent"], "writer");
        assert_eq!(calls[1].payload["error"], "Http.ForbiddenAddress");
        // The agent node opens once and succeeds when its Parallel exits, not when its seed does.
        let succeeded: Vec<&str> =
            events.iter().filter(|e| e.kind == "node_succeeded").filter_map(|e| e.payload["state"].as_str()).collect();
        assert!(succeeded.contains(&"a"), "{events:?}");
        assert!(!succeeded.contains(&"a.start"), "{events:?}");
    }

    fn ev(id: i64, prev: i64, kind: &str, state: Option<&str>) -> HistoryItem {
        HistoryItem {
            id,
            previous_id: prev,
            kind: kind.into(),
            timestamp: None,
            state: state.map(str::to_owned),
            data: None,
            error: None,
            cause: None,
        }
    }

    fn history() -> Vec<HistoryItem> {
        vec![
            ev(1, 0, "ExecutionStarted", None),
            ev(2, 1, "TaskStateEntered", Some("call")),
            ev(3, 2, "TaskScheduled", None),
            ev(4, 3, "TaskStarted", None),
            ev(5, 4, "TaskFailed", None),
            ev(6, 5, "TaskScheduled", None),
            ev(7, 6, "TaskStarted", None),
            ev(8, 7, "TaskFailed", None),
            ev(9, 8, "TaskStateExited", Some("call")),
            ev(10, 9, "PassStateEntered", Some("call.error")),
            ev(11, 10, "PassStateExited", Some("call.error")),
            ev(12, 11, "PassStateEntered", Some("fallback")),
            ev(13, 12, "PassStateExited", Some("fallback")),
            ev(14, 13, "SucceedStateEntered", Some("done.from.fallback")),
            ev(15, 14, "SucceedStateExited", Some("done.from.fallback")),
            ev(16, 15, "ExecutionSucceeded", None),
        ]
    }

    #[test]
    fn retries_and_catches_become_node_events() {
        let kinds: Vec<_> =
            translate(&history()).iter().map(|e| (e.kind, e.node_id.clone().unwrap_or_default())).collect();
        let expected = [
            ("execution_started", ""),
            ("node_started", "call"),
            ("node_retried", "call"),
            ("node_failed", "call"),
            ("node_started", "fallback"),
            ("node_succeeded", "fallback"),
            ("node_started", "done"),
            ("node_succeeded", "done"),
            ("execution_succeeded", ""),
        ];
        let expected: Vec<_> = expected.iter().map(|(k, n)| (*k, n.to_string())).collect();
        assert_eq!(kinds, expected);
        assert_eq!(outcome(&history()).status, "SUCCEEDED");
    }

    /// Two Parallel branches whose events interleave: `work`'s helper state `work.output` is
    /// entered after the other branch's `wait` state, and must not open `work` again.
    #[test]
    fn interleaved_branches_open_each_node_once() {
        let h = vec![
            ev(1, 0, "ExecutionStarted", None),
            ev(2, 1, "ParallelStateEntered", Some("fork")),
            ev(3, 2, "ParallelStateStarted", None),
            ev(4, 3, "TaskStateEntered", Some("work")),
            ev(5, 3, "WaitStateEntered", Some("wait")),
            ev(6, 4, "TaskScheduled", None),
            ev(7, 6, "TaskStarted", None),
            ev(8, 7, "TaskSucceeded", None),
            ev(9, 8, "TaskStateExited", Some("work")),
            ev(10, 9, "PassStateEntered", Some("work.output")),
            ev(11, 10, "PassStateExited", Some("work.output")),
            ev(12, 5, "WaitStateExited", Some("wait")),
            ev(13, 12, "ParallelStateSucceeded", None),
            ev(14, 13, "ParallelStateExited", Some("fork")),
            ev(15, 14, "ExecutionSucceeded", None),
        ];
        let kinds: Vec<_> = translate(&h).iter().map(|e| (e.kind, e.node_id.clone().unwrap_or_default())).collect();
        let expected = [
            ("execution_started", ""),
            ("node_started", "fork"),
            ("node_started", "work"),
            ("node_started", "wait"),
            ("node_succeeded", "work"),
            ("node_succeeded", "wait"),
            ("node_succeeded", "fork"),
            ("execution_succeeded", ""),
        ];
        let expected: Vec<_> = expected.iter().map(|(k, n)| (*k, n.to_string())).collect();
        assert_eq!(kinds, expected);
    }

    #[test]
    fn translation_is_prefix_stable() {
        let h = history();
        let whole = translate(&h);
        for n in 0..=h.len() {
            let part = translate(&h[..n]);
            assert_eq!(&whole[..part.len()], &part[..], "prefix {n}");
        }
        // A history ending on a failure does not classify it yet.
        assert_eq!(translate(&h[..5]).len(), 2);
        assert_eq!(outcome(&h[..5]).status, "RUNNING");
    }
}
