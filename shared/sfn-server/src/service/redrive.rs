//! Restarts: [`Service::recover`] (at start-up, executions a previous process left RUNNING
//! become FAILED with `Weft.EngineRestarted`, so none is silently lost) and RedriveExecution
//! (a FAILED, TIMED_OUT or ABORTED execution continues under the same ARN, its history ids
//! following on from the `ExecutionRedriven` event, at the state [`redrive_point`] finds).

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};

use engine::StartOptions;

use super::input::ExecArnIn;
use super::{Ending, Service, epoch, redrivable};
use crate::error::SfnError;
use crate::store::event_id;

/// The error and cause recorded on executions that a previous process left RUNNING.
pub const ENGINE_RESTARTED: &str = "Weft.EngineRestarted";

/// What `SfnState::open` did to executions a previous process left RUNNING.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The ARNs marked FAILED with `Weft.EngineRestarted`.
    pub failed: Vec<String>,
}

impl Service {
    /// Executions a previous process left RUNNING: FAILED with `Weft.EngineRestarted` and an
    /// `ExecutionFailed` event, so nothing is silently lost and they can be redriven.
    pub(crate) async fn recover(&self) -> Result<Recovery, SfnError> {
        let mut report = Recovery::default();
        for rec in self.store.running_executions().await? {
            if self.running.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&rec.arn) {
                continue;
            }
            let cause = "The Weft process running this execution stopped before it finished (the server was restarted or \
                         crashed). Steps after the last recorded event did not complete or their results were lost; \
                         RedriveExecution resumes the execution from the state that was running.";
            let rec = self.end_in_store(rec, Ending::Failed, Some(ENGINE_RESTARTED.into()), Some(cause.into())).await?;
            tracing::warn!(execution = %rec.arn, "execution left RUNNING by a previous process marked FAILED ({ENGINE_RESTARTED})");
            report.failed.push(rec.arn);
        }
        Ok(report)
    }

    pub(super) async fn redrive(self: &Arc<Self>, req: ExecArnIn) -> Result<Value, SfnError> {
        let _g = self.admin.lock().await;
        let mut rec = self.execution(&req.execution_arn).await?;
        if !redrivable(&rec.status) {
            return Err(SfnError::new(
                "ExecutionNotRedrivable",
                format!(
                    "Execution '{}' is {}; only FAILED, TIMED_OUT and ABORTED executions can be redriven",
                    rec.arn, rec.status
                ),
            ));
        }
        let def = self.definition(&rec.definition)?;
        let def_json: Value = serde_json::from_str(&rec.definition).unwrap_or(Value::Null);
        let events = self.store.events(&rec.arn, 1, usize::MAX, false).await?;
        let input: Value = serde_json::from_str(&rec.input).unwrap_or_else(|_| json!({}));
        let (state, state_input) = redrive_point(&def_json, &events, &input).ok_or_else(|| {
            SfnError::new("ExecutionNotRedrivable", format!("Execution '{}' has no state to redrive from", rec.arn))
        })?;
        let last_id = events.last().map_or(0, event_id);
        let now = Utc::now();
        rec.redrive_count += 1;
        rec.redrive_date = Some(now);
        rec.status = "RUNNING".into();
        rec.stop_date = None;
        rec.output = None;
        rec.error = None;
        rec.cause = None;
        let redriven_id = last_id + 1;
        let event = json!({
            "timestamp": epoch(now),
            "type": "ExecutionRedriven",
            "id": redriven_id,
            "previousEventId": last_id,
            "executionRedrivenEventDetails": {"redriveCount": rec.redrive_count},
        });
        // Its history grows again: readers go to the store from here on.
        self.recent().forget(&rec.arn);
        self.store.append_events(&rec.arn, &[event]).await?;
        rec.event_count = redriven_id;
        self.store.put_execution(&rec).await?;
        let exec = self
            .engine
            .resume(
                def,
                input,
                StartOptions { name: Some(rec.name.clone()), state_machine_name: Some(rec.state_machine.clone()) },
                &state,
                state_input,
                rec.redrive_count,
            )
            .ok_or_else(|| {
                SfnError::new("ExecutionNotRedrivable", format!("state '{state}' is not a top-level state"))
            })?;
        self.drive(exec, rec, redriven_id, true);
        Ok(json!({"redriveDate": epoch(now)}))
    }
}

/// Where a redrive resumes: the last top-level state that was entered, with its recorded input
/// (AWS: "from the failed state"). When that state had already exited (the process died between
/// two states), the state after it with its output if the transition is static, else the state
/// itself again. With no state entered, `StartAt` with the execution input.
fn redrive_point(def: &Value, events: &[Value], input: &Value) -> Option<(String, Value)> {
    let states = def.get("States")?.as_object()?;
    let mut last: Option<(String, Value, Option<Value>)> = None;
    for ev in events {
        let ty = ev.get("type").and_then(Value::as_str).unwrap_or("");
        let Some(details) = ev.get("stateEnteredEventDetails").or_else(|| ev.get("stateExitedEventDetails")) else {
            continue;
        };
        let Some(name) = details.get("name").and_then(Value::as_str) else { continue };
        if !states.contains_key(name) {
            continue;
        }
        let data = |k: &str| details.get(k).and_then(Value::as_str).and_then(|s| serde_json::from_str::<Value>(s).ok());
        if ty.ends_with("StateEntered") {
            last = Some((name.to_owned(), data("input").unwrap_or(Value::Null), None));
        } else if ty.ends_with("StateExited")
            && let Some(l) = last.as_mut()
            && l.0 == name
        {
            l.2 = data("output");
        }
    }
    match last {
        None => Some((def.get("StartAt")?.as_str()?.to_owned(), input.clone())),
        Some((name, input, None)) => Some((name, input)),
        Some((name, input, Some(output))) => {
            let st = states.get(&name)?;
            match st.get("Next").and_then(Value::as_str) {
                Some(next) => Some((next.to_owned(), output)),
                None => Some((name, input)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_points() {
        let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Wait", "Seconds": 9, "Next": "C"}, "C": {"Type": "Succeed"}}});
        let entered =
            |n: &str, i: &str| json!({"type": "PassStateEntered", "stateEnteredEventDetails": {"name": n, "input": i}});
        let exited =
            |n: &str, o: &str| json!({"type": "PassStateExited", "stateExitedEventDetails": {"name": n, "output": o}});
        assert_eq!(redrive_point(&def, &[], &json!(1)), Some(("A".into(), json!(1))));
        assert_eq!(
            redrive_point(&def, &[entered("A", "1"), exited("A", "2"), entered("B", "2")], &json!(1)),
            Some(("B".into(), json!(2)))
        );
        assert_eq!(
            redrive_point(&def, &[entered("A", "1"), exited("A", "{\"x\":3}")], &json!(1)),
            Some(("B".into(), json!({"x": 3})))
        );
        // Events of nested states (names not at the top level) are skipped.
        assert_eq!(
            redrive_point(&def, &[entered("A", "1"), entered("inner", "5")], &json!(1)),
            Some(("A".into(), json!(1)))
        );
    }
}
