//! The ARNs Weft builds and reads, in AWS's formats. Every ARN string of the tree is formatted and
//! split here, so the formats below are written down once:
//!
//! | resource | format |
//! |---|---|
//! | state machine | `arn:<partition>:states:<region>:<account>:stateMachine:<name>` |
//! | version | `arn:<partition>:states:<region>:<account>:stateMachine:<name>:<number>` |
//! | alias | `arn:<partition>:states:<region>:<account>:stateMachine:<name>:<alias>` |
//! | execution | `arn:<partition>:states:<region>:<account>:execution:<state machine>:<name>` |
//! | EXPRESS execution | `arn:<partition>:states:<region>:<account>:express:<state machine>:<name>:<run>` |
//! | Map Run (the engine's) | `arn:<partition>:states:<region>:<account>:mapRun:<state machine>:<execution>/<state>:<id>` |
//! | Lambda function | `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]` |
//! | IAM role | `arn:<partition>:iam::<account>:role/<name>` |
//!
//! Built ARNs are in the partition `aws`. Parsers check the `arn` prefix, the service, the
//! resource type and that every resource segment is non-empty; partition, region and account are
//! taken as they are (Weft's Step Functions endpoint stands in for one account and does not check
//! them). An execution belongs to its state machine, not to the version or alias it was started
//! through, so [`StateMachineArn::execution`] drops the qualifier, as AWS does.
//!
//! [`check_name`] is AWS's rule for state machine, alias and execution names; it keeps `:` out of
//! every name, so a name is always exactly one segment.
//!
//! **Invariant:** pure: no IO, no async runtime, nothing but `thiserror` (checked by `cargo tree`
//! in `scripts/test`).

use std::fmt;

/// The partition of the ARNs this crate builds.
pub const PARTITION: &str = "aws";

/// A text that is not the kind of ARN that was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{arn}' is not {expected}")]
pub struct ArnError {
    pub arn: String,
    /// What was expected, e.g. "a state machine ARN".
    pub expected: &'static str,
}

/// The parts of `arn:<partition>:<service>:<region>:<account>:<kind>:<resource...>`.
struct Parts<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
    resource: Vec<&'a str>,
}

/// Splits `arn` when it has the service and resource type given and no empty resource segment.
fn split<'a>(arn: &'a str, service: &str, kind: &str) -> Option<Parts<'a>> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 7 || parts[0] != "arn" || parts[2] != service || parts[5] != kind {
        return None;
    }
    let resource = parts[6..].to_vec();
    resource.iter().all(|p| !p.is_empty()).then(|| Parts {
        partition: parts[1],
        region: parts[3],
        account: parts[4],
        resource,
    })
}

/// What a qualified state machine ARN designates besides the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier<'a> {
    /// A published version (`...:<name>:3`).
    Version(u32),
    /// An alias (`...:<name>:live`). Alias names are never all digits, so a qualifier that is a
    /// number is a version; one too large for a version is read as an alias name no alias has.
    Alias(&'a str),
}

/// A state machine, one of its versions or one of its aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateMachineArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
    /// `None` for the state machine itself (its latest revision).
    pub qualifier: Option<Qualifier<'a>>,
}

impl<'a> StateMachineArn<'a> {
    /// The (unqualified) ARN of state machine `name`.
    pub fn new(region: &'a str, account: &'a str, name: &'a str) -> Self {
        Self { partition: PARTITION, region, account, name, qualifier: None }
    }

    pub fn parse(arn: &'a str) -> Result<Self, ArnError> {
        let bad = || ArnError { arn: arn.to_owned(), expected: "a state machine ARN" };
        let p = split(arn, "states", "stateMachine").ok_or_else(bad)?;
        let (name, qualifier) = match p.resource[..] {
            [name] => (name, None),
            [name, q] => match q.parse::<u32>() {
                // `parse` alone would take `+3`.
                Ok(v) if q.bytes().all(|b| b.is_ascii_digit()) => (name, Some(Qualifier::Version(v))),
                _ => (name, Some(Qualifier::Alias(q))),
            },
            _ => return Err(bad()),
        };
        Ok(Self { partition: p.partition, region: p.region, account: p.account, name, qualifier })
    }

