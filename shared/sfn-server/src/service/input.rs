//! Reading requests: the request document of each action as a serde struct with AWS's field
//! names, paging parameters, and the ARNs and names in requests checked against AWS's formats
//! (the `arn` crate), each problem as the AWS error a client expects (`ValidationException`,
//! `InvalidToken`, `InvalidArn`, `InvalidName`).

use arn::{ExecutionArn, StateMachineArn};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::SfnError;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// The request document as the action's input struct; a mismatch is AWS's `ValidationException`.
pub(super) fn parse<T: DeserializeOwned>(v: Value) -> Result<T, SfnError> {
    serde_json::from_value(v).map_err(|e| SfnError::validation(format!("1 validation error detected: {e}")))
}

/// `maxResults`: 0 or absent is the default page of 100, at most 1000.
pub(super) fn page_size(max: Option<i64>) -> Result<usize, SfnError> {
    match max {
        None | Some(0) => Ok(DEFAULT_PAGE),
        Some(n) if n < 0 || n > MAX_PAGE as i64 => {
            Err(SfnError::validation(format!("maxResults must be between 0 and {MAX_PAGE}, got {n}")))
        }
        Some(n) => Ok(n as usize),
    }
}

/// `nextToken`: the offset (listings) or event id (history) a previous page ended at.
pub(super) fn token(t: Option<&str>) -> Result<Option<u64>, SfnError> {
    match t {
        None | Some("") => Ok(None),
        Some(t) => t.parse::<u64>().map(Some).map_err(|_| {
            SfnError::new("InvalidToken", format!("Invalid Token: '{t}' (use the nextToken of a previous page)"))
        }),
    }
}

/// A state machine, version or alias ARN of a request.
pub(super) fn state_machine_arn(text: &str) -> Result<StateMachineArn<'_>, SfnError> {
    StateMachineArn::parse(text).map_err(|_| SfnError::invalid_arn(text))
}

/// An execution ARN of a request (executions of this endpoint are never of the EXPRESS form).
pub(super) fn execution_arn(text: &str) -> Result<ExecutionArn<'_>, SfnError> {
    match ExecutionArn::parse(text) {
        Ok(arn) if arn.express_run.is_none() => Ok(arn),
        _ => Err(SfnError::invalid_arn(text)),
    }
}

/// AWS's rule for state machine, execution and alias names (`what` names which).
pub(super) fn check_name(name: &str, what: &str) -> Result<(), SfnError> {
    arn::check_name(name).map_err(|e| SfnError::new("InvalidName", format!("Invalid Name: '{name}' ({what} {e})")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateIn {
    pub(super) name: String,
    pub(super) definition: String,
    pub(super) role_arn: String,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) logging_configuration: Option<Value>,
    pub(super) tracing_configuration: Option<Value>,
    pub(super) publish: Option<bool>,
    pub(super) version_description: Option<String>,
    pub(super) description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateIn {
    pub(super) state_machine_arn: String,
    pub(super) definition: Option<String>,
    pub(super) role_arn: Option<String>,
    pub(super) logging_configuration: Option<Value>,
    pub(super) tracing_configuration: Option<Value>,
    pub(super) publish: Option<bool>,
    pub(super) version_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ArnIn {
    pub(super) state_machine_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PublishIn {
    pub(super) state_machine_arn: String,
    pub(super) revision_id: Option<String>,
    pub(super) description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RouteIn {
    pub(super) state_machine_version_arn: String,
    pub(super) weight: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateAliasIn {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) routing_configuration: Vec<RouteIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateAliasIn {
    pub(super) state_machine_alias_arn: String,
    pub(super) description: Option<String>,
    pub(super) routing_configuration: Option<Vec<RouteIn>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageIn {
    pub(super) max_results: Option<i64>,
    pub(super) next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StartIn {
    pub(super) state_machine_arn: String,
    pub(super) name: Option<String>,
    pub(super) input: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExecArnIn {
    pub(super) execution_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListExecIn {
    pub(super) state_machine_arn: Option<String>,
    pub(super) status_filter: Option<String>,
    pub(super) max_results: Option<i64>,
    pub(super) next_token: Option<String>,
    pub(super) redrive_filter: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HistoryIn {
    pub(super) execution_arn: String,
    pub(super) max_results: Option<i64>,
    pub(super) reverse_order: Option<bool>,
    pub(super) next_token: Option<String>,
    pub(super) include_execution_data: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StopIn {
    pub(super) execution_arn: String,
    pub(super) error: Option<String>,
    pub(super) cause: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TaskIn {
    pub(super) task_token: String,
    pub(super) output: Option<String>,
    pub(super) error: Option<String>,
    pub(super) cause: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_names_in_requests_are_aws_errors() {
        let base = "arn:aws:states:us-east-1:123456789012:stateMachine:m";
        assert_eq!(state_machine_arn(base).map(|a| a.name).ok(), Some("m"));
        for bad in ["", "m", "arn:aws:states:us-east-1:1:execution:m:e", &format!("{base}:"), &format!("{base}:a:b")] {
            assert_eq!(state_machine_arn(bad).err().map(|e| e.code()), Some("InvalidArn"), "{bad}");
        }
        let e = execution_arn("arn:aws:states:us-east-1:1:execution:m:e").expect("an execution ARN");
        assert_eq!((e.state_machine, e.name), ("m", "e"));
        for bad in ["arn:aws:states:us-east-1:1:execution:m", "arn:aws:states:us-east-1:1:express:m:e:run"] {
            assert_eq!(execution_arn(bad).err().map(|e| e.code()), Some("InvalidArn"), "{bad}");
        }
        assert!(check_name("ok-name_1", "x").is_ok());
        for bad in ["", "a b", "a:b", "a/b", &"x".repeat(81), "a\u{1}"] {
            assert_eq!(check_name(bad, "x").err().map(|e| e.code()), Some("InvalidName"), "{bad:?}");
        }
        assert_eq!(
            check_name("a b", "alias").err().map(|e| e.to_string()),
            Some("InvalidName: Invalid Name: 'a b' (alias names must not contain ' ')".to_owned())
        );
    }
}
