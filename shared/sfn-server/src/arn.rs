//! ARNs and names, in AWS's formats:
//! `arn:aws:states:<region>:<account>:stateMachine:<name>[:<version>|:<alias>]` and
//! `arn:aws:states:<region>:<account>:execution:<state machine>:<name>`.

use crate::error::SfnError;

/// What a state machine ARN designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmRef {
    Latest(String),
    Version(String, u32),
    Alias(String, String),
}

impl SmRef {
    pub fn name(&self) -> &str {
        match self {
            SmRef::Latest(n) | SmRef::Version(n, _) | SmRef::Alias(n, _) => n,
        }
    }
}

/// `arn:<partition>:states:<region>:<account>:<kind>:<rest...>`; region and account are not
/// checked (the endpoint stands in for one account), the resource part is.
fn resource<'a>(arn: &'a str, kind: &str) -> Option<Vec<&'a str>> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 7 || parts[0] != "arn" || parts[2] != "states" || parts[5] != kind {
        return None;
    }
    let rest = parts[6..].to_vec();
    rest.iter().all(|p| !p.is_empty()).then_some(rest)
}

pub fn parse_state_machine(arn: &str) -> Result<SmRef, SfnError> {
    match resource(arn, "stateMachine").as_deref() {
        Some([name]) => Ok(SmRef::Latest((*name).to_owned())),
        Some([name, q]) => Ok(match q.parse::<u32>() {
            Ok(v) if q.bytes().all(|b| b.is_ascii_digit()) => SmRef::Version((*name).to_owned(), v),
            _ => SmRef::Alias((*name).to_owned(), (*q).to_owned()),
        }),
        _ => Err(SfnError::invalid_arn(arn)),
    }
}

/// `(state machine name, execution name)`.
pub fn parse_execution(arn: &str) -> Result<(String, String), SfnError> {
    match resource(arn, "execution").as_deref() {
        Some([sm, name]) => Ok(((*sm).to_owned(), (*name).to_owned())),
        _ => Err(SfnError::invalid_arn(arn)),
    }
}

/// AWS's rule for state machine, execution and alias names: 1 to 80 characters, none of
/// whitespace, `< > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /` or control characters.
pub fn check_name(name: &str, what: &str) -> Result<(), SfnError> {
    const BAD: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";
    let len = name.chars().count();
    let bad = name.chars().find(|c| c.is_whitespace() || c.is_control() || BAD.contains(*c));
    if len == 0 || len > 80 {
        return Err(SfnError::new(
            "InvalidName",
            format!("Invalid Name: '{name}' ({what} names must be 1 to 80 characters)"),
        ));
    }
    if let Some(c) = bad {
        return Err(SfnError::new(
            "InvalidName",
            format!("Invalid Name: '{name}' ({what} names must not contain {c:?})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_arns() {
        let base = "arn:aws:states:us-east-1:123456789012:stateMachine:m";
        assert_eq!(parse_state_machine(base).ok(), Some(SmRef::Latest("m".into())));
        assert_eq!(parse_state_machine(&format!("{base}:3")).ok(), Some(SmRef::Version("m".into(), 3)));
        assert_eq!(parse_state_machine(&format!("{base}:prod")).ok(), Some(SmRef::Alias("m".into(), "prod".into())));
        for bad in ["", "m", "arn:aws:states:us-east-1:1:execution:m:e", &format!("{base}:"), &format!("{base}:a:b")] {
            assert_eq!(parse_state_machine(bad).err().map(|e| e.code()), Some("InvalidArn"), "{bad}");
        }
    }

    #[test]
    fn execution_arns_and_names() {
        assert_eq!(
            parse_execution("arn:aws:states:us-east-1:1:execution:m:e").ok(),
            Some(("m".to_owned(), "e".to_owned()))
        );
        assert!(parse_execution("arn:aws:states:us-east-1:1:execution:m").is_err());
        assert!(check_name("ok-name_1", "x").is_ok());
        for bad in ["", "a b", "a:b", "a/b", &"x".repeat(81), "a\u{1}"] {
            assert_eq!(check_name(bad, "x").err().map(|e| e.code()), Some("InvalidName"), "{bad:?}");
        }
    }
}