    /// The ARN of version `version` of this state machine.
    pub fn with_version(self, version: u32) -> Self {
        Self { qualifier: Some(Qualifier::Version(version)), ..self }
    }

    /// The ARN of alias `alias` of this state machine.
    pub fn with_alias(self, alias: &'a str) -> Self {
        Self { qualifier: Some(Qualifier::Alias(alias)), ..self }
    }

    /// The state machine itself, without version or alias.
    pub fn unqualified(self) -> Self {
        Self { qualifier: None, ..self }
    }

    /// The ARN of execution `name` started through this ARN (qualified or not).
    pub fn execution(&self, name: &'a str) -> ExecutionArn<'a> {
        ExecutionArn {
            partition: self.partition,
            region: self.region,
            account: self.account,
            state_machine: self.name,
            name,
            express_run: None,
        }
    }
}

impl fmt::Display for StateMachineArn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { partition, region, account, name, qualifier } = self;
        write!(f, "arn:{partition}:states:{region}:{account}:stateMachine:{name}")?;
        match qualifier {
            None => Ok(()),
            Some(Qualifier::Version(v)) => write!(f, ":{v}"),
            Some(Qualifier::Alias(a)) => write!(f, ":{a}"),
        }
    }
}

/// An execution: `...:execution:<state machine>:<name>`, or the `...:express:...:<run>` form AWS
/// gives EXPRESS executions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    /// The state machine's name.
    pub state_machine: &'a str,
    pub name: &'a str,
    /// The run of an EXPRESS execution; `None` for the `...:execution:...` form.
    pub express_run: Option<&'a str>,
}

impl<'a> ExecutionArn<'a> {
    /// The ARN of execution `name` of state machine `state_machine`.
    pub fn new(region: &'a str, account: &'a str, state_machine: &'a str, name: &'a str) -> Self {
        StateMachineArn::new(region, account, state_machine).execution(name)
    }

    pub fn parse(arn: &'a str) -> Result<Self, ArnError> {
        let bad = || ArnError { arn: arn.to_owned(), expected: "an execution ARN" };
        let (p, express) = match split(arn, "states", "execution") {
            Some(p) => (p, false),
            None => (split(arn, "states", "express").ok_or_else(bad)?, true),
        };
        let (state_machine, name, express_run) = match (express, &p.resource[..]) {
            (false, [sm, name]) => (*sm, *name, None),
            (true, [sm, name, run]) => (*sm, *name, Some(*run)),
            _ => return Err(bad()),
        };
        Ok(Self { partition: p.partition, region: p.region, account: p.account, state_machine, name, express_run })
    }

    /// The (unqualified) ARN of the execution's state machine.
    pub fn state_machine_arn(&self) -> StateMachineArn<'a> {
        StateMachineArn {
            partition: self.partition,
            region: self.region,
            account: self.account,
            name: self.state_machine,
            qualifier: None,
        }
    }

    /// The ARN of a Map Run of this execution: the Map state `state`'s run number `id`.
    pub fn map_run(&self, state: &str, id: &str) -> String {
        let Self { partition, region, account, state_machine, name, .. } = self;
        format!("arn:{partition}:states:{region}:{account}:mapRun:{state_machine}:{name}/{state}:{id}")
    }
}

impl fmt::Display for ExecutionArn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { partition, region, account, state_machine, name, express_run } = self;
        match express_run {
            None => write!(f, "arn:{partition}:states:{region}:{account}:execution:{state_machine}:{name}"),
            Some(run) => write!(f, "arn:{partition}:states:{region}:{account}:express:{state_machine}:{name}:{run}"),
        }
    }
}

/// A Lambda function, possibly qualified by a version or alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
    pub qualifier: Option<&'a str>,
}

impl<'a> FunctionArn<'a> {
    pub fn parse(arn: &'a str) -> Result<Self, ArnError> {
        let bad = || ArnError { arn: arn.to_owned(), expected: "a Lambda function ARN" };
        let p = split(arn, "lambda", "function").ok_or_else(bad)?;
        let (name, qualifier) = match p.resource[..] {
            [name] => (name, None),
            [name, q] => (name, Some(q)),
            _ => return Err(bad()),
        };
        Ok(Self { partition: p.partition, region: p.region, account: p.account, name, qualifier })
    }
}

impl fmt::Display for FunctionArn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { partition, region, account, name, qualifier } = self;
        write!(f, "arn:{partition}:lambda:{region}:{account}:function:{name}")?;
        match qualifier {
            Some(q) => write!(f, ":{q}"),
            None => Ok(()),
        }
    }
}

/// An IAM role (IAM ARNs have no region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleArn<'a> {
    pub partition: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

impl<'a> RoleArn<'a> {
    pub fn new(account: &'a str, name: &'a str) -> Self {
        Self { partition: PARTITION, account, name }
    }
}

impl fmt::Display for RoleArn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { partition, account, name } = self;
        write!(f, "arn:{partition}:iam::{account}:role/{name}")
    }
}

/// Why a name breaks AWS's rule for state machine, alias and execution names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("names must be 1 to 80 characters")]
    Length,
    #[error("names must not contain {0:?}")]
    Char(char),
}

/// AWS's rule for state machine, execution and alias names: 1 to 80 characters, none of
/// whitespace, `< > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /` or control characters.
pub fn check_name(name: &str) -> Result<(), NameError> {
    const BAD: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";
    let len = name.chars().count();
    if len == 0 || len > 80 {
        return Err(NameError::Length);
    }
    match name.chars().find(|c| c.is_whitespace() || c.is_control() || BAD.contains(*c)) {
        Some(c) => Err(NameError::Char(c)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:m";

    #[test]
    fn state_machine_arns() {
        let m = StateMachineArn::new("us-east-1", "123456789012", "m");
        assert_eq!(m.to_string(), BASE);
        assert_eq!(m.with_version(3).to_string(), format!("{BASE}:3"));
        assert_eq!(m.with_alias("prod").to_string(), format!("{BASE}:prod"));
        assert_eq!(StateMachineArn::parse(BASE), Ok(m));
        assert_eq!(StateMachineArn::parse(&format!("{BASE}:3")), Ok(m.with_version(3)));
        assert_eq!(StateMachineArn::parse(&format!("{BASE}:prod")), Ok(m.with_alias("prod")));
        assert_eq!(StateMachineArn::parse(&format!("{BASE}:+3")), Ok(m.with_alias("+3")));
        assert_eq!(StateMachineArn::parse(&format!("{BASE}:99999999999")), Ok(m.with_alias("99999999999")));
        assert_eq!(m.with_alias("prod").unqualified(), m);
        let other = StateMachineArn::parse("arn:aws-cn:states::1:stateMachine:x").expect("parses");
        assert_eq!((other.partition, other.region, other.account, other.name), ("aws-cn", "", "1", "x"));
        for bad in [
            "",
            "m",
            "arn:aws:states:us-east-1:1:execution:m:e",
            "arn:aws:lambda:us-east-1:1:stateMachine:m",
            "arx:aws:states:us-east-1:1:stateMachine:m",
            &format!("{BASE}:"),
            &format!("{BASE}:a:b"),
            "arn:aws:states:us-east-1:1:stateMachine:",
        ] {
            let err = StateMachineArn::parse(bad).expect_err(bad);
            assert_eq!((err.arn.as_str(), err.expected), (bad, "a state machine ARN"));
        }
    }

    #[test]
    fn execution_arns() {
        let e = ExecutionArn::new("us-east-1", "1", "m", "e");
        assert_eq!(e.to_string(), "arn:aws:states:us-east-1:1:execution:m:e");
        assert_eq!(ExecutionArn::parse("arn:aws:states:us-east-1:1:execution:m:e"), Ok(e));
        assert_eq!(e.state_machine_arn().to_string(), "arn:aws:states:us-east-1:1:stateMachine:m");
        let express = ExecutionArn::parse("arn:aws:states:us-east-1:1:express:weft-x:0b4c:run").expect("parses");
        assert_eq!((express.state_machine, express.name, express.express_run), ("weft-x", "0b4c", Some("run")));
        assert_eq!(express.to_string(), "arn:aws:states:us-east-1:1:express:weft-x:0b4c:run");
        for bad in [
            "",
            "arn:aws:states:us-east-1:1:execution:m",
            "arn:aws:states:us-east-1:1:execution:weft-x",
            "arn:aws:states:us-east-1:1:execution:m:e:x",
            "arn:aws:states:us-east-1:1:stateMachine:m:1",
            "arn:aws:states:r:1:execution::n",
            "arn:aws:states:r:1:express:m:e",
            "arn:aws:states:r:1:express:m:e:",
        ] {
            let err = ExecutionArn::parse(bad).expect_err(bad);
            assert_eq!((err.arn.as_str(), err.expected), (bad, "an execution ARN"));
        }
    }

    #[test]
    fn executions_of_state_machine_arns_whatever_the_qualifier() {
        let id = "0b4c";
        for sm in [BASE, &format!("{BASE}:3"), &format!("{BASE}:live")] {
            let arn = StateMachineArn::parse(sm).expect("parses").execution(id).to_string();
            assert_eq!(arn, "arn:aws:states:us-east-1:123456789012:execution:m:0b4c", "{sm}");
        }
        let cn = StateMachineArn::parse("arn:aws-cn:states:cn-north-1:1:stateMachine:m").expect("parses");
        assert_eq!(cn.execution("e").to_string(), "arn:aws-cn:states:cn-north-1:1:execution:m:e");
    }

    #[test]
    fn map_runs_function_and_role_arns() {
        let e = ExecutionArn::new("us-east-1", "1", "m", "e");
        assert_eq!(e.map_run("Map", "42"), "arn:aws:states:us-east-1:1:mapRun:m:e/Map:42");
        let f = FunctionArn::parse("arn:aws:lambda:us-east-1:1:function:my-fn:3").expect("parses");
        assert_eq!((f.name, f.qualifier), ("my-fn", Some("3")));
        assert_eq!(f.to_string(), "arn:aws:lambda:us-east-1:1:function:my-fn:3");
        assert_eq!(FunctionArn::parse("arn:aws:lambda:us-east-1:1:function:f").map(|f| f.qualifier), Ok(None));
        for bad in ["my-fn", "arn:aws:lambda:us-east-1:1:function:", "arn:aws:lambda:r:1:function:f:1:2"] {
            assert!(FunctionArn::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(RoleArn::new("123", "weft-local").to_string(), "arn:aws:iam::123:role/weft-local");
    }

    #[test]
    fn names() {
        assert_eq!(check_name("ok-name_1"), Ok(()));
        assert_eq!(check_name(&"x".repeat(80)), Ok(()));
        for (bad, problem) in [
            ("", NameError::Length),
            (&"x".repeat(81), NameError::Length),
            ("a b", NameError::Char(' ')),
            ("a:b", NameError::Char(':')),
            ("a/b", NameError::Char('/')),
            ("a\u{1}", NameError::Char('\u{1}')),
        ] {
            assert_eq!(check_name(bad), Err(problem), "{bad:?}");
        }
        assert_eq!(NameError::Char(':').to_string(), "names must not contain ':'");
    }
}
